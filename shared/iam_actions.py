"""IAM fixes beyond KMS: a Cloud Run function's policy (Cloud Functions v2 API), a Cloud Run
service's (for members other than the public ones run_actions handles) and a project's
(Resource Manager v3). Same discipline as KMS (`kms_actions.modify_policy`):
read the live policy at version 3, plan, write it back with its etag, re-plan on a conflict,
keep every other binding, condition and the version.

IAM permissions: cloudfunctions.functions.getIamPolicy / .setIamPolicy on a function;
run.services.getIamPolicy / .setIamPolicy on a Cloud Run service;
resourcemanager.projects.getIamPolicy / .setIamPolicy on a project.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Any

from shared.actions import ActionContext, gcloud_condition, read_timeout
from shared.kms_actions import Grant, Plan, Policy, PolicyIO, modify_policy, plan_add_members, plan_remove_members
from shared.model import ActionRecord, Finding

_EXEMPT_FIRST = "add an exemption for this resource to the policy first, or Rampart reverts the undo"


def _to_dict(pol: Any) -> Policy:
    from google.protobuf import json_format

    return json_format.MessageToDict(pol)


def _to_msg(policy: Policy) -> Any:
    from google.iam.v1 import policy_pb2
    from google.protobuf import json_format

    return json_format.ParseDict(policy, policy_pb2.Policy())


def _io(client: Callable[[], Any], undo_head: Callable[[str], str]) -> PolicyIO:
    def get(resource: str, ctx: ActionContext) -> Policy:
        return _to_dict(client().get_iam_policy(
            request={"resource": resource, "options": {"requested_policy_version": 3}},
            retry=None, timeout=read_timeout(ctx.operation_timeout),
        ))

    def put(resource: str, policy: Policy, ctx: ActionContext) -> Policy:
        return _to_dict(client().set_iam_policy(
            request={"resource": resource, "policy": _to_msg(policy)}, retry=None, timeout=read_timeout(ctx.operation_timeout),
        ))

    def undo(resource: str, verb: str, grants: list[Grant]) -> str:
        if not grants:
            return ""
        head = undo_head(resource).replace("VERB", verb)
        cmds = [f"{head} --member={shlex.quote(m)} --role={r} --condition={shlex.quote(gcloud_condition(c))}"
                for r, m, c in grants]
        return " && ".join(cmds) + f"  # {_EXEMPT_FIRST}"

    return PolicyIO(get, put, undo)


def _function_head(name: str) -> str:
    parts = name.split("/")  # projects/P/locations/L/functions/F
    return f"gcloud functions VERB-iam-policy-binding {parts[-1]} --region={parts[3]} --project={parts[1]}"


def _project_head(name: str) -> str:
    return f"gcloud projects VERB-iam-policy-binding {name.split('/', 1)[1]}"


class _FunctionsIam:
    """getIamPolicy / setIamPolicy of the Cloud Functions v2 API over REST, in the shape of a
    client library's (request dicts in, google.iam.v1 Policy messages out)."""

    def get_iam_policy(self, request: dict[str, Any], retry: Any = None, timeout: float = 30) -> Any:
        from shared import clients
        from shared.actions import rest_call

        version = request.get("options", {}).get("requested_policy_version", 0)
        body = rest_call(clients.functions_rest(), "GET", f"v2/{request['resource']}:getIamPolicy", timeout,
                         params={"options.requestedPolicyVersion": version})
        return _to_msg(body)

    def set_iam_policy(self, request: dict[str, Any], retry: Any = None, timeout: float = 30) -> Any:
        from shared import clients
        from shared.actions import rest_call

        body = rest_call(clients.functions_rest(), "POST", f"v2/{request['resource']}:setIamPolicy", timeout,
                         json={"policy": _to_dict(request["policy"])})
        return _to_msg(body)


def _functions() -> Any:
    return _FunctionsIam()


def _projects() -> Any:
    from shared import clients

    return clients.projects()


def _run_head(name: str) -> str:
    parts = name.split("/")  # projects/P/locations/L/services/S
    return f"gcloud run services VERB-iam-policy-binding {parts[-1]} --region={parts[3]} --project={parts[1]}"


def _run() -> Any:
    from shared import clients

    return clients.run_services()


FUNCTION_IO = _io(_functions, _function_head)
RUN_SERVICE_IO = _io(_run, _run_head)
PROJECT_IO = _io(_projects, _project_head)


def strip_members(finding: Finding, ctx: ActionContext, io: PolicyIO, *, pairs: list[tuple[str, str]],
                  still_bad: Callable[[str], bool]) -> ActionRecord:
    """Remove exactly the (role, member) grants in `pairs` that the live policy still has and
    `still_bad` still flags (conditional ones too); keep everything else."""
    plan: Plan = plan_remove_members(pairs, still_bad)
    return modify_policy(finding, ctx, plan, "add", io)


def restore_members(finding: Finding, ctx: ActionContext, io: PolicyIO, *, role: str, members: list[str]) -> ActionRecord:
    """Give `members` `role` again, unconditionally (a conditional grant does not count)."""
    return modify_policy(finding, ctx, plan_add_members(role, members), "remove", io)

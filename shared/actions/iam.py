"""IAM for every resource kind Rampart acts on: grants (role, member, condition), policy edits
that keep everything else, policy get/set (Cloud Run services and functions, KMS keys and key
rings, projects; at policy version 3 so conditions survive), undo commands, and the one IAM action: edit a live policy
through the conditional-write engine.

Policies travel as google.iam.v1.Policy JSON (camelCase keys, etag base64), so an edit keeps
fields Rampart does not know (auditConfigs, version) exactly as read.
"""

from __future__ import annotations

import copy
import json
import shlex
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.actions import ActionContext, TransientError, error_message, read_timeout, record
from shared.actions.engine import Plan, Status, Write, converge
from shared.model import ActionRecord, Change, Finding, Outcome
from shared.views.iam import PUBLIC_MEMBERS
from shared.views.names import kms_name, run_service_parts

Policy = dict[str, Any]  # google.iam.v1.Policy as JSON
EXEMPT_FIRST = "add an exemption for this resource to the policy first, or Rampart reverts the undo"


class BadGrant(ValueError):
    """A stored grant that is not {role, member[, condition]}."""


@dataclass(frozen=True, order=True)
class Grant:
    """One member in one binding: the role, the member and the binding's condition."""

    role: str
    member: str
    condition: str = ""  # canonical JSON of the binding's condition; "" when unconditional

    @classmethod
    def of(cls, role: str, member: str, condition: Mapping[str, Any] | None = None) -> Grant:
        return cls(role, member, canon(condition) if condition else "")

    @property
    def condition_dict(self) -> dict[str, Any] | None:
        return json.loads(self.condition) if self.condition else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "member": self.member}
        if self.condition:
            out["condition"] = self.condition_dict
        return out

    @classmethod
    def from_json(cls, obj: Any) -> Grant:
        if not isinstance(obj, Mapping) or not isinstance(obj.get("role"), str) or not isinstance(obj.get("member"), str):
            raise BadGrant(f"expected a grant {{role, member[, condition]}}, found {obj!r}")
        cond = obj.get("condition")
        if cond is not None and not isinstance(cond, Mapping):
            raise BadGrant(f"expected a grant's condition to be an object, found {cond!r}")
        return cls.of(obj["role"], obj["member"], cond)


def canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _condition_of(binding: Mapping[str, Any]) -> str:
    cond = binding.get("condition")
    return canon(cond) if cond else ""


def binding_field(role: str, condition: str = "") -> str:
    """The `Change.field` for one binding's members, e.g. `bindings[roles/run.invoker].members`."""
    if not condition:
        return f"bindings[{role}].members"
    cond = json.loads(condition)
    label = cond.get("title") or cond.get("expression") or condition
    return f"bindings[{role} if {label}].members"


# ---------------------------------------------------------------------------
# Reading and editing policies (pure).


def grants(policy: Mapping[str, Any]) -> list[Grant]:
    return [
        Grant(b.get("role", ""), m, _condition_of(b))
        for b in policy.get("bindings", [])
        for m in b.get("members", [])
    ]


def public_grants(policy: Mapping[str, Any], roles: Iterable[str] = ("*",)) -> list[Grant]:
    """allUsers / allAuthenticatedUsers grants, on `roles` ("*" = any role), conditional ones too."""
    roles = tuple(roles)
    any_role = "*" in roles
    return sorted({g for g in grants(policy) if g.member in PUBLIC_MEMBERS and (any_role or g.role in roles)})


def without_grants(policy: Policy, drop: Iterable[Grant]) -> tuple[Policy, list[Change]]:
    """`policy` minus exactly `drop`; bindings left empty go, everything else stays as it was."""
    drop = set(drop)
    new = copy.deepcopy(policy)
    changes: list[Change] = []
    kept = []
    for b in new.get("bindings", []):
        cond = _condition_of(b)
        gone = [m for m in b.get("members", []) if Grant(b.get("role", ""), m, cond) in drop]
        if gone:
            before = sorted(b["members"])
            b["members"] = [m for m in b["members"] if m not in gone]
            changes.append(Change(binding_field(b.get("role", ""), cond), before, sorted(b["members"])))
        if b.get("members"):
            kept.append(b)
    if "bindings" in new:
        new["bindings"] = kept
    return new, changes


def with_grants(policy: Policy, add: Iterable[Grant]) -> tuple[Policy, list[Change]]:
    """`policy` plus each grant in `add` it lacks, in the binding with the same role and
    condition (created if needed; a condition needs policy version 3). A conditional grant of
    a role is not the unconditional one: a member that must hold a role gets it unconditionally."""
    new = copy.deepcopy(policy)
    bindings = new.setdefault("bindings", [])
    before: dict[tuple[str, str], list[str]] = {}
    for g in sorted(set(add)):
        target = next((b for b in bindings if b.get("role") == g.role and _condition_of(b) == g.condition), None)
        if target is None:
            target = {"role": g.role, "members": []}
            if g.condition:
                target["condition"] = g.condition_dict
            bindings.append(target)
        if g.member in target["members"]:
            continue
        before.setdefault((g.role, g.condition), sorted(target["members"]))
        target["members"].append(g.member)
        if g.condition:
            new["version"] = 3
    changes = []
    for b in bindings:
        key = (b.get("role", ""), _condition_of(b))
        if key in before:
            changes.append(Change(binding_field(*key), before[key], sorted(b["members"])))
    if not bindings:
        del new["bindings"]
    return new, changes


def policy_facts(policy: Mapping[str, Any]) -> dict[str, Any]:
    """Log-safe summary of a policy: version and bindings (no etag)."""
    out: dict[str, Any] = {"version": policy.get("version", 0), "bindings": []}
    for b in policy.get("bindings", []):
        item: dict[str, Any] = {"role": b.get("role", ""), "members": sorted(b.get("members", []))}
        if b.get("condition"):
            item["condition"] = dict(b["condition"])
        out["bindings"].append(item)
    return out


def public_facts(policy: Mapping[str, Any], roles: Iterable[str] = ("*",)) -> dict[str, Any]:
    return {"public_members": [g.to_json() for g in public_grants(policy, roles)]}


# ---------------------------------------------------------------------------
# Undo commands.


def gcloud_condition(cond: Mapping[str, Any] | None) -> str:
    """The value of gcloud's --condition flag for an IAM condition ("None" for none), in the
    alternate-delimiter syntax when a part holds a comma (`gcloud topic escaping`); unquoted."""
    if not cond:
        return "None"
    items = [(k, str(cond[k])) for k in ("expression", "title", "description") if cond.get(k)]
    if any("," in v for _, v in items):
        return "^;^" + ";".join(f"{k}={v}" for k, v in items)
    return ",".join(f"{k}={v}" for k, v in items)


def _function_parts(resource: str) -> tuple[str, str, str] | None:
    """(project, location, function) of a Cloud Functions v2 name; None if it is not one."""
    parts = resource.split("/")
    if len(parts) == 6 and parts[0] == "projects" and parts[2] == "locations" and parts[4] == "functions":
        return parts[1], parts[3], parts[5]
    return None


def _workload(resource: str) -> tuple[str, str, str, str] | None:
    """(project, location, collection, name) of a Cloud Run job or worker pool; None otherwise."""
    parts = resource.split("/")
    if len(parts) == 6 and parts[0] == "projects" and parts[2] == "locations" and parts[4] in ("jobs", "workerPools"):
        return parts[1], parts[3], parts[4], parts[5]
    return None


def _project(resource: str) -> str | None:
    parts = resource.split("/")
    return parts[1] if len(parts) == 2 and parts[0] == "projects" and parts[1] else None


def gcloud_target(verb: str, resource: str) -> str:
    """`gcloud <group> <verb> <resource> --flags` for a Cloud Run service, job, worker pool or
    function, KMS key or key ring, or project."""
    fn = _function_parts(resource)
    if fn is not None:
        return f"gcloud functions {verb} {fn[2]} --region={fn[1]} --project={fn[0]}"
    wl = _workload(resource)
    if wl is not None:
        # Worker pools are a beta command group in gcloud (gcloud 528: `gcloud run worker-pools` is
        # "available in alternate release tracks"); beta keeps working once they are GA.
        group = "run jobs" if wl[2] == "jobs" else "beta run worker-pools"
        return f"gcloud {group} {verb} {wl[3]} --region={wl[1]} --project={wl[0]}"
    project = _project(resource)
    if project is not None:
        return f"gcloud projects {verb} {project}"
    run = run_service_parts(resource)
    if run is not None:
        return f"gcloud run services {verb} {resource.rsplit('/', 1)[1]} --region={run[1]} --project={run[0]}"
    k = kms_name(resource)
    if k is not None and k.key:
        return f"gcloud kms keys {verb} {k.key} --keyring={k.ring} --location={k.location} --project={k.project}"
    if k is not None:
        return f"gcloud kms keyrings {verb} {k.ring} --location={k.location} --project={k.project}"
    return f"gcloud run services {verb} {shlex.quote(resource)}"


def undo(resource: str, verb: str, changed: Iterable[Grant]) -> str:
    """gcloud commands that `verb` (add or remove) each grant on `resource`, non-interactively
    (KMS: `--condition=None` for an unconditional grant; the exact condition otherwise)."""
    # gcloud asks interactively for a condition on a resource whose policy has some: say it always.
    kms = kms_name(resource) is not None or _project(resource) is not None
    cmds = []
    for g in sorted(changed):
        cmd = f"{gcloud_target(f'{verb}-iam-policy-binding', resource)} --member={shlex.quote(g.member)} --role={g.role}"
        if g.condition or kms:
            cmd += f" --condition={shlex.quote(gcloud_condition(g.condition_dict))}"
        cmds.append(cmd)
    return " && ".join(cmds) + f"  # {EXEMPT_FIRST}" if cmds else ""


# ---------------------------------------------------------------------------
# Live policies.


class _FunctionsIam:
    """getIamPolicy / setIamPolicy of the Cloud Functions v2 API over REST (shared.clients.functions_rest:
    the google-cloud-functions library would load into every cold start), shaped like a client
    library's: request dicts in, google.iam.v1 Policy messages out."""

    def get_iam_policy(self, request: Mapping[str, Any], retry: Any = None, timeout: float = 30) -> Any:
        from google.iam.v1 import policy_pb2
        from google.protobuf import json_format

        from shared import clients
        from shared.actions import rest_call

        version = request.get("options", {}).get("requested_policy_version", 0)
        body = rest_call(clients.functions_rest(), "GET", f"v2/{request['resource']}:getIamPolicy", timeout,
                         params={"options.requestedPolicyVersion": version})
        return json_format.ParseDict(body, policy_pb2.Policy())

    def set_iam_policy(self, request: Mapping[str, Any], retry: Any = None, timeout: float = 30) -> Any:
        from google.iam.v1 import policy_pb2
        from google.protobuf import json_format

        from shared import clients
        from shared.actions import rest_call

        body = rest_call(clients.functions_rest(), "POST", f"v2/{request['resource']}:setIamPolicy", timeout,
                         json={"policy": json_format.MessageToDict(request["policy"])})
        return json_format.ParseDict(body, policy_pb2.Policy())


def _client(resource: str) -> Any:
    from shared import clients

    if run_service_parts(resource) is not None:
        return clients.run_services()
    if kms_name(resource) is not None:
        return clients.kms()
    if _function_parts(resource) is not None:
        return _FunctionsIam()
    wl = _workload(resource)
    if wl is not None:
        return clients.run_jobs() if wl[2] == "jobs" else clients.run_worker_pools()
    if _project(resource) is not None:
        return clients.projects()
    raise ValueError(f"expected a Cloud Run service, job, worker pool or function, a KMS key or key ring, or a project,"
                     f" found {resource!r}")


def _call(what: str, resource: str, call: Callable[[], Any]) -> Any:
    # The REST transport lets requests' own exceptions through (ReadTimeout, ConnectionError):
    # they are neither GoogleAPICallError nor the builtin TimeoutError/ConnectionError.
    import requests

    try:
        return call()
    except requests.exceptions.RequestException as exc:
        raise TransientError(f"{what} {resource}: {type(exc).__name__}: {error_message(exc)}") from exc


def get_policy(resource: str, timeout: float) -> Policy:
    """The live IAM policy of `resource` at version 3 (conditions kept), as JSON.

    IAM permissions: run.services.getIamPolicy (run.jobs., run.workerPools.),
    cloudfunctions.functions.getIamPolicy, resourcemanager.projects.getIamPolicy,
    cloudkms.cryptoKeys.getIamPolicy or cloudkms.keyRings.getIamPolicy."""
    from google.protobuf import json_format

    request = {"resource": resource, "options": {"requested_policy_version": 3}}
    pol = _call("get_iam_policy", resource, lambda: _client(resource).get_iam_policy(request=request, retry=None, timeout=timeout))
    return json_format.MessageToDict(pol)


def set_policy(resource: str, policy: Policy, timeout: float) -> Policy:
    """Write `policy` (its etag included: a stale one is refused as a conflict).

    IAM permissions: run.services.setIamPolicy, cloudkms.cryptoKeys.setIamPolicy or
    cloudkms.keyRings.setIamPolicy."""
    from google.iam.v1 import policy_pb2
    from google.protobuf import json_format

    msg = json_format.ParseDict(policy, policy_pb2.Policy())
    request = {"resource": resource, "policy": msg}
    written = _call("set_iam_policy", resource, lambda: _client(resource).set_iam_policy(request=request, retry=None, timeout=timeout))
    return json_format.MessageToDict(written)


# ---------------------------------------------------------------------------
# The IAM action.

# An edit turns the live policy into (policy to write, changes, grants added or removed);
# no changes means the live policy is already compliant.
Edit = Callable[[Policy], tuple[Policy, list[Change], list[Grant]]]


def add_members(role: str, members: Iterable[str]) -> Edit:
    """Give each of `members` `role` unconditionally, touching nothing else."""
    wanted = [Grant(role, m) for m in dict.fromkeys(members)]

    def edit(live: Policy) -> tuple[Policy, list[Change], list[Grant]]:
        have = set(grants(live))
        new, changes = with_grants(live, wanted)
        return new, changes, [g for g in wanted if g not in have]

    return edit


def remove_grants(pick: Callable[[Grant], bool]) -> Edit:
    """Remove every grant `pick` selects (a conditional grant is still a grant); bindings left
    empty go, as IAM drops them."""

    def edit(live: Policy) -> tuple[Policy, list[Change], list[Grant]]:
        drop = sorted({g for g in grants(live) if pick(g)})
        new, changes = without_grants(live, drop)
        return new, changes, drop

    return edit


def edit_policy(
    finding: Finding, ctx: ActionContext, edit: Edit, *, undo_verb: str,
    facts: Callable[[Policy], dict[str, Any]] = policy_facts, compliant: str = "live policy already compliant",
) -> ActionRecord:
    """Read `finding.resource`'s live policy, apply `edit`, write it with the etag it was read
    with; on a conflict read, edit and write again (shared.actions.engine). `undo_verb` (add or
    remove) is the gcloud verb that reverses the edit's grants.

    IAM permissions: getIamPolicy and setIamPolicy on the resource (see get_policy, set_policy).
    """
    resource = finding.resource
    timeout = read_timeout(ctx.operation_timeout)
    written: list[Policy] = []
    changed: list[Grant] = []

    def plan(live: Policy) -> Plan:
        new, changes, grants_ = edit(live)
        changed[:] = grants_
        if not changes:
            return Plan([], before=facts(live), reason=compliant)
        write = Write("policy", live.get("etag", ""), changes, lambda: written.append(set_policy(resource, new, timeout)))
        return Plan([write], before=facts(live), after=facts(new))

    run = converge(
        lambda: get_policy(resource, timeout), lambda live: {"policy": live.get("etag", "")}, plan,
        max_attempts=ctx.max_attempts, dry_run=ctx.dry_run,
        exhausted=lambda n: TransientError(
            f"{finding.rule} on {resource}: its IAM policy changed under us {n} time(s) in {ctx.max_attempts} attempt(s); "
            "a redelivery will read it again"
        ),
    )
    before = facts(run.state)
    if run.status is Status.COMPLIANT:
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, attempts=run.attempts,
                      reason=run.reason + run.conflict_note)
    if run.status is Status.DRY_RUN and run.plan is not None:
        return record(finding, ctx, Outcome.DRY_RUN, changes=run.plan.changes, before=before, after=run.plan.after)
    if run.status is not Status.WRITTEN:
        return record(finding, ctx, Outcome.FAILED, before=before, attempts=run.attempts, reason=run.reason)
    return record(
        finding, ctx, Outcome.REMEDIATED, changes=run.done, before=before, after=facts(written[-1]),
        attempts=run.attempts, undo=undo(resource, undo_verb, changed),
        reason=("re-planned" + run.conflict_note) if run.conflicts else "",
    )

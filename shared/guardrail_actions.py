"""Putting a relaxed org policy guardrail back, where it is certain what it should be.

An audit entry never carries the policy as it was (a DeletePolicy logs only the name; an update
only the new spec), so Rampart restores only what the security team declared: the
`org_policy_relaxed` rule's `baseline`, one Org Policy v2 spec per constraint. The live policy
is re-read; nothing is written if it already has the baseline's rules; otherwise the policy is
created (it was deleted) or patched with its etag (a concurrent change answers 409, and the
redelivery re-reads).

IAM permissions: orgpolicy.policies.create, orgpolicy.policies.update (and the read,
orgpolicy.policy.get) on the project, folder or organization.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.actions import ActionContext, TransientError, error_message, is_conflict, read_timeout, record, rest_call
from shared.model import ActionRecord, Change, Finding, Outcome

_COMPARED = ("rules", "inheritFromParent", "reset")


def call(method: str, path: str, ctx: ActionContext, **kw: Any) -> Any:
    from shared import clients

    return rest_call(clients.orgpolicy_rest(), method, f"v2/{path}", read_timeout(ctx.operation_timeout), **kw)


def _shape(spec: Mapping[str, Any] | None) -> dict[str, Any]:
    """The parts of a spec that decide what it enforces (not its etag or updateTime)."""
    spec = spec or {}
    return {k: spec[k] for k in _COMPARED if k in spec and spec[k] not in (None, False, [])}


def restore_policy(finding: Finding, ctx: ActionContext, *, baseline: Mapping[str, Any]) -> ActionRecord:
    from google.api_core import exceptions as gexc

    name = finding.resource
    try:
        live: dict[str, Any] | None = call("GET", name, ctx)
    except gexc.NotFound:
        live = None
    want = _shape(baseline)
    have = _shape((live or {}).get("spec"))
    before = {"spec": have} if live is not None else {"spec": "(no policy: inherited or the constraint's default)"}
    if live is not None and have == want:
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, reason="live policy is the baseline")
    change = Change("spec", before["spec"], want)
    if ctx.dry_run:
        return record(finding, ctx, Outcome.DRY_RUN, changes=[change], before=before, after={"spec": want})
    body = {"name": name, "spec": dict(want)}
    try:
        if live is None:
            # PARENT/policies/CONSTRAINT: split at the last /policies/ (a project may be named "policies").
            written = call("POST", name.rpartition("/policies/")[0] + "/policies", ctx, json=body)
        else:
            body["etag"] = live.get("etag", "")
            written = call("PATCH", name, ctx, params={"updateMask": "spec"}, json=body)
    except gexc.GoogleAPICallError as exc:
        if is_conflict(exc) or isinstance(exc, gexc.AlreadyExists):
            raise TransientError(f"{finding.rule} on {name}: changed while restoring ({error_message(exc)})") from exc
        raise
    parent, _, constraint = name.rpartition("/policies/")
    kind, _, ident = parent.partition("/")
    undo = (f"gcloud org-policies reset {constraint} --{kind.rstrip('s')}={ident}  # or set the previous spec, from this "
            "record's `before`; add an exemption first, or Rampart restores the baseline again")
    return record(finding, ctx, Outcome.REMEDIATED, changes=[change], before=before,
                  after={"spec": _shape(written.get("spec"))}, attempts=1, undo=undo)

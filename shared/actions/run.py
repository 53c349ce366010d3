"""Cloud Run services against live state: read, write (etag-guarded, awaiting the operation
within a budget), revert one field or public grants, and pick the action the policy chose.

Every action locates the service through the finding, then re-reads its **live** state
(`ServicesClient.get_service`, `get_iam_policy` at policy version 3): the audit entry may be
stale, duplicated or out of order. It writes only while the service is still non-compliant,
so a duplicate delivery finds the work done and writes nothing. Writes go through the one
conditional-write loop (`shared.actions.engine`).

Calls go out with no client-side retry and bounded timeouts (the redelivery is the retry).
A write that gets no answer in time is transient like any read: the redelivery re-reads and
sees whether it applied. Update operations are awaited for at most `ctx.operation_timeout`
seconds in all; past that the record is FAILED ("operation did not finish within Ns"), never
a hang. google libraries are imported on first use (cold-start budget).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from shared.actions import ActionContext, TransientError, error_message, read_timeout, record
from shared.actions.engine import Plan, Status, Unfinished, Write, converge
from shared.actions.iam import EXEMPT_FIRST, Grant, Policy, edit_policy, gcloud_target, public_facts, public_grants, remove_grants
from shared.model import Action, ActionRecord, Change, Finding, Outcome
from shared.views.run import INGRESS_V1

if TYPE_CHECKING:
    from google.cloud.run_v2 import Service

    from shared.rules import Rule

_V1_INGRESS = {v2: v1 for v1, v2 in INGRESS_V1.items()}
QUARANTINE_ANNOTATION = "rampart.dev/quarantine"


class OperationTimeout(Unfinished):
    """An update operation did not finish within `ctx.operation_timeout`."""


def _client() -> Any:
    from shared import clients

    return clients.run_services()


def _transport_errors() -> tuple[type[Exception], ...]:
    # The REST transport lets requests' own exceptions through (ReadTimeout, ConnectionError):
    # they are neither GoogleAPICallError nor the builtin TimeoutError/ConnectionError.
    import requests

    return (requests.exceptions.RequestException,)


def get_service(name: str, timeout: float) -> Service:
    """IAM permissions: run.services.get."""
    try:
        svc: Service = _client().get_service(name=name, retry=None, timeout=timeout)
    except _transport_errors() as exc:
        raise TransientError(f"get_service {name}: {type(exc).__name__}: {error_message(exc)}") from exc
    return svc


def update_service(svc: Service, budget: float, fields: Sequence[str] = ()) -> Service:
    """Write `svc` (etag included) and await the operation, all within `budget` seconds. With
    `fields`, only those are written (an explicit update mask): without one, Cloud Run may treat
    the request as "update the fields set on the wire" (https://google.aip.dev/134), and a field
    set back to its default (invoker_iam_disabled = False) is not on the wire at all.

    IAM permissions: run.services.update, run.operations.get, iam.serviceAccounts.actAs."""
    from google.api_core import retry as gretry
    from google.api_core.future import polling

    start = time.monotonic()
    try:
        if fields:
            from google.protobuf import field_mask_pb2

            mask = field_mask_pb2.FieldMask(paths=list(fields))
            op = _client().update_service(request={"service": svc, "update_mask": mask}, retry=None, timeout=budget)
        else:
            op = _client().update_service(service=svc, retry=None, timeout=budget)
    except _transport_errors() as exc:
        # No answer to the write itself (deadline passed, connection dropped): it may or may not
        # have applied. A redelivery reads the live state again and finds out; a FAILED record
        # here would leave the violation open for good whenever it did not apply.
        raise TransientError(f"update_service {svc.name}: {type(exc).__name__}: {error_message(exc)}") from exc
    awaiting: tuple[type[Exception], ...] = (TimeoutError, *_transport_errors())
    try:
        left = max(0.05, budget - (time.monotonic() - start))
        poll = gretry.Retry(predicate=polling.POLLING_PREDICATE, initial=0.25, maximum=5.0, multiplier=1.5)
        done: Service = op.result(timeout=left, polling=poll)
    except awaiting as exc:
        import requests

        if isinstance(exc, TimeoutError | requests.exceptions.Timeout):
            raise OperationTimeout(f"operation did not finish within {budget:g}s") from exc
        raise TransientError(f"update_service {svc.name}: {type(exc).__name__}: {error_message(exc)}") from exc
    return done


def mask_of(changes: Iterable[Change]) -> list[str]:
    """The update mask for service changes: each change's top-level field (a label or annotation
    change writes the whole map, as read live and edited)."""
    return sorted({c.field.split(".", 1)[0] for c in changes})


def ingress_of(svc: Service) -> str:
    ingress = svc.ingress
    return ingress.name if hasattr(ingress, "name") else str(ingress)


def service_facts(svc: Service, label_key: str = "") -> dict[str, Any]:
    """Log-safe facts about a live Service: only the fields Rampart governs (no template, no env)."""
    from shared.quarantine_store import parse_marker

    out: dict[str, Any] = {"ingress": ingress_of(svc), "invoker_iam_disabled": bool(svc.invoker_iam_disabled)}
    if label_key and label_key in svc.labels:
        out["label"] = {label_key: svc.labels[label_key]}
    marker = svc.annotations.get(QUARANTINE_ANNOTATION)
    if marker:
        parsed = parse_marker(marker)
        # The quarantine id only: the record is in Rampart's database, the rest is not ours to echo.
        out["quarantine"] = {"id": parsed[0]} if parsed else "(an annotation Rampart did not write)"
    return out


def exhausted(finding: Finding, ctx: ActionContext) -> Callable[[int], Exception]:
    return lambda conflicts: TransientError(
        f"{finding.rule} on {finding.resource}: the service or its IAM policy changed under us "
        f"{conflicts} time(s) in {ctx.max_attempts} attempt(s); a redelivery will read it again"
    )


# ---------------------------------------------------------------------------
# Revert: one service field, or public grants.


def revert_service(
    finding: Finding, ctx: ActionContext, edit: Callable[[Service], list[Change]], undo: Callable[[list[Change]], str]
) -> ActionRecord:
    """Read → `edit(svc)` (edits svc in place, returns the changes; none = compliant) →
    conditional update_service, through the engine."""
    name = finding.resource
    timeout = read_timeout(ctx.operation_timeout)
    written: list[Service] = []

    def plan(svc: Service) -> Plan:
        before = service_facts(svc)
        etag = svc.etag
        changes = edit(svc)
        if not changes:
            return Plan([], before=before, reason="live service already compliant")
        fields = mask_of(changes)
        write = Write("service", etag, changes,
                      lambda: written.append(update_service(svc, ctx.operation_timeout, fields)))
        return Plan([write], before=before, after=service_facts(svc))

    run = converge(lambda: get_service(name, timeout), lambda svc: {"service": svc.etag}, plan,
                   max_attempts=ctx.max_attempts, dry_run=ctx.dry_run, exhausted=exhausted(finding, ctx))
    before = run.plan.before if run.plan is not None else service_facts(run.state)
    if run.status is Status.COMPLIANT:
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, attempts=run.attempts,
                      reason=run.reason + run.conflict_note)
    if run.status is Status.DRY_RUN and run.plan is not None:
        return record(finding, ctx, Outcome.DRY_RUN, changes=run.plan.changes, before=before, after=run.plan.after)
    if run.status is Status.UNFINISHED:
        return record(finding, ctx, Outcome.FAILED, before=before, attempts=run.attempts,
                      reason=f"{run.reason}; the change may still apply: check {name}")
    if run.status is not Status.WRITTEN:
        return record(finding, ctx, Outcome.FAILED, before=before, attempts=run.attempts, reason=run.reason)
    after = written[-1]
    left = edit(type(after).deserialize(type(after).serialize(after)))  # on a copy: what the result still needs
    if left:
        # Accepted, yet the service it answered with is not what was written: never REMEDIATED on faith.
        still = ", ".join(f"{c.field}={c.before}" for c in left)
        return record(finding, ctx, Outcome.FAILED, changes=run.done, before=before, after=service_facts(after),
                      attempts=run.attempts, reason=f"Cloud Run accepted the write but the service still has {still}; "
                      f"check {name} and fix it by hand")
    return record(
        finding, ctx, Outcome.REMEDIATED, changes=run.done, before=before, after=service_facts(after),
        attempts=run.attempts, undo=undo(run.done), reason=("re-planned" + run.conflict_note) if run.conflicts else "",
    )


def revert_ingress(finding: Finding, ctx: ActionContext, *, allowed: Iterable[str], target: str) -> ActionRecord:
    """Set ingress back to `target` unless the live value is one of `allowed`.

    IAM permissions: run.services.get, run.services.update, run.operations.get.
    """
    allowed = tuple(allowed)

    def edit(svc: Service) -> list[Change]:
        cur = ingress_of(svc)
        if cur in allowed:
            return []
        svc.ingress = target  # type: ignore[assignment]  # proto-plus accepts the enum's name
        return [Change("ingress", cur, target)]

    def undo(changes: list[Change]) -> str:
        old = changes[0].before
        return f"{gcloud_target('update', finding.resource)} --ingress={_V1_INGRESS.get(old, old)}  # {EXEMPT_FIRST}"

    return revert_service(finding, ctx, edit, undo)


def revert_invoker_check(finding: Finding, ctx: ActionContext) -> ActionRecord:
    """Turn the invoker IAM check back on (`invoker_iam_disabled = False`).

    IAM permissions: run.services.get, run.services.update, run.operations.get.
    """

    def edit(svc: Service) -> list[Change]:
        if not svc.invoker_iam_disabled:
            return []
        svc.invoker_iam_disabled = False
        return [Change("invoker_iam_disabled", True, False)]

    return revert_service(
        finding, ctx, edit, lambda _: f"{gcloud_target('update', finding.resource)} --no-invoker-iam-check  # {EXEMPT_FIRST}"
    )


def revert_public_invoker(finding: Finding, ctx: ActionContext, *, roles: Iterable[str]) -> ActionRecord:
    """Remove exactly the allUsers / allAuthenticatedUsers grants on `roles` ("*" = any) from the
    live policy; every other binding, condition, auditConfigs and the version stay.

    IAM permissions: run.services.getIamPolicy, run.services.setIamPolicy.
    """
    roles = tuple(roles)

    def edit(live: Policy) -> tuple[Policy, list[Change], list[Grant]]:
        flagged = set(public_grants(live, roles))
        return remove_grants(lambda g: g in flagged)(live)

    def facts(policy: Policy) -> dict[str, Any]:
        return public_facts(policy, roles)

    return edit_policy(finding, ctx, edit, undo_verb="add", facts=facts, compliant="live policy grants no public member")


# ---------------------------------------------------------------------------
# The action the policy chose.

Violates = Callable[["Service", Policy], bool]  # (live service, its IAM policy JSON) -> still non-compliant?


def still_violates(rule: Rule, params: Any) -> Violates:
    """The rule's own `check` on the live service, or on its live IAM policy for a policy rule."""
    from shared.views import iam, run

    def violates(svc: Service, policy: Policy) -> bool:
        view = iam.from_live(svc.name, policy) if rule.kind is iam.POLICY else run.from_live(svc)
        return view is not None and rule.check(view, params) is not None

    return violates


def dispatch(
    finding: Finding, ctx: ActionContext, *, rule: Rule, params: Any,
    revert: Callable[[], ActionRecord] | None = None,
) -> ActionRecord:
    """Run the action the policy chose: quarantine (while `rule` still flags the live service),
    or the rule's `revert` if it offers one."""
    from shared.actions.quarantine import quarantine

    if ctx.action is Action.QUARANTINE:
        return quarantine(finding, ctx, violates=still_violates(rule, params))
    if ctx.action is Action.REVERT and revert is not None:
        return revert()
    offered = "revert or quarantine" if revert is not None else "quarantine"
    return record(
        finding, ctx, Outcome.FAILED, reason=f"{finding.rule}: expected action {offered}, found {ctx.action.value}"
    )

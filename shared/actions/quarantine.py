"""Quarantine: isolate a Cloud Run service, reversibly, and release it.

Quarantine isolates a service (ingress internal-only, unless already `NONE`; invoker IAM
check on; every allUsers/allAuthenticatedUsers grant removed), labels it
`<ctx.quarantine_label>=<rule id>`, and keeps the exact prior state on the service itself,
as compact JSON in the annotation `rampart.dev/quarantine` (see `QuarantineRecord`).
The record is written before IAM is touched, so a crash in between loses nothing: the
redelivery finds the record and finishes the job. `release()` puts the recorded state back.
Both write through the one conditional-write loop (`shared.actions.engine`): the service with
its etag, then the policy with its etag; a conflict on either means read both again and plan again.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.actions import ActionContext, TransientError, error_message, read_timeout, record
from shared.actions.engine import Converged, Plan, Refused, Status, Write, converge
from shared.actions.iam import (
    BadGrant,
    Grant,
    Policy,
    binding_field,
    get_policy,
    grants,
    public_grants,
    set_policy,
    with_grants,
    without_grants,
)
from shared.actions.run import (
    QUARANTINE_ANNOTATION,
    OperationTimeout,
    Violates,
    exhausted,
    get_service,
    ingress_of,
    service_facts,
    update_service,
)
from shared.model import ActionRecord, Change, Finding, Outcome

if TYPE_CHECKING:
    from google.cloud.run_v2 import Service

ISOLATED_INGRESS = "INGRESS_TRAFFIC_INTERNAL_ONLY"
CLOSED_INGRESS = frozenset({"INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_NONE"})
RECORD_VERSION = 1
# A service's annotations follow Kubernetes limits: 256 KiB for all of them together. Ours
# is a few hundred bytes; refusing past 16 KiB leaves the rest to the service's owners.
RECORD_MAX_BYTES = 16 * 1024

_SERVICE_NAME = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/services/(?P<service>[^/]+)$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


class BadRecord(ValueError):
    """The quarantine annotation holds something Rampart did not write."""


# ---------------------------------------------------------------------------
# The quarantine record, kept on the service as an annotation (pure).


# The quarantine record, kept on the service as an annotation (pure).


@dataclass(frozen=True)
class QuarantineRecord:
    """What quarantine changed and what was there before, as stored in `rampart.dev/quarantine`:

        {"v":1,"rule":"run_default_service_account","event":"i2m4lzd7hnt","at":"2026-11-23T09:30:00Z",
         "label":"rampart-quarantine",
         "prior":{"ingress":"INGRESS_TRAFFIC_ALL","invoker_iam_disabled":true,"label":null},
         "set":{"ingress":"INGRESS_TRAFFIC_INTERNAL_ONLY","invoker_iam_disabled":false},
         "removed":[{"role":"roles/run.invoker","member":"allUsers"}]}

    `prior` is the state before the first quarantine (a later quarantine of the same service
    keeps it); `set` is what quarantine left, which `release` compares with the live state;
    `removed` lists every grant quarantine took away, conditions included; `label` is the label
    key set to the rule id (`prior.label` is its value before, usually null).
    """

    rule: str
    event: str
    at: str
    label: str
    prior_ingress: str
    prior_invoker_iam_disabled: bool
    prior_label: str | None
    set_ingress: str
    removed: tuple[Grant, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "removed", tuple(sorted(set(self.removed))))  # one order, no repeats

    def to_json(self) -> str:
        return json.dumps(
            {
                "v": RECORD_VERSION,
                "rule": self.rule,
                "event": self.event,
                "at": self.at,
                "label": self.label,
                "prior": {
                    "ingress": self.prior_ingress,
                    "invoker_iam_disabled": self.prior_invoker_iam_disabled,
                    "label": self.prior_label,
                },
                "set": {"ingress": self.set_ingress, "invoker_iam_disabled": False},
                "removed": [g.to_json() for g in self.removed],
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, text: str) -> QuarantineRecord:
        try:
            obj = json.loads(text)
        except ValueError:
            raise BadRecord(f"expected JSON, found {text[:80]!r}") from None
        if not isinstance(obj, dict) or obj.get("v") != RECORD_VERSION:
            raise BadRecord(f"expected an object with \"v\": {RECORD_VERSION}, found {text[:80]!r}")
        prior, done = obj.get("prior"), obj.get("set")
        try:
            if not isinstance(prior, dict) or not isinstance(done, dict):
                raise BadRecord("expected \"prior\" and \"set\" objects")
            fields = {
                "rule": obj["rule"], "event": obj["event"], "at": obj["at"], "label": obj["label"],
                "prior_ingress": prior["ingress"], "set_ingress": done["ingress"],
            }
            bad = [k for k, v in fields.items() if not isinstance(v, str)]
            if bad:
                raise BadRecord(f"expected strings for {', '.join(bad)}")
            invoker = prior["invoker_iam_disabled"]
            label = prior.get("label")
            if not isinstance(invoker, bool) or not (label is None or isinstance(label, str)):
                raise BadRecord("expected prior.invoker_iam_disabled a boolean and prior.label a string or null")
            removed = obj.get("removed", [])
            if not isinstance(removed, list):
                raise BadRecord(f"expected \"removed\" to be a list, found {type(removed).__name__}")
            return cls(
                prior_invoker_iam_disabled=invoker, prior_label=label,
                removed=tuple(Grant.from_json(g) for g in removed), **fields,
            )
        except KeyError as exc:
            raise BadRecord(f"missing key {exc.args[0]!r}") from None
        except BadGrant as exc:
            raise BadRecord(str(exc)) from None


def label_value(text: str) -> str:
    """`text` as a valid GCP label value: lower case, [a-z0-9_-], at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


def record_of(svc: Any) -> QuarantineRecord | None:
    """The quarantine record on a live Service, None if it carries none (BadRecord if mangled)."""
    text = svc.annotations.get(QUARANTINE_ANNOTATION)
    return QuarantineRecord.parse(text) if text else None



# ---------------------------------------------------------------------------
# Quarantine.


def _now(ctx: ActionContext) -> str:
    return dt.datetime.fromtimestamp(ctx.clock(), dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class _Live:
    svc: Service
    policy: Policy


def _read(name: str, timeout: float) -> _Live:
    return _Live(get_service(name, timeout), get_policy(name, timeout))


def _etags(live: _Live) -> dict[str, str]:
    return {"service": live.svc.etag, "policy": live.policy.get("etag", "")}


def quarantine(finding: Finding, ctx: ActionContext, *, violates: Violates) -> ActionRecord:
    """Isolate the service, label it and record its prior state on it; see the module docstring.

    `violates(svc, policy)` says whether the live service (and its IAM policy) still breaks the
    rule (`run.still_violates`); it is asked only while the service carries no quarantine
    record. Once it does, the quarantine stands until `release`, and a new finding only
    completes or restores the isolation.

    IAM permissions: run.services.get, run.services.update, run.operations.get,
    run.services.getIamPolicy, run.services.setIamPolicy.
    """
    name = finding.resource
    key = ctx.quarantine_label
    if not _LABEL_KEY.match(key):
        return record(
            finding, ctx, Outcome.FAILED,
            reason=f"quarantine_label: expected a label key [a-z][a-z0-9_-]{{0,62}}, found {key!r}",
        )
    timeout = read_timeout(ctx.operation_timeout)
    first_before: dict[str, Any] = {}
    intended: set[Grant] = set()  # recorded as removed by this call, not yet removed from IAM
    after_view: dict[str, Any] = {}

    def plan(live: _Live) -> Plan:
        nonlocal intended
        svc, policy = live.svc, live.policy
        public = public_grants(policy)
        before = {**service_facts(svc, key), "public_members": [g.to_json() for g in public]}
        first_before.update(first_before or before)
        try:
            rec = record_of(svc)
        except BadRecord as exc:
            raise Refused(
                f"annotation {QUARANTINE_ANNOTATION} on {name} is not a Rampart quarantine record ({exc}); "
                "fix or remove it, then quarantine again"
            ) from None
        if rec is None:
            if not violates(svc, policy):
                return Plan([], before=before, reason=f"live service no longer violates {finding.rule}")
            ingress = ingress_of(svc)
            rec = QuarantineRecord(
                rule=finding.rule, event=finding.event_id, at=_now(ctx), label=key,
                prior_ingress=ingress, prior_invoker_iam_disabled=bool(svc.invoker_iam_disabled),
                prior_label=svc.labels.get(key), set_ingress=ingress if ingress in CLOSED_INGRESS else ISOLATED_INGRESS,
            )
        # Grants this call recorded but someone else removed meanwhile are not ours to give back.
        removed = (set(rec.removed) - (intended - set(public))) | set(public)
        rec = dataclasses.replace(rec, removed=tuple(sorted(removed)))
        text = rec.to_json()
        if len(text.encode()) > RECORD_MAX_BYTES:
            raise Refused(f"quarantine record of {len(text.encode())} bytes is over the {RECORD_MAX_BYTES}-byte limit")

        etag = svc.etag
        svc_changes: list[Change] = []
        ingress = ingress_of(svc)
        if ingress not in CLOSED_INGRESS:
            svc.ingress = rec.set_ingress if rec.set_ingress in CLOSED_INGRESS else ISOLATED_INGRESS  # type: ignore[assignment]
            svc_changes.append(Change("ingress", ingress, ingress_of(svc)))
        if svc.invoker_iam_disabled:
            svc.invoker_iam_disabled = False
            svc_changes.append(Change("invoker_iam_disabled", True, False))
        value = label_value(rec.rule)
        if svc.labels.get(rec.label) != value:
            svc_changes.append(Change(f"labels.{rec.label}", svc.labels.get(rec.label), value))
            svc.labels[rec.label] = value
        old_text = svc.annotations.get(QUARANTINE_ANNOTATION)
        if old_text != text:
            svc_changes.append(Change(f"annotations.{QUARANTINE_ANNOTATION}", old_text, text))
            svc.annotations[QUARANTINE_ANNOTATION] = text
        new_policy, iam_changes = without_grants(policy, public)
        after_view.clear()
        after_view.update(service_facts(svc, key))

        def write_service() -> None:
            after_view.update(service_facts(update_service(svc, ctx.operation_timeout), key))

        def write_policy() -> None:
            nonlocal intended
            intended = set(public)
            set_policy(name, new_policy, timeout)

        writes = []
        if svc_changes:
            writes.append(Write("service", etag, svc_changes, write_service))
        if iam_changes:
            writes.append(Write("policy", policy.get("etag", ""), iam_changes, write_policy))
        else:
            intended = set(public)
        reason = f"already quarantined by {rec.rule} at {rec.at} (event {rec.event})"
        return Plan(writes, before=before, after={**after_view, "public_members": []}, reason=reason)

    run = converge(lambda: _read(name, timeout), _etags, plan, max_attempts=ctx.max_attempts, dry_run=ctx.dry_run,
                   exhausted=exhausted(finding, ctx))
    return _quarantine_record(finding, ctx, run, first_before, after_view)


def _quarantine_record(
    finding: Finding, ctx: ActionContext, run: Converged[_Live], first_before: dict[str, Any], after_view: dict[str, Any]
) -> ActionRecord:
    name = finding.resource
    before = run.plan.before if run.plan is not None else first_before
    if run.status is Status.COMPLIANT and not run.done:
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, attempts=run.attempts,
                      reason=run.reason + (run.conflict_note if run.reason.startswith("live") else ""))
    if run.status is Status.DRY_RUN and run.plan is not None:
        return record(finding, ctx, Outcome.DRY_RUN, changes=run.plan.changes, before=before, after=run.plan.after)
    if run.status is Status.UNFINISHED:
        return record(
            finding, ctx, Outcome.FAILED, changes=run.done, before=first_before, attempts=run.attempts,
            reason=f"{run.reason}; the quarantine may be half done: check {name} (quarantining it again completes it)",
        )
    if run.status in (Status.UNMOVED, Status.REFUSED):
        return record(finding, ctx, Outcome.FAILED, changes=run.done, before=first_before, attempts=run.attempts,
                      reason=run.reason)
    # Written now, or compliant after earlier attempts wrote part of it.
    after = {**after_view, "public_members": []} if run.status is Status.WRITTEN else before
    return record(
        finding, ctx, Outcome.QUARANTINED, changes=run.done, before=first_before, after=after, attempts=run.attempts,
        undo=f"python main.py release {finding.resource}",
        reason=f"isolated by {finding.rule}; prior state kept in annotation {QUARANTINE_ANNOTATION}" + run.conflict_note,
    )


# ---------------------------------------------------------------------------
# Release.


# Release.


class ReleaseError(RuntimeError):
    """Release did not happen; the message says why and what to do."""


class NotQuarantined(ReleaseError):
    pass


class ReleaseRefused(ReleaseError):
    """The service changed since the quarantine; `drift` lists how."""

    def __init__(self, name: str, record: QuarantineRecord, drift: list[Drift]) -> None:
        lines = "\n".join(f"  - {d}" for d in drift)
        super().__init__(
            f"refusing to release {name}: it changed since {record.rule} quarantined it at {record.at}:\n{lines}\n"
            "Restoring the recorded state would overwrite those changes; re-run with --force to restore it anyway."
        )
        self.name = name
        self.record = record
        self.drift = drift


@dataclass(frozen=True)
class Drift:
    """A field quarantine set that no longer holds what quarantine left there."""

    field: str
    quarantine_left: Any
    found: Any

    def __str__(self) -> str:
        return f"{self.field}: quarantine left {self.quarantine_left!r}, found {self.found!r}"


@dataclass
class ReleaseResult:
    """What `release` put back."""

    service: str
    record: QuarantineRecord
    restored: list[Change] = field(default_factory=list)
    forced: bool = False
    drift: list[Drift] = field(default_factory=list)  # overridden by --force
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "quarantined_by": self.record.rule,
            "quarantined_at": self.record.at,
            "event_id": self.record.event,
            "restored": [{"field": c.field, "from": c.before, "to": c.after} for c in self.restored],
            "forced": self.forced,
            "drift_overridden": [str(d) for d in self.drift],
            "attempts": self.attempts,
        }

    def __str__(self) -> str:
        lines = [f"released {self.service} (quarantined by {self.record.rule} at {self.record.at}, event {self.record.event})"]
        lines += [f"  {c.field}: {c.before!r} -> {c.after!r}" for c in self.restored]
        if self.drift:
            lines.append("  forced over these changes made since the quarantine:")
            lines += [f"    - {d}" for d in self.drift]
        return "\n".join(lines)


def drift_of(svc: Any, policy: Mapping[str, Any], rec: QuarantineRecord, ignore: Iterable[Grant] = ()) -> list[Drift]:
    """How the live service differs from what quarantine left, in the fields quarantine set."""
    ignore = set(ignore)
    out: list[Drift] = []
    ingress = ingress_of(svc)
    if ingress != rec.set_ingress:
        out.append(Drift("ingress", rec.set_ingress, ingress))
    if svc.invoker_iam_disabled:
        out.append(Drift("invoker_iam_disabled", False, True))
    live = set(grants(policy))
    for g in rec.removed:
        if g in live and g not in ignore:
            out.append(Drift(binding_field(g.role, g.condition), f"without {g.member}", f"{g.member} granted again"))
    for g in public_grants(policy):
        if g not in rec.removed and g not in ignore:
            out.append(Drift(binding_field(g.role, g.condition), "no public member", f"{g.member} granted"))
    return out


def release(
    service_name: str, force: bool = False, *, max_attempts: int = 3, operation_timeout: float = 60.0
) -> ReleaseResult:
    """Undo a quarantine: give back the removed grants, restore ingress, the invoker check and
    the label as recorded, and remove the record. Refuses (ReleaseRefused, listing the
    differences) when someone changed a field quarantine set, unless `force`.

    IAM permissions: run.services.get, run.services.update, run.operations.get,
    run.services.getIamPolicy, run.services.setIamPolicy.
    """
    from google.api_core import exceptions as gexc

    name = service_name.strip()
    if not _SERVICE_NAME.match(name):
        raise ReleaseError(f"expected a service name projects/PROJECT/locations/REGION/services/NAME, found {name!r}")
    timeout = read_timeout(operation_timeout)
    restored_iam: set[Grant] = set()  # grants this call gave back: not someone else's drift
    done: list[Change] = []  # what was written, for the error that interrupts us
    drift: list[Drift] = []
    found: list[QuarantineRecord] = []

    def plan(live: _Live) -> Plan:
        nonlocal drift
        svc, policy = live.svc, live.policy
        try:
            rec = record_of(svc)
        except BadRecord as exc:
            raise ReleaseError(f"{name}: annotation {QUARANTINE_ANNOTATION} is not a Rampart quarantine record ({exc})") from None
        if rec is None:
            raise NotQuarantined(f"{name} carries no {QUARANTINE_ANNOTATION} annotation: it is not quarantined, nothing to release")
        found[:] = [rec]
        now_drift = drift_of(svc, policy, rec, restored_iam)
        if now_drift and not force:
            raise ReleaseRefused(name, rec, now_drift)
        drift = drift or now_drift

        give_back = [g for g in rec.removed if g not in restored_iam]
        new_policy, iam_changes = with_grants(policy, give_back)

        def write_policy() -> None:
            set_policy(name, new_policy, timeout)
            done.extend(iam_changes)
            restored_iam.update(give_back)

        if not iam_changes:
            restored_iam.update(give_back)

        etag = svc.etag
        svc_changes: list[Change] = []
        ingress = ingress_of(svc)
        if ingress != rec.prior_ingress:
            svc.ingress = rec.prior_ingress  # type: ignore[assignment]  # proto-plus accepts the enum's name
            svc_changes.append(Change("ingress", ingress, rec.prior_ingress))
        if bool(svc.invoker_iam_disabled) != rec.prior_invoker_iam_disabled:
            svc_changes.append(Change("invoker_iam_disabled", bool(svc.invoker_iam_disabled), rec.prior_invoker_iam_disabled))
            svc.invoker_iam_disabled = rec.prior_invoker_iam_disabled
        current_label = svc.labels.get(rec.label)
        if current_label != rec.prior_label:
            svc_changes.append(Change(f"labels.{rec.label}", current_label, rec.prior_label))
            if rec.prior_label is None:
                del svc.labels[rec.label]
            else:
                svc.labels[rec.label] = rec.prior_label
        svc_changes.append(Change(f"annotations.{QUARANTINE_ANNOTATION}", svc.annotations[QUARANTINE_ANNOTATION], None))
        del svc.annotations[QUARANTINE_ANNOTATION]

        def write_service() -> None:
            try:
                update_service(svc, operation_timeout)
            except OperationTimeout as exc:
                raise ReleaseError(f"{name}: {exc}; check the service, then run release again") from exc
            done.extend(svc_changes)

        writes = [Write("policy", policy.get("etag", ""), iam_changes, write_policy)] if iam_changes else []
        return Plan([*writes, Write("service", etag, svc_changes, write_service)])

    def changed_under_us(_conflicts: int) -> Exception:
        return ReleaseError(f"{name}: changed under us on each of {max_attempts} attempts; run release again")

    try:
        run = converge(lambda: _read(name, timeout), _etags, plan, max_attempts=max_attempts, dry_run=False,
                       exhausted=changed_under_us)
    except gexc.NotFound as exc:
        raise ReleaseError(f"{name}: not found ({error_message(exc)})") from exc
    except (gexc.GoogleAPICallError, TransientError) as exc:
        so_far = f"already restored: {', '.join(c.field for c in done)}" if done else "nothing was changed"
        raise ReleaseError(f"{name}: {type(exc).__name__}: {error_message(exc)}; {so_far}") from exc
    if run.status is not Status.WRITTEN:
        raise ReleaseError(f"{name}: {run.reason}")
    return ReleaseResult(name, found[0], list(done), force, drift, run.attempts)

"""Quarantine: isolate a Cloud Run service, reversibly, and release it.

Quarantine isolates a service (ingress internal-only, unless already `NONE`; invoker IAM
check on; every allUsers/allAuthenticatedUsers grant removed), labels it
`<ctx.quarantine_label>=<rule id>`, and keeps the exact prior state where only Rampart writes:
a record in its Firestore database (`shared.quarantine_store`), keyed by the service and a
quarantine id. The service's annotation `rampart.dev/quarantine` carries only
`<quarantine id>:<digest>`: anyone with run.services.update can edit an annotation, and a record
kept there let them have `release` grant whatever they wrote. A value there that is not a
record Rampart holds never blocks a quarantine: it is overwritten, and kept in the new record.
The record is written before the service and IAM are touched, so a crash in between loses
nothing: the redelivery finds the record and finishes the job. `release()` puts back only what
the record says quarantine changed, and refuses when the restored service would still break
the rule that quarantined it (unless forced).
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
    mask_of,
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
    prior_annotation: str | None = None  # what the annotation held before, if not Rampart's (bounded)

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
                    **({"annotation": self.prior_annotation} if self.prior_annotation is not None else {}),
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
            junk = prior.get("annotation")
            if not (junk is None or isinstance(junk, str)):
                raise BadRecord("expected prior.annotation a string or absent")
            if not isinstance(invoker, bool) or not (label is None or isinstance(label, str)):
                raise BadRecord("expected prior.invoker_iam_disabled a boolean and prior.label a string or null")
            removed = obj.get("removed", [])
            if not isinstance(removed, list):
                raise BadRecord(f"expected \"removed\" to be a list, found {type(removed).__name__}")
            return cls(
                prior_invoker_iam_disabled=invoker, prior_label=label, prior_annotation=junk,
                removed=tuple(Grant.from_json(g) for g in removed), **fields,
            )
        except KeyError as exc:
            raise BadRecord(f"missing key {exc.args[0]!r}") from None
        except BadGrant as exc:
            raise BadRecord(str(exc)) from None


def label_value(text: str) -> str:
    """`text` as a valid GCP label value: lower case, [a-z0-9_-], at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


JUNK_KEPT_CHARS = 2048


def _records(ctx: ActionContext | None) -> Any:
    from shared import quarantine_store

    store = getattr(ctx, "records", None) if ctx is not None else None
    return store if store is not None else quarantine_store.default()


def record_of(svc: Any, records: Any) -> tuple[QuarantineRecord | None, str | None]:
    """(the record the service's marker points to, None if none) and, when the annotation holds
    something else, that value (bounded) to keep. RecordError never escapes: an unusable
    annotation is overwritten, never a reason to leave a service open. Store outages raise."""
    from shared.quarantine_store import RecordError

    text = svc.annotations.get(QUARANTINE_ANNOTATION)
    if not text:
        return None, None
    try:
        stored = records.load(svc.name, text)
        return QuarantineRecord.parse(json.dumps(stored.record)), None
    except (RecordError, BadRecord):
        return None, text[:JUNK_KEPT_CHARS]



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
    records = _records(ctx)
    first_before: dict[str, Any] = {}
    intended: set[Grant] = set()  # recorded as removed by this call, not yet removed from IAM
    after_view: dict[str, Any] = {}

    def plan(live: _Live) -> Plan:
        nonlocal intended
        svc, policy = live.svc, live.policy
        public = public_grants(policy)
        before = {**service_facts(svc, key), "public_members": [g.to_json() for g in public]}
        first_before.update(first_before or before)
        rec, junk = record_of(svc, records)
        held = rec
        if rec is None:
            if not violates(svc, policy):
                return Plan([], before=before, reason=f"live service no longer violates {finding.rule}")
            ingress = ingress_of(svc)
            rec = QuarantineRecord(
                rule=finding.rule, event=finding.event_id, at=_now(ctx), label=key,
                prior_ingress=ingress, prior_invoker_iam_disabled=bool(svc.invoker_iam_disabled),
                prior_label=svc.labels.get(key), set_ingress=ingress if ingress in CLOSED_INGRESS else ISOLATED_INGRESS,
                prior_annotation=junk,
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
        to_save: tuple[str, dict[str, Any]] | None = None
        if held is None or held.to_json() != text:
            # A new record (first quarantine, more grants removed, or the annotation was not
            # Rampart's): saved under a new id before the service carries its marker.
            from shared.quarantine_store import marker_for, new_qid

            qid, payload = new_qid(), json.loads(text)
            marker = marker_for(name, qid, payload)
            to_save = (qid, payload)
            svc_changes.append(Change(f"annotations.{QUARANTINE_ANNOTATION}", old_text, marker))
            svc.annotations[QUARANTINE_ANNOTATION] = marker
        new_policy, iam_changes = without_grants(policy, public)
        after_view.clear()
        after_view.update(service_facts(svc, key))

        def write_service() -> None:
            if to_save is not None:
                records.save(name, to_save[1], to_save[0])
            after_view.update(service_facts(update_service(svc, ctx.operation_timeout, mask_of(svc_changes)), key))

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
        reason=f"isolated by {finding.rule}; prior state kept in Rampart's quarantine records (id on annotation "
        f"{QUARANTINE_ANNOTATION})" + run.conflict_note,
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

    def __init__(self, name: str, record: QuarantineRecord, drift: list[Drift], still: str = "") -> None:
        if still:
            msg = f"refusing to release {name}: {still}; or re-run with --force to release it anyway."
        else:
            lines = "\n".join(f"  - {d}" for d in drift)
            from shared.terminal import printable as p

            msg = (f"refusing to release {name}: it changed since {p(record.rule)} quarantined it at {p(record.at)}:\n{lines}\n"
                   "Restoring the recorded state would overwrite those changes; re-run with --force to restore it anyway.")
        super().__init__(msg)
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
        from shared.terminal import printable as p

        # Every record field is someone else's text as far as a terminal is concerned: one safe line each.
        lines = [f"released {p(self.service)} (quarantined by {p(self.record.rule)} at {p(self.record.at)}, "
                 f"event {p(self.record.event)})"]
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


_HINTS = {
    "run_default_service_account": "it would still run as a default service account: deploy it with a dedicated one first",
    "run_unapproved_region": "it would still be outside the approved regions: redeploy it in an approved region first",
    "run_cmek_missing": "it would still have no customer-managed key in its region: set one first",
}


def still_violates(rec: QuarantineRecord, svc: Any) -> str | None:
    """What is still wrong, by the rule that quarantined the service, with the restored service
    (`svc` as release would write it), or None. The policy in force gives the rule's params."""
    import functions
    from shared.views import run as run_views

    if rec.rule not in functions.RULE_IDS:
        return None
    rule = functions.rule(rec.rule)
    if rule.kind is not run_views.SERVICE:
        return None
    try:
        from shared.config import PolicyStore

        params = PolicyStore().current().settings(rec.rule).params
    except Exception:  # noqa: BLE001 — no readable policy here: the rule's defaults (the HIPAA profile)
        params = rule.params()
    view = run_views.from_live(svc)
    if view is None or rule.check(view, params) is None:
        return None
    return f"{rec.rule} would still flag it ({rule.title}): {_HINTS.get(rec.rule, 'fix that first')}"


def release(
    service_name: str, force: bool = False, *, max_attempts: int = 3, operation_timeout: float = 60.0,
    records: Any = None,
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

    from shared.quarantine_store import RecordError

    store = records if records is not None else _records(None)

    def plan(live: _Live) -> Plan:
        nonlocal drift
        svc, policy = live.svc, live.policy
        marker = svc.annotations.get(QUARANTINE_ANNOTATION)
        if not marker:
            raise NotQuarantined(f"{name} carries no {QUARANTINE_ANNOTATION} annotation: it is not quarantined, nothing to release")
        try:
            rec = QuarantineRecord.parse(json.dumps(store.load(name, marker).record))
        except (RecordError, BadRecord) as exc:
            raise ReleaseError(
                f"refusing to release {name}: {exc}. Rampart restores only a prior state it recorded itself; "
                "check the service by hand (its annotation may have been edited)"
            ) from None
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
        wrong = still_violates(rec, svc)
        if wrong and not force:
            raise ReleaseRefused(name, rec, [], still=wrong)

        def write_service() -> None:
            try:
                update_service(svc, operation_timeout, mask_of(svc_changes))
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

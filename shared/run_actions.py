"""Cloud Run remediation against live state: revert a field, quarantine a service, release it.

Every action locates the service through the finding, then re-reads its **live** state
(`ServicesClient.get_service`, and `get_iam_policy` at policy version 3): the audit event
may be stale, duplicated or out of order. It writes only while the service is still
non-compliant, so a duplicate delivery finds the work done and writes nothing.

Writes are conditional. `update_service` sends the Service as read, etag included;
`set_iam_policy` sends the policy as read (version, conditions and auditConfigs kept) with
its etag. A conflict (409 ABORTED per AIP-154, or FAILED_PRECONDITION) means another writer
got there first: read again, plan again (the service may be compliant now) and retry, up to
`ctx.max_attempts`, then `TransientError` so Pub/Sub redelivers. A conflict answered while
the etag has not moved is no race (e.g. a revision-name clash): that is a FAILED record.
Someone else's concurrent change is never overwritten, because nothing is written without
the etag it was planned against.

Quarantine isolates a service (ingress internal-only, unless already `NONE`; invoker IAM
check on; every allUsers/allAuthenticatedUsers grant removed), labels it
`<ctx.quarantine_label>=<rule id>`, and keeps the exact prior state on the service itself,
as compact JSON in the annotation `rampart.dev/quarantine` (see `QuarantineRecord`).
The record is written before IAM is touched, so a crash in between loses nothing: the
redelivery finds the record and finishes the job. `release()` puts the recorded state back.

Calls go out with no client-side retry and bounded timeouts (the redelivery is the retry).
A write that gets no answer in time is transient like any read: the redelivery re-reads and
sees whether it applied. Update operations are awaited for at most `ctx.operation_timeout`
seconds in all; past that the record is FAILED ("operation did not finish within Ns"), never
a hang.
google libraries are imported on first use (cold-start budget).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.actions import (
    ActionContext,
    StaleWrite,
    TransientError,
    conflict_note,
    error_message,
    gcloud_condition,
    is_conflict,
    read_timeout,
    record,
)
from shared.model import Action, ActionRecord, Change, Finding, Outcome
from shared.rules import Rule
from shared.views.iam import PUBLIC_MEMBERS
from shared.views.run import INGRESS_V1

QUARANTINE_ANNOTATION = "rampart.dev/quarantine"
ISOLATED_INGRESS = "INGRESS_TRAFFIC_INTERNAL_ONLY"
CLOSED_INGRESS = frozenset({"INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_NONE"})
RECORD_VERSION = 1
# A service's annotations follow Kubernetes limits: 256 KiB for all of them together. Ours
# is a few hundred bytes; refusing past 16 KiB leaves the rest to the service's owners.
RECORD_MAX_BYTES = 16 * 1024

# Written into every revert's undo: without an exemption Rampart sees the undo as a new violation.
_EXEMPT_FIRST = "add an exemption for this service to the policy first, or Rampart reverts the undo"
_SERVICE_NAME = re.compile(r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/services/(?P<service>[^/]+)$")
_LABEL_KEY = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_V1_INGRESS = {v2: v1 for v1, v2 in INGRESS_V1.items()}

Policy = dict[str, Any]  # google.iam.v1.Policy as JSON (camelCase keys, etag base64)


# ---------------------------------------------------------------------------
# Grants and IAM policies (pure).


class BadRecord(ValueError):
    """The quarantine annotation holds something Rampart did not write."""


@dataclass(frozen=True, order=True)
class Grant:
    """One member in one binding: the role, the member and the binding's condition."""

    role: str
    member: str
    condition: str = ""  # canonical JSON of the binding's condition; "" when unconditional

    @classmethod
    def of(cls, role: str, member: str, condition: Mapping[str, Any] | None = None) -> Grant:
        return cls(role, member, _canon(condition) if condition else "")

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
            raise BadRecord(f"expected a grant {{role, member[, condition]}}, found {obj!r}")
        cond = obj.get("condition")
        if cond is not None and not isinstance(cond, Mapping):
            raise BadRecord(f"expected a grant's condition to be an object, found {cond!r}")
        return cls.of(obj["role"], obj["member"], cond)


def _canon(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def _binding_condition(binding: Mapping[str, Any]) -> str:
    cond = binding.get("condition")
    return _canon(cond) if cond else ""


def binding_field(role: str, condition: str = "") -> str:
    """The `Change.field` for one binding's members, e.g. `bindings[roles/run.invoker].members`."""
    if not condition:
        return f"bindings[{role}].members"
    cond = json.loads(condition)
    label = cond.get("title") or cond.get("expression") or condition
    return f"bindings[{role} if {label}].members"


def grants(policy: Mapping[str, Any]) -> list[Grant]:
    return [
        Grant(b.get("role", ""), m, _binding_condition(b))
        for b in policy.get("bindings", [])
        for m in b.get("members", [])
    ]


def public_grants(policy: Mapping[str, Any], roles: Iterable[str] = ("*",)) -> list[Grant]:
    """allUsers / allAuthenticatedUsers grants, on `roles` ("*" = any role), conditional ones too."""
    roles = tuple(roles)
    any_role = "*" in roles
    return sorted({g for g in grants(policy) if g.member in PUBLIC_MEMBERS and (any_role or g.role in roles)})


def public_grants_in(found: Iterable[Grant], roles: Iterable[str]) -> list[Grant]:
    """The grants of `found` on `roles` ("*" = any role)."""
    roles = tuple(roles)
    return [g for g in found if "*" in roles or g.role in roles]


def without_grants(policy: Policy, drop: Iterable[Grant]) -> tuple[Policy, list[Change]]:
    """`policy` minus exactly `drop`; bindings left empty go, everything else stays as it was."""
    drop = set(drop)
    new = copy.deepcopy(policy)
    changes: list[Change] = []
    kept = []
    for b in new.get("bindings", []):
        cond = _binding_condition(b)
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
    condition (created if needed; a condition needs policy version 3)."""
    new = copy.deepcopy(policy)
    bindings = new.setdefault("bindings", [])
    before: dict[tuple[str, str], list[str]] = {}
    for g in sorted(set(add)):
        target = next((b for b in bindings if b.get("role") == g.role and _binding_condition(b) == g.condition), None)
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
        key = (b.get("role", ""), _binding_condition(b))
        if key in before:
            changes.append(Change(binding_field(*key), before[key], sorted(b["members"])))
    if not bindings:
        del new["bindings"]
    return new, changes


# ---------------------------------------------------------------------------
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


def label_value(text: str) -> str:
    """`text` as a valid GCP label value: lower case, [a-z0-9_-], at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", text.lower())[:63]


def record_of(svc: Any) -> QuarantineRecord | None:
    """The quarantine record on a live Service, None if it carries none (BadRecord if mangled)."""
    text = svc.annotations.get(QUARANTINE_ANNOTATION)
    return QuarantineRecord.parse(text) if text else None


# ---------------------------------------------------------------------------
# Live state: reads, writes, views.


class OperationTimeout(Exception):
    """An update operation did not finish within `ctx.operation_timeout`."""


def _run() -> Any:
    from shared import clients

    return clients.run_services()


def _transport_errors() -> tuple[type[BaseException], ...]:
    # The REST transport lets requests' own exceptions through (ReadTimeout, ConnectionError):
    # they are neither GoogleAPICallError nor the builtin TimeoutError/ConnectionError.
    import requests

    return (requests.exceptions.RequestException,)


def _read(what: str, name: str, call: Callable[[], Any]) -> Any:
    try:
        return call()
    except _transport_errors() as exc:
        raise TransientError(f"{what} {name}: {type(exc).__name__}: {error_message(exc)}") from exc


def get_service(name: str, timeout: float) -> Any:
    return _read("get_service", name, lambda: _run().get_service(name=name, retry=None, timeout=timeout))


def get_policy(name: str, timeout: float) -> Policy:
    from google.protobuf import json_format

    pol = _read(
        "get_iam_policy",
        name,
        lambda: _run().get_iam_policy(
            request={"resource": name, "options": {"requested_policy_version": 3}}, retry=None, timeout=timeout
        ),
    )
    return json_format.MessageToDict(pol)


def set_policy(name: str, policy: Policy, timeout: float) -> Policy:
    from google.iam.v1 import policy_pb2
    from google.protobuf import json_format

    msg = json_format.ParseDict(policy, policy_pb2.Policy())
    written = _read(
        "set_iam_policy",
        name,
        lambda: _run().set_iam_policy(request={"resource": name, "policy": msg}, retry=None, timeout=timeout),
    )
    return json_format.MessageToDict(written)


def update_service(svc: Any, budget: float) -> Any:
    """Write `svc` (etag included) and await the operation, all within `budget` seconds."""
    from google.api_core import retry as gretry
    from google.api_core.future import polling

    start = time.monotonic()
    try:
        op = _run().update_service(service=svc, retry=None, timeout=budget)
    except _transport_errors() as exc:
        # No answer to the write itself (deadline passed, connection dropped): it may or may not
        # have applied. A redelivery reads the live state again and finds out; a FAILED record
        # here would leave the violation open for good whenever it did not apply.
        raise TransientError(f"update_service {svc.name}: {type(exc).__name__}: {error_message(exc)}") from exc
    try:
        left = max(0.05, budget - (time.monotonic() - start))
        poll = gretry.Retry(predicate=polling.POLLING_PREDICATE, initial=0.25, maximum=5.0, multiplier=1.5)
        return op.result(timeout=left, polling=poll)
    except (TimeoutError, *_transport_errors()) as exc:
        import requests

        if isinstance(exc, TimeoutError | requests.exceptions.Timeout):
            raise OperationTimeout(f"operation did not finish within {budget:g}s") from exc
        raise TransientError(f"update_service {svc.name}: {type(exc).__name__}: {error_message(exc)}") from exc


def ingress_of(svc: Any) -> str:
    return svc.ingress.name if hasattr(svc.ingress, "name") else str(svc.ingress)


def service_facts(svc: Any, label_key: str = "") -> dict[str, Any]:
    """Log-safe facts about a live Service: only the fields Rampart governs (no template, no env)."""
    out: dict[str, Any] = {"ingress": ingress_of(svc), "invoker_iam_disabled": bool(svc.invoker_iam_disabled)}
    if label_key and label_key in svc.labels:
        out["label"] = {label_key: svc.labels[label_key]}
    try:
        rec = record_of(svc)
    except BadRecord:
        out["quarantine"] = "(unreadable record)"
    else:
        if rec is not None:
            out["quarantine"] = {"rule": rec.rule, "at": rec.at, "event": rec.event}
    return out


def _public_view(public: Iterable[Grant]) -> list[dict[str, Any]]:
    return [g.to_json() for g in public]


# ---------------------------------------------------------------------------
# Conflicts.


def _exhausted(finding: Finding, ctx: ActionContext, conflicts: int) -> TransientError:
    return TransientError(
        f"{finding.rule} on {finding.resource}: the service or its IAM policy changed under us "
        f"{conflicts} time(s) in {ctx.max_attempts} attempt(s); a redelivery will read it again"
    )


# ---------------------------------------------------------------------------
# Revert: one service field, or public grants.


def _gcloud(verb: str, name: str) -> str:
    m = _SERVICE_NAME.match(name)
    if not m:
        return f"gcloud run services {verb} {shlex.quote(name)}"
    return f"gcloud run services {verb} {m['service']} --region={m['location']} --project={m['project']}"


def _revert_service(
    finding: Finding, ctx: ActionContext, plan: Callable[[Any], list[Change]], undo: Callable[[list[Change]], str]
) -> ActionRecord:
    """Read → `plan(svc)` (edits svc in place, returns the changes; none = compliant) → conditional
    update_service, planned again on a conflict."""
    from google.api_core import exceptions as gexc

    name = finding.resource
    timeout = read_timeout(ctx.operation_timeout)
    conflicts = 0
    stale: StaleWrite | None = None
    for attempt in range(1, ctx.max_attempts + 1):
        svc = get_service(name, timeout)
        before = service_facts(svc)
        if stale and stale.unchanged(svc.etag, ""):
            return record(finding, ctx, Outcome.FAILED, before=before, attempts=attempt - 1, reason=stale.reason())
        changes = plan(svc)
        if not changes:
            return record(
                finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, attempts=attempt - 1,
                reason="live service already compliant" + conflict_note(conflicts),
            )
        if ctx.dry_run:
            return record(finding, ctx, Outcome.DRY_RUN, changes=changes, before=before, after=service_facts(svc))
        etag = svc.etag
        try:
            written = update_service(svc, ctx.operation_timeout)
        except OperationTimeout as exc:
            return record(
                finding, ctx, Outcome.FAILED, before=before, attempts=attempt,
                reason=f"{exc}; the change may still apply: check {name}",
            )
        except gexc.GoogleAPICallError as exc:
            if not is_conflict(exc):
                raise
            conflicts += 1
            stale = StaleWrite("service", etag, error_message(exc))
            continue
        return record(
            finding, ctx, Outcome.REMEDIATED, changes=changes, before=before, after=service_facts(written),
            attempts=attempt, undo=undo(changes), reason=("re-planned" + conflict_note(conflicts)) if conflicts else "",
        )
    raise _exhausted(finding, ctx, conflicts)


def revert_ingress(finding: Finding, ctx: ActionContext, *, allowed: Iterable[str], target: str) -> ActionRecord:
    """Set ingress back to `target` unless the live value is one of `allowed`.

    IAM permissions: run.services.get, run.services.update, run.operations.get.
    """
    allowed = tuple(allowed)

    def plan(svc: Any) -> list[Change]:
        cur = ingress_of(svc)
        if cur in allowed:
            return []
        svc.ingress = target
        return [Change("ingress", cur, target)]

    def undo(changes: list[Change]) -> str:
        old = changes[0].before
        return f"{_gcloud('update', finding.resource)} --ingress={_V1_INGRESS.get(old, old)}  # {_EXEMPT_FIRST}"

    return _revert_service(finding, ctx, plan, undo)


def revert_invoker_check(finding: Finding, ctx: ActionContext) -> ActionRecord:
    """Turn the invoker IAM check back on (`invoker_iam_disabled = False`).

    IAM permissions: run.services.get, run.services.update, run.operations.get.
    """

    def plan(svc: Any) -> list[Change]:
        if not svc.invoker_iam_disabled:
            return []
        svc.invoker_iam_disabled = False
        return [Change("invoker_iam_disabled", True, False)]

    return _revert_service(
        finding, ctx, plan, lambda _: f"{_gcloud('update', finding.resource)} --no-invoker-iam-check  # {_EXEMPT_FIRST}"
    )


def _iam_undo(name: str, verb: str, removed: Iterable[Grant]) -> str:
    cmds = []
    for g in sorted(removed):
        cmd = f"{_gcloud(f'{verb}-iam-policy-binding', name)} --member={shlex.quote(g.member)} --role={g.role}"
        cond = g.condition_dict
        if cond:
            cmd += f" --condition={shlex.quote(gcloud_condition(cond))}"
        cmds.append(cmd)
    return " && ".join(cmds)


def revert_public_invoker(finding: Finding, ctx: ActionContext, *, roles: Iterable[str]) -> ActionRecord:
    """Remove exactly the allUsers / allAuthenticatedUsers grants on `roles` ("*" = any) from the
    live policy; every other binding, condition, auditConfigs and the version stay.

    IAM permissions: run.services.getIamPolicy, run.services.setIamPolicy.
    """
    from google.api_core import exceptions as gexc

    name = finding.resource
    roles = tuple(roles)
    timeout = read_timeout(ctx.operation_timeout)
    conflicts = 0
    stale: StaleWrite | None = None
    for attempt in range(1, ctx.max_attempts + 1):
        live = get_policy(name, timeout)
        public = public_grants(live, roles)
        before = {"public_members": _public_view(public)}
        if stale and stale.unchanged("", live.get("etag", "")):
            return record(finding, ctx, Outcome.FAILED, before=before, attempts=attempt - 1, reason=stale.reason())
        if not public:
            return record(
                finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, attempts=attempt - 1,
                reason="live policy grants no public member" + conflict_note(conflicts),
            )
        new, changes = without_grants(live, public)
        if ctx.dry_run:
            return record(finding, ctx, Outcome.DRY_RUN, changes=changes, before=before, after={"public_members": []})
        try:
            written = set_policy(name, new, timeout)
        except gexc.GoogleAPICallError as exc:
            if not is_conflict(exc):
                raise
            conflicts += 1
            stale = StaleWrite("policy", live.get("etag", ""), error_message(exc))
            continue
        return record(
            finding, ctx, Outcome.REMEDIATED, changes=changes, before=before,
            after={"public_members": _public_view(public_grants(written, roles))}, attempts=attempt,
            undo=f"{_iam_undo(name, 'add', public)}  # {_EXEMPT_FIRST}",
            reason=("re-planned" + conflict_note(conflicts)) if conflicts else "",
        )
    raise _exhausted(finding, ctx, conflicts)


# ---------------------------------------------------------------------------
# Quarantine.


def _now(ctx: ActionContext) -> str:
    return dt.datetime.fromtimestamp(ctx.clock(), dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def quarantine(finding: Finding, ctx: ActionContext, *, violates: Violates) -> ActionRecord:
    """Isolate the service, label it and record its prior state on it; see the module docstring.

    `violates(svc, policy)` says whether the live service (and its IAM policy) still breaks the
    rule (`still_violates`); it is asked only
    while the service carries no quarantine record. Once it does, the quarantine stands until
    `release`, and a new finding only completes or restores the isolation.

    IAM permissions: run.services.get, run.services.update, run.operations.get,
    run.services.getIamPolicy, run.services.setIamPolicy.
    """
    from google.api_core import exceptions as gexc

    name = finding.resource
    key = ctx.quarantine_label
    if not _LABEL_KEY.match(key):
        return record(
            finding, ctx, Outcome.FAILED,
            reason=f"quarantine_label: expected a label key [a-z][a-z0-9_-]{{0,62}}, found {key!r}",
        )
    timeout = read_timeout(ctx.operation_timeout)
    done: list[Change] = []
    first_before: dict[str, Any] | None = None
    intended: set[Grant] = set()  # recorded as removed by this call, not yet removed from IAM
    conflicts = 0
    stale: StaleWrite | None = None
    for attempt in range(1, ctx.max_attempts + 1):
        svc = get_service(name, timeout)
        policy = get_policy(name, timeout)
        public = public_grants(policy)
        before = {**service_facts(svc, key), "public_members": _public_view(public)}
        first_before = first_before or before
        if stale and stale.unchanged(svc.etag, policy.get("etag", "")):
            return record(finding, ctx, Outcome.FAILED, changes=done, before=first_before, attempts=attempt - 1,
                           reason=stale.reason())
        try:
            rec = record_of(svc)
        except BadRecord as exc:
            return record(
                finding, ctx, Outcome.FAILED, changes=done, before=first_before, attempts=attempt - 1,
                reason=f"annotation {QUARANTINE_ANNOTATION} on {name} is not a Rampart quarantine record ({exc}); "
                "fix or remove it, then quarantine again",
            )
        if rec is None:
            if not violates(svc, policy):
                return record(
                    finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, attempts=attempt - 1,
                    reason=f"live service no longer violates {finding.rule}" + conflict_note(conflicts),
                )
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
            return record(
                finding, ctx, Outcome.FAILED, changes=done, before=first_before, attempts=attempt - 1,
                reason=f"quarantine record of {len(text.encode())} bytes is over the {RECORD_MAX_BYTES}-byte limit",
            )

        svc_changes: list[Change] = []
        ingress = ingress_of(svc)
        if ingress not in CLOSED_INGRESS:
            svc.ingress = rec.set_ingress if rec.set_ingress in CLOSED_INGRESS else ISOLATED_INGRESS
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

        if not svc_changes and not iam_changes:
            if done:
                return _quarantined(finding, ctx, done, first_before, before, attempt - 1, conflicts)
            return record(
                finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, attempts=attempt - 1,
                reason=f"already quarantined by {rec.rule} at {rec.at} (event {rec.event})",
            )
        if ctx.dry_run:
            after = {**service_facts(svc, key), "public_members": []}
            return record(finding, ctx, Outcome.DRY_RUN, changes=svc_changes + iam_changes, before=before, after=after)

        after_view = service_facts(svc, key)
        if svc_changes:
            etag = svc.etag
            try:
                after_view = service_facts(update_service(svc, ctx.operation_timeout), key)
            except OperationTimeout as exc:
                return record(
                    finding, ctx, Outcome.FAILED, changes=done, before=first_before, attempts=attempt,
                    reason=f"{exc}; the quarantine may be half done: check {name} (quarantining it again completes it)",
                )
            except gexc.GoogleAPICallError as exc:
                if not is_conflict(exc):
                    raise
                conflicts += 1
                stale = StaleWrite("service", etag, error_message(exc))
                continue
            done += svc_changes
        intended = set(public)
        if iam_changes:
            try:
                set_policy(name, new_policy, timeout)
            except gexc.GoogleAPICallError as exc:
                if not is_conflict(exc):
                    raise
                conflicts += 1
                stale = StaleWrite("policy", policy.get("etag", ""), error_message(exc))
                continue
            done += iam_changes
        return _quarantined(finding, ctx, done, first_before, {**after_view, "public_members": []}, attempt, conflicts)
    raise _exhausted(finding, ctx, conflicts)


def _quarantined(
    finding: Finding, ctx: ActionContext, done: list[Change], before: dict[str, Any] | None,
    after: dict[str, Any], attempts: int, conflicts: int,
) -> ActionRecord:
    return record(
        finding, ctx, Outcome.QUARANTINED, changes=done, before=before or {}, after=after, attempts=attempts,
        undo=f"python main.py release {finding.resource}",
        reason=f"isolated by {finding.rule}; prior state kept in annotation {QUARANTINE_ANNOTATION}"
        + conflict_note(conflicts),
    )


Violates = Callable[[Any, Policy], bool]  # (live run_v2.Service, its IAM policy JSON) -> still non-compliant?


def still_violates(rule: Rule, params: Any) -> Violates:
    """The rule's own `check` on the live service, or on its live IAM policy for a policy rule."""
    from shared.views import iam, run

    def violates(svc: Any, policy: Policy) -> bool:
        view = iam.from_live(svc.name, policy) if rule.kind is iam.POLICY else run.from_live(svc)
        return view is not None and rule.check(view, params) is not None

    return violates


def dispatch(
    finding: Finding, ctx: ActionContext, *, rule: Rule, params: Any,
    revert: Callable[[], ActionRecord] | None = None,
) -> ActionRecord:
    """Run the action the policy chose: quarantine (while `rule` still flags the live service),
    or the rule's `revert` if it offers one."""
    if ctx.action is Action.QUARANTINE:
        return quarantine(finding, ctx, violates=still_violates(rule, params))
    if ctx.action is Action.REVERT and revert is not None:
        return revert()
    offered = "revert or quarantine" if revert is not None else "quarantine"
    return record(
        finding, ctx, Outcome.FAILED, reason=f"{finding.rule}: expected action {offered}, found {ctx.action.value}"
    )


# ---------------------------------------------------------------------------
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
    done: list[Change] = []
    drift: list[Drift] = []
    stale: StaleWrite | None = None
    try:
        for attempt in range(1, max_attempts + 1):
            svc = get_service(name, timeout)
            try:
                rec = record_of(svc)
            except BadRecord as exc:
                raise ReleaseError(
                    f"{name}: annotation {QUARANTINE_ANNOTATION} is not a Rampart quarantine record ({exc})"
                ) from None
            if rec is None:
                raise NotQuarantined(
                    f"{name} carries no {QUARANTINE_ANNOTATION} annotation: it is not quarantined, nothing to release"
                )
            policy = get_policy(name, timeout)
            if stale and stale.unchanged(svc.etag, policy.get("etag", "")):
                raise ReleaseError(f"{name}: {stale.reason()}")
            now_drift = drift_of(svc, policy, rec, restored_iam)
            if now_drift and not force:
                raise ReleaseRefused(name, rec, now_drift)
            drift = drift or now_drift

            give_back = [g for g in rec.removed if g not in restored_iam]
            new_policy, iam_changes = with_grants(policy, give_back)
            if iam_changes:
                try:
                    set_policy(name, new_policy, timeout)
                except gexc.GoogleAPICallError as exc:
                    if not is_conflict(exc):
                        raise
                    stale = StaleWrite("policy", policy.get("etag", ""), error_message(exc))
                    continue
                done += iam_changes
            restored_iam |= set(give_back)

            svc_changes: list[Change] = []
            ingress = ingress_of(svc)
            if ingress != rec.prior_ingress:
                svc.ingress = rec.prior_ingress
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
            etag = svc.etag
            try:
                update_service(svc, operation_timeout)
            except OperationTimeout as exc:
                raise ReleaseError(f"{name}: {exc}; check the service, then run release again") from exc
            except gexc.GoogleAPICallError as exc:
                if not is_conflict(exc):
                    raise
                stale = StaleWrite("service", etag, error_message(exc))
                continue
            return ReleaseResult(name, rec, done + svc_changes, force, drift, attempt)
    except gexc.NotFound as exc:
        raise ReleaseError(f"{name}: not found ({error_message(exc)})") from exc
    except (gexc.GoogleAPICallError, TransientError) as exc:
        so_far = f"already restored: {', '.join(c.field for c in done)}" if done else "nothing was changed"
        raise ReleaseError(f"{name}: {type(exc).__name__}: {error_message(exc)}; {so_far}") from exc
    raise ReleaseError(f"{name}: changed under us on each of {max_attempts} attempts; run release again")



"""One shard (one page of Asset Inventory results) through the rules, the decision and the action.

`run_shard` is what a sweep worker does with a shard, in `scan` and in the `rampart_sweep`
function alike. Per record: parse it (odd records are skipped with a reason and counted), read the
resource in full only if the record carries no data, run the rules (`evaluate`), and for each
finding decide and act exactly as for an event, with the rule's mode capped at `sweep.max_mode`.
Actions re-read live state, so a violation the event path already fixed (the record is minutes
old) ends `already_compliant` with no write. Alerts go through the same dedupe as events, keyed by
the violation (rule, resource, state), so a violation gets one alert whichever path saw it first,
and a shard run twice alerts once: an `already_compliant` record is tentative there (it waits
`dedupe.settle_seconds` for the record of whoever did the work, and is silent if that path alerted
since the resource changed); it speaks only when nobody did, e.g. this shard's earlier run fixed it
and died before alerting.

Transient failures (API 429/5xx, an alert channel down) raise `TransientError`: the shard is
redelivered (Pub/Sub) or retried (`scan`), and everything it already did is idempotent.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from shared.model import ActionRecord, Mode, Outcome
from shared.sweep import evaluate as ev
from shared.sweep.records import AssetRecord, IamRecord, Skipped, parse_iam, parse_resource, timestamp_seconds

MAX_ITEMS_PER_SHARD = 1000  # violations listed per shard in the report (all are counted)
_MODE_ORDER = (Mode.OFF, Mode.ALERT, Mode.DRY_RUN, Mode.ENFORCE)
_ACTED = (Outcome.REMEDIATED.value, Outcome.QUARANTINED.value)
_NOT_ALERTED = (Outcome.EXEMPT, Outcome.NOT_FOUND)


@dataclass(frozen=True, slots=True)
class Shard:
    """One page of results to judge: `kind` is "resources" or "iam"."""

    sweep_id: str
    scope: str
    kind: str
    index: int
    results: list[dict[str, Any]]

    @property
    def key(self) -> str:
        return f"{self.kind}-{self.scope.replace('/', '-')}-{self.index:06d}"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(slots=True)
class Tally:
    """What one or more shards found; `merge` adds another. Keys are strings (JSON, Firestore)."""

    seen: Counter[str] = field(default_factory=Counter)  # asset type (IAM policies as "iam:<type>")
    skipped: Counter[str] = field(default_factory=Counter)  # reason
    compliant: Counter[str] = field(default_factory=Counter)  # "project|rule"
    violating: Counter[str] = field(default_factory=Counter)  # "project|rule"
    exempt: Counter[str] = field(default_factory=Counter)  # "project|rule"
    violations: Counter[str] = field(default_factory=Counter)  # rule (exempt ones excluded)
    outcomes: Counter[str] = field(default_factory=Counter)
    reads: int = 0  # resources read in full because their record carried no data
    errors: list[str] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def actions(self) -> int:
        return sum(self.outcomes[o] for o in _ACTED)

    def merge(self, other: Tally) -> None:
        for name in ("seen", "skipped", "compliant", "violating", "exempt", "violations", "outcomes"):
            getattr(self, name).update(getattr(other, name))
        self.reads += other.reads
        self.errors.extend(other.errors)
        self.items.extend(other.items)

    def to_dict(self) -> dict[str, Any]:
        return {
            "seen": dict(self.seen), "skipped": dict(self.skipped), "compliant": dict(self.compliant),
            "violating": dict(self.violating), "exempt": dict(self.exempt), "violations": dict(self.violations),
            "outcomes": dict(self.outcomes), "actions": self.actions, "reads": self.reads,
            "errors": list(self.errors), "items": list(self.items),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Tally:
        t = cls()
        for name in ("seen", "skipped", "compliant", "violating", "exempt", "violations", "outcomes"):
            getattr(t, name).update({str(k): int(v) for k, v in (d.get(name) or {}).items()})
        t.reads = int(d.get("reads") or 0)
        t.errors = [str(e) for e in d.get("errors") or []]
        t.items = list(d.get("items") or [])
        return t


@dataclass
class SweepContext:
    """What a worker needs besides the shard: the policy, which rules, and where alerts go."""

    loaded: Any  # shared.config.LoadedPolicy
    rules: tuple[str, ...] | None = None  # None: every enabled rule
    alert: bool = True
    dedupe: Any = None  # a dedupe Store; None: the one the policy names
    max_mode: Mode | None = None  # None: the policy's sweep.max_mode


def capped(settings: Any, max_mode: Mode) -> Any:
    """`settings` with its mode lowered to `max_mode` if it is stronger."""
    if _MODE_ORDER.index(settings.mode) <= _MODE_ORDER.index(max_mode):
        return settings
    return dataclasses.replace(settings, mode=max_mode)


def run_shard(shard: Shard, ctx: SweepContext) -> Tally:
    """Judge every record of `shard` and act on its findings; see the module docstring."""
    tally = Tally()
    max_mode = ctx.max_mode or ctx.loaded.policy.sweep.max_mode
    for raw in shard.results:
        rec = parse_iam(raw) if shard.kind == "iam" else parse_resource(raw)
        if isinstance(rec, Skipped):
            tally.skipped[rec.reason] += 1
            continue
        tally.seen[f"iam:{rec.asset_type}" if isinstance(rec, IamRecord) else rec.asset_type] += 1
        if isinstance(rec, AssetRecord) and rec.data is None:
            full = read_in_full(rec)
            tally.reads += 1
            if isinstance(full, Skipped):
                tally.skipped[full.reason] += 1
                continue
            if full is None:
                tally.outcomes[Outcome.NOT_FOUND.value] += 1  # deleted since Asset Inventory saw it
                continue
            rec = full
        verdicts = ev.evaluate_iam(rec, ctx.loaded, ctx.rules) if isinstance(rec, IamRecord) \
            else ev.evaluate_asset(rec, ctx.loaded, ctx.rules)
        for v in verdicts:
            key = f"{v.project}|{v.rule}"
            if v.finding is None:
                tally.compliant[key] += 1
                continue
            record = _act(v, capped(v.settings, max_mode), ctx)
            tally.outcomes[record.outcome.value] += 1
            if record.outcome is Outcome.EXEMPT:
                tally.exempt[key] += 1
            elif record.outcome in (Outcome.ALREADY_COMPLIANT, Outcome.NOT_FOUND):
                tally.compliant[key] += 1  # the record was older than the live state
            else:
                tally.violating[key] += 1
                tally.violations[v.rule] += 1
            if record.outcome not in (Outcome.ALREADY_COMPLIANT, Outcome.NOT_FOUND) \
                    and len(tally.items) < MAX_ITEMS_PER_SHARD:
                tally.items.append(_item(record, v, ctx.loaded))
    return tally


def _act(v: ev.Verdict, settings: Any, ctx: SweepContext) -> ActionRecord:
    from shared.alerts import deliver, log_record
    from shared.pipeline import act

    assert v.finding is not None
    record = act(v.finding, settings, ctx.loaded)
    log_record(record)
    alerts = ctx.loaded.alerts
    if ctx.alert and alerts is not None and record.outcome not in _NOT_ALERTED:
        changed = timestamp_seconds(v.finding.timestamp) if v.finding.timestamp else None
        deliver(record, alerts, store=ctx.dedupe, changed_at=changed)
    return record


def _item(record: ActionRecord, v: ev.Verdict, loaded: Any) -> dict[str, Any]:
    f = record.finding
    item: dict[str, Any] = {
        "rule": f.rule, "severity": record.effective_severity.value, "title": f.title, "resource": f.resource,
        "resource_type": f.resource_type, "project": f.project, "location": f.location,
        "outcome": record.outcome.value, "mode": record.mode.value, "action": f.action.value,
        "changed_at": f.timestamp, "observed": f.observed, "reason": record.reason,
        "changes": [dataclasses.asdict(c) for c in record.changes],
    }
    if record.outcome is Outcome.EXEMPT:
        from shared.config import exemption_for

        ex, _ = exemption_for(loaded, v.settings, f.resource, f.project)
        if ex is not None:
            item["exemption"] = {"owner": ex.owner, "expires": ex.expires.isoformat(), "reason": ex.reason}
    return item


def read_in_full(rec: AssetRecord) -> AssetRecord | Skipped | None:
    """`rec` with its data read from the live API (the record carried none); None if it is gone;
    Skipped for a type the sweep has no reader of (none today; a type added to the listing later).
    IAM: run.services.get, run.jobs.get, run.workerPools.get, cloudkms.keyRings.get, cloudkms.cryptoKeys.get,
    cloudkms.cryptoKeyVersions.get, cloudfunctions.functions.get, orgpolicy.policy.get."""
    from google.api_core import exceptions as gexc
    from google.protobuf.json_format import MessageToDict

    from shared import clients
    from shared.actions import TransientError, read_timeout, rest_call, transient_types
    from shared.sweep.records import (
        CRYPTO_KEY,
        FUNCTION,
        KEY_RING,
        KEY_VERSION,
        ORG_POLICY,
        RUN_JOB,
        RUN_SERVICE,
        RUN_WORKER_POOL,
    )

    data: Any
    try:
        if rec.asset_type == RUN_SERVICE:
            msg, version = clients.run_services().get_service(name=rec.name), "v2"
        elif rec.asset_type == RUN_JOB:
            msg, version = clients.run_jobs().get_job(name=rec.name), "v2"
        elif rec.asset_type == RUN_WORKER_POOL:
            msg, version = clients.run_worker_pools().get_worker_pool(name=rec.name), "v2"
        elif rec.asset_type == KEY_RING:
            msg, version = clients.kms().get_key_ring(name=rec.name), "v1"
        elif rec.asset_type == CRYPTO_KEY:
            msg, version = clients.kms().get_crypto_key(name=rec.name), "v1"
        elif rec.asset_type == KEY_VERSION:
            msg, version = clients.kms().get_crypto_key_version(name=rec.name), "v1"
        elif rec.asset_type in (FUNCTION, ORG_POLICY):
            api = clients.functions_rest() if rec.asset_type == FUNCTION else clients.orgpolicy_rest()
            msg, version = None, "v2"
            data = rest_call(api, "GET", f"v2/{rec.name}", read_timeout(30.0))
        else:
            return Skipped("record carries no data and the sweep has no reader of its type", rec.asset_type)
    except gexc.NotFound:
        return None
    except transient_types() as exc:
        raise TransientError(f"reading {rec.name}: {type(exc).__name__}") from exc
    if msg is not None:
        data = MessageToDict(type(msg).pb(msg))
    if not isinstance(data, dict):
        return Skipped("live read returned no object", rec.asset_type)
    update_time = rec.update_time or _update_time(data)
    return dataclasses.replace(rec, data=data, version=version, update_time=update_time)


def _update_time(data: dict[str, Any]) -> str:
    """A resource's own updateTime (an org policy's is its spec's)."""
    for value in (data.get("updateTime"), (data.get("spec") or {}).get("updateTime") if isinstance(data.get("spec"), dict) else None):
        if isinstance(value, str) and timestamp_seconds(value) is not None:
            return value
    return ""

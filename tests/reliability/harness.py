"""Shared helpers for the pipeline reliability scenarios (tests/reliability/test_pipeline_*.py).

Every scenario runs on the real local pipeline (`infra.local.stack.LocalStack`): the Pub/Sub
emulator pushes to functions-framework servers running main.py, which remediate through the
real google-cloud clients against the stand-in and alert to the Slack and SMTP receivers and
the Pub/Sub alert topic, with dedupe in the Firestore emulator.

What this module adds:
- `sized(short, soak)`: one parameter per scenario, the short one in `make test`, the long one
  (marked `soak`) when `RAMPART_SOAK=1`;
- `Doors`: fresh resources per scenario (seeded into the stand-in) and the two halves of a
  violation: the change in live state (`stack.admin.mutate`, as a person would make it) and the
  audit entry it produces (shaped like the corpus, from infra/local/scenario.py);
- `Ledger`: what came out, read from the outside only: effective writes per resource in the
  stand-in's request log, alerts per incident on every channel, records in the function logs;
  and the verdicts `lost` and `doubled`, which every scenario asserts are empty;
- `save_figures`: the figures for tests/reliability/results.json.

Live state is read through the stand-in's admin API, which faults never touch.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import shutil
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.provenance import measured_at
from infra.local import scenario as S
from infra.local.stack import REMEDIATOR, ROOT, LocalStack, deep_merge
from shared.alerts.dedupe import event_key

SOAK = os.environ.get("RAMPART_SOAK") == "1"
RESULTS = Path(__file__).resolve().parent / "results.json"
SHORT_RESULTS = ROOT / ".local" / "reliability" / "results-short.json"

RUN_WRITE = re.compile(r"^/v2/(projects/[^/]+/locations/[^/]+/services/[^/:]+)(:setIamPolicy)?$")
KMS_WRITE = re.compile(r"^/v1/(projects/.+?)(:setIamPolicy|:restore|:destroy)?$")

ALLOWED_INGRESS = ("INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "INGRESS_TRAFFIC_INTERNAL_ONLY", "INGRESS_TRAFFIC_NONE")
PUSH_SA = "serviceAccount:claims-pubsub-push@demo-project.iam.gserviceaccount.com"
ENCRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


def sized(short: Any, soak: Any) -> list[Any]:
    """The scenario's size: `short` in `make test`, `soak` (marked soak) under RAMPART_SOAK=1.
    A tuple is several parameters."""
    value = soak if SOAK else short
    values = value if isinstance(value, tuple) else (value,)
    if SOAK:
        return [pytest.param(*values, id="soak", marks=pytest.mark.soak)]
    return [pytest.param(*values, id="short")]


def mode() -> str:
    return "soak" if SOAK else "short"


# ---------------------------------------------------------------------------------------------
# Stacks


def stack_policy(**overrides: Any) -> dict[str, Any]:
    """Policy overrides of the scenario stack: channels answer fast (so a lease can be short),
    a deadline a delayed call can miss in a test's time, a short settle for tentative alerts."""
    base: dict[str, Any] = {
        # The circuit breaker would stop the scenarios that reopen one resource again and again
        # (that is its job); they measure remediation, so it is off here and has its own scenario.
        "remediation": {"operation_timeout_seconds": 3, "circuit_breaker": {"max_remediations": 0}},
        "alerts": {
            "slack": {"timeout_seconds": 2},
            "email": {"timeout_seconds": 2},
            "pubsub": {"timeout_seconds": 5},
            "dedupe": {"lease_seconds": 20, "window_seconds": 3600, "escalate_after": 5, "settle_seconds": 3},
        },
    }
    deep_merge(base, overrides)
    return base


_SHARED: dict[str, Any] = {}
_SHARED_LOCK = threading.Lock()


def shared_stack(request: pytest.FixtureRequest) -> LocalStack:
    """One local stack (two function instances) for every pipeline scenario in the session.

    Starting one takes ~13 s and stopping it ~5 s, so the scenarios share it; each works on its
    own resources (`Doors`), scopes its faults to them and puts back what it changed
    (`restore`). It is stopped by PID when the session ends, also after a failure."""
    with _SHARED_LOCK:
        stack = _SHARED.get("stack")
        if stack is None:
            exits = contextlib.ExitStack()
            request.config.add_cleanup(exits.close)
            workdir = ROOT / ".local" / "reliability" / "stack"  # logs kept for a look after a failure
            shutil.rmtree(workdir, ignore_errors=True)
            # Redelivered about once a second (no retry policy: see LocalStack._subscribe), so 30
            # attempts is ~30 s before the dead-letter topic: an outage in a scenario is shorter.
            stack = exits.enter_context(LocalStack(workdir, functions=2, policy_overrides=stack_policy(),
                                                   max_delivery_attempts=30))
            _SHARED["stack"] = stack
            _SHARED["policy"] = stack.policy_path.read_text()
        return stack


def restore(stack: LocalStack) -> None:
    """Put the shared stack back as it started: no faults, the first policy, every emulator,
    instance and channel up."""
    stack.admin.clear_faults()
    if stack.firestore is not None and stack.firestore.proc is None:
        stack.firestore.up()
    if stack.pubsub.proc is None:
        stack.restart_pubsub()
    policy = _SHARED.get("policy")
    if policy is not None and stack.policy_path.read_text() != policy:
        stack.write_policy(policy)
    for i, proc in enumerate(stack.functions):
        if not proc.alive():
            stack.start_function(i)
    stack.slack.set_down(False)
    if stack.smtp._controller is None:
        stack.smtp.start()


def base_policy(stack: LocalStack) -> dict[str, Any]:
    """The policy the stack started with, as a dict to edit and `stack.write_policy` again."""
    import yaml

    return yaml.safe_load(stack.policy_path.read_text())


# ---------------------------------------------------------------------------------------------
# Violations


@dataclass
class Door:
    """One violation: a change made in live state, and the audit entry that says so."""

    rule: str
    resource: str
    entry: dict[str, Any]
    opened_at: float

    @property
    def event_id(self) -> str:
        return str(self.entry["insertId"])

    @property
    def alert_id(self) -> str:
        return event_key(self.rule, self.event_id)[4:28]


class Doors:
    """Fresh resources for one scenario, and ways to open doors on them."""

    def __init__(self, stack: LocalStack, prefix: str) -> None:
        self.stack = stack
        self.prefix = prefix
        self._template = next(s for s in stack.admin.state()["services"] if s["name"].endswith("/patient-api"))

    def services(self, n: int) -> list[str]:
        """Seed `n` compliant Cloud Run services (copies of patient-api) named <prefix>-<i>."""
        services, policies = [], {}
        for i in range(n):
            svc = copy.deepcopy(self._template)
            for k in ("uid", "generation", "observedGeneration", "createTime", "updateTime", "creator", "lastModifier",
                      "uri", "urls", "latestCreatedRevision", "latestReadyRevision", "terminalCondition", "etag"):
                svc.pop(k, None)
            svc["name"] = f"{S.SVC}/{self.prefix}-{i}"
            services.append(svc)
            policies[svc["name"]] = {"bindings": [{"role": "roles/run.invoker", "members": [PUSH_SA]}]}
        self.stack.admin.seed({"services": services})
        self.stack.admin.seed({"policies": policies})
        return [s["name"] for s in services]

    def key_versions(self, n: int) -> list[str]:
        """Seed `n` CMEK keys in demo-ring, each with one ENABLED version; returns the versions."""
        keys = [{"name": f"{S.RING}/cryptoKeys/{self.prefix}-{i}", "rotationPeriod": "7776000s",
                 "nextRotationTime": "2030-01-01T00:00:00Z"} for i in range(n)]
        versions = [{"name": f"{k['name']}/cryptoKeyVersions/1"} for k in keys]
        self.stack.admin.seed({"cryptoKeys": keys, "cryptoKeyVersions": versions})
        return [v["name"] for v in versions]

    def keys_with_agent(self, n: int) -> list[str]:
        """Seed `n` CMEK keys whose IAM policy grants the service agent encrypter/decrypter."""
        keys = [f"{S.RING}/cryptoKeys/{self.prefix}-k{i}" for i in range(n)]
        self.stack.admin.seed({
            "cryptoKeys": [{"name": k, "rotationPeriod": "7776000s", "nextRotationTime": "2030-01-01T00:00:00Z"} for k in keys],
            "cryptoKeyVersions": [{"name": f"{k}/cryptoKeyVersions/1"} for k in keys],
        })
        self.stack.admin.seed({"policies": {k: {"bindings": [{"role": ENCRYPTER, "members": [S.AGENT]}]} for k in keys}})
        return keys

    # -- opening doors ------------------------------------------------------------------------

    def ingress(self, service: str, *, principal: str = S.DEVELOPER) -> Door:
        self.stack.admin.mutate(service, patch={"ingress": "INGRESS_TRAFFIC_ALL"}, actor=principal)
        return Door("run_ingress_open", service, S.replace_service_v1(short(service), ingress="all", principal=principal),
                    time.time())

    def public_invoker(self, service: str) -> Door:
        self.stack.admin.mutate(service, iam_add={"role": "roles/run.invoker", "member": "allUsers"}, actor=S.DEVELOPER)
        entry = S.set_iam_run(short(service), "allUsers", policy_members=[PUSH_SA, "allUsers"])
        return Door("run_public_invoker", service, entry, time.time())

    def version_disabled(self, version: str) -> Door:
        self.stack.admin.mutate(version, patch={"state": "DISABLED"}, actor=S.DEVELOPER)
        return Door("kms_version_disabled", version, S.kms_update_version("DISABLED", version=version), time.time())

    def key_agent_swapped_for_public(self, key: str) -> list[Door]:
        """One SetIamPolicy that removes the service agent and grants allUsers: two findings
        (kms_agent_binding_removed, kms_public_member) in one event."""
        self.stack.admin.mutate(key, iam_remove={"role": ENCRYPTER, "member": S.AGENT}, actor=S.DEVELOPER)
        self.stack.admin.mutate(key, iam_add={"role": ENCRYPTER, "member": "allUsers"}, actor=S.DEVELOPER)
        entry = S.kms_set_iam(key, ENCRYPTER, S.AGENT, "REMOVE")
        entry["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"].append(
            {"action": "ADD", "role": ENCRYPTER, "member": "allUsers"})
        now = time.time()
        return [Door("kms_agent_binding_removed", key, entry, now), Door("kms_public_member", key, entry, now)]

    def open(self, kind: str, resource: str) -> Door:
        return {"ingress": self.ingress, "invoker": self.public_invoker, "version": self.version_disabled}[kind](resource)


def short(service: str) -> str:
    return service.rsplit("/", 1)[1]


def compliant(state: dict[str, Any], door: Door) -> bool:
    """Whether `door` is closed in a snapshot of live state (`stack.admin.state()`)."""
    if door.rule == "run_ingress_open":
        svc = next((s for s in state["services"] if s["name"] == door.resource), None)
        return svc is not None and svc.get("ingress") in ALLOWED_INGRESS
    if door.rule == "run_public_invoker":
        policy = state["policies"].get(door.resource, {})
        return not any("allUsers" in b.get("members", []) for b in policy.get("bindings", []))
    if door.rule in ("kms_agent_binding_removed", "kms_public_member"):
        members = {m for b in state["policies"].get(door.resource, {}).get("bindings", []) for m in b.get("members", [])}
        if door.rule == "kms_public_member":
            return not members & {"allUsers", "allAuthenticatedUsers"}
        agents = [m for b in state["policies"].get(door.resource, {}).get("bindings", []) if b["role"] == ENCRYPTER
                  for m in b.get("members", [])]
        return S.AGENT in agents
    if door.rule == "kms_version_disabled":
        v = next((v for v in state["cryptoKeyVersions"] if v["name"] == door.resource), None)
        return v is not None and v.get("state") == "ENABLED"
    raise AssertionError(f"no compliance check for {door.rule}")


def open_doors(stack: LocalStack, doors: list[Door]) -> list[Door]:
    state = stack.admin.state()
    return [d for d in doors if not compliant(state, d)]


def wait_closed(stack: LocalStack, doors: list[Door], timeout: float) -> list[Door]:
    """Wait until every door is closed in live state; returns those still open at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        left = open_doors(stack, doors)
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.1)


# ---------------------------------------------------------------------------------------------
# What came out


@dataclass
class Alert:
    channel: str
    alert_id: str
    kind: str  # incident | escalation


_SLACK_ALERT_ID = re.compile(r"\balert ([0-9a-f]{24})\b")


_PUBSUB_ALERTS: list[dict[str, Any]] = []  # every alert pulled from the alert topic this session
_PUBSUB_LOCK = threading.Lock()


class Ledger:
    """Everything observable from outside the functions, accumulated over a scenario."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack

    @property
    def pubsub(self) -> list[dict[str, Any]]:
        with _PUBSUB_LOCK:
            return list(_PUBSUB_ALERTS)

    # -- alerts -------------------------------------------------------------------------------

    def drain_pubsub(self) -> None:
        with _PUBSUB_LOCK:
            while True:
                got = self.stack.alert_messages(timeout=0.3)
                _PUBSUB_ALERTS.extend(got)
                if not got:
                    return

    def alerts(self, doors: list[Door] | None = None) -> list[Alert]:
        """Every alert (not the follow-up notices) on every channel; only `doors`' if given."""
        self.drain_pubsub()
        out = []
        for p in self.stack.slack.posts:
            blocks = p.body.get("blocks") or []
            if not any(b.get("type") == "header" for b in blocks):
                continue  # a follow-up notice about another channel, not an alert
            context = " ".join(e.get("text", "") for b in blocks if b.get("type") == "context" for e in b.get("elements", []))
            m = _SLACK_ALERT_ID.search(context)
            header = blocks[0]["text"]["text"]
            out.append(Alert("slack", m.group(1) if m else "?", "escalation" if header.startswith("Escalated") else "incident"))
        for mail in self.stack.smtp.mails:
            if mail.message["X-Rampart-Kind"] is None:
                continue
            out.append(Alert("email", str(mail.message["X-Rampart-Alert-Id"]), str(mail.message["X-Rampart-Kind"])))
        out += [Alert("pubsub", m["alert_id"], m["alert_kind"]) for m in self.pubsub]
        if doors is not None:
            ids = {d.alert_id for d in doors}
            out = [a for a in out if a.alert_id in ids]
        return out

    def alerts_by_id(self) -> dict[str, Counter[str]]:
        """alert_id → how many alerts each channel got for it."""
        by: dict[str, Counter[str]] = defaultdict(Counter)
        for a in self.alerts():
            by[a.alert_id][a.channel] += 1
        return by

    def pubsub_alert(self, alert_id: str) -> dict[str, Any] | None:
        self.drain_pubsub()
        return next((m for m in self.pubsub if m["alert_id"] == alert_id), None)

    # -- writes -------------------------------------------------------------------------------

    def writes(self, since: float = 0.0) -> dict[str, list[dict[str, Any]]]:
        """Effective (2xx) writes per resource in the stand-in's request log."""
        out: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in self.stack.admin.requests():
            if r["method"] == "GET" or not 200 <= r["status"] < 300 or r["time"] < since:
                continue
            m = RUN_WRITE.match(r["path"]) or KMS_WRITE.match(r["path"])
            if m:
                out[m.group(1)].append(r)
        return out

    # -- records ------------------------------------------------------------------------------

    def records(self, event_id: str | None = None) -> list[dict[str, Any]]:
        recs = self.stack.records()
        return [r for r in recs if event_id is None or r.get("event_id") == event_id]


def alerted_once(ledger: Ledger, doors: list[Door], channels: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(lost, doubled): incidents missing an alert on a routed channel, and those with more than one."""
    by = ledger.alerts_by_id()
    lost, doubled = [], []
    for d in doors:
        got = by.get(d.alert_id, Counter())
        for ch in channels:
            if got[ch] == 0:
                lost.append(f"{d.rule} {d.event_id} on {short(d.resource)}: no {ch} alert")
            elif got[ch] > 1:
                doubled.append(f"{d.rule} {d.event_id} on {short(d.resource)}: {got[ch]} {ch} alerts")
    return lost, doubled


def wait_alerted(ledger: Ledger, doors: list[Door], channels: tuple[str, ...], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lost, _ = alerted_once(ledger, doors, channels)
        if not lost or time.monotonic() >= deadline:
            return lost
        time.sleep(0.2)


def unseen(ledger: Ledger, doors: list[Door]) -> list[str]:
    """Violations that ended without a record or an alert (issue 15: must be none): still open in
    live state and no FAILED record of them (by the function, on its last attempt, or by the
    dead-letter consumer) that an alert went out for, or closed with no record at all."""
    still = {d.resource for d in open_doors(ledger.stack, doors)}
    alerted = set(ledger.alerts_by_id())
    by_event: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in ledger.records():
        by_event[str(r.get("event_id"))].append(r)
    out = []
    for d in doors:
        ids = [d.event_id, d.event_id + "#last-attempt", d.event_id + "#dead-letter"]
        recs = [r for i in ids for r in by_event.get(i, ()) if r.get("rule") == d.rule]
        if d.resource in still:
            told = any(r["outcome"] in ("failed", "not_found") and event_key(d.rule, r["event_id"])[4:28] in alerted
                       for r in recs)
            if not told:
                out.append(f"{d.rule} {d.event_id} on {short(d.resource)}: open, and no failed record alerted")
        elif not recs:
            out.append(f"{d.rule} {d.event_id} on {short(d.resource)}: closed, but no record")
    return out


def remediated_once(ledger: Ledger, doors: list[Door], since: float) -> tuple[list[str], list[str]]:
    """(unremediated, doubled): resources whose violation got no effective write, or more effective
    writes than openings. See `effective_writes` for what counts."""
    effective, _ = effective_writes(ledger, doors, since)
    opened = Counter(d.resource for d in doors)
    missing = [f"{r}: no write" for r in opened if not effective.get(r)]
    doubled = [f"{r}: {len(effective[r])} writes for {k} opening(s)" for r, k in opened.items() if len(effective.get(r, [])) > k]
    return missing, doubled


def effective_writes(ledger: Ledger, doors: list[Door], since: float) -> tuple[dict[str, list[dict[str, Any]]], int]:
    """Writes per resource that changed something, and how many did not.

    Cloud Run and IAM writes carry the etag they were planned against: a second one fails (409),
    so every 2xx write is a change. KMS key versions have no etag: two handlers that both read
    DISABLED both write ENABLED, and the second write (same body, no opening in between) changes
    nothing; it is counted apart, as a no-op."""
    openings: dict[str, list[float]] = defaultdict(list)
    for d in doors:
        openings[d.resource].append(d.opened_at)
    out: dict[str, list[dict[str, Any]]] = {}
    noop = 0
    for resource, writes in ledger.writes(since).items():
        kept: list[dict[str, Any]] = []
        for w in sorted(writes, key=lambda w: w["time"]):
            if "/cryptoKeyVersions/" in resource and kept and kept[-1].get("body") == w.get("body") and not any(
                kept[-1]["time"] < t < w["time"] for t in openings[resource]
            ):
                noop += 1
                continue
            kept.append(w)
        out[resource] = kept
    return out, noop


def remediate_seconds(ledger: Ledger, door: Door) -> float | None:
    """Seconds from publishing `door`'s entry to the end of the first effective write on it."""
    ends = [r["time"] + r["durationMs"] / 1000 for r in ledger.writes(door.opened_at).get(door.resource, [])]
    return min(ends) - door.opened_at if ends else None


SETTLE = 6.0 if SOAK else 2.0  # seconds: two or more redelivery intervals (about 1 s each here)
SETTLE_LIMIT = 180.0 if SOAK else 90.0  # a stack still busy after this long is a failure in itself


def activity(ledger: Ledger) -> tuple[Any, ...]:
    """What moves while deliveries are still being handled: every relevant delivery leaves a
    line in its instance's log (a record, an ignored or failed event), every write a line in the
    stand-in's request log, every alert a Slack post, a mail or a Pub/Sub message."""
    stack = ledger.stack
    logs = tuple(stack.function_log(i).stat().st_size if stack.function_log(i).exists() else 0
                 for i in range(stack.n_functions))
    ledger.drain_pubsub()
    with _PUBSUB_LOCK:
        pulled = len(_PUBSUB_ALERTS)
    requests = stack.admin.requests()  # a ring buffer: its last entry moves even when its size does not
    last_request = (requests[-1]["time"], requests[-1]["path"]) if requests else None
    return logs, len(requests), last_request, len(stack.slack.posts), len(stack.smtp.mails), pulled


def settle(ledger: Ledger, quiet: float = SETTLE) -> None:
    """Wait until the stack is quiet before counting: nothing handled, written or alerted for
    `quiet` seconds (two redelivery intervals: a message not yet acknowledged would have come
    back, a late duplicate would have landed). A fixed sleep could end while duplicates were
    still arriving on a loaded machine, and count "doubled" too early."""
    deadline = time.monotonic() + SETTLE_LIMIT
    last, quiet_since = activity(ledger), time.monotonic()
    while time.monotonic() - quiet_since < quiet:
        if time.monotonic() >= deadline:
            raise AssertionError(f"the stack was still busy after {SETTLE_LIMIT:.0f} s: {last}")
        time.sleep(0.2)
        now = activity(ledger)
        if now != last:
            last, quiet_since = now, time.monotonic()


# ---------------------------------------------------------------------------------------------
# Publishing


def publish_all(stack: LocalStack, entries: list[dict[str, Any] | bytes], threads: int = 8) -> int:
    """Publish entries concurrently (the order they arrive in is not the order given)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(stack.publish, entries))
    return len(entries)


def self_change(service: str, ingress: str = "internal-and-cloud-load-balancing") -> dict[str, Any]:
    """The audit entry Rampart's own revert produces (its service account is the principal)."""
    return S.replace_service_v1(short(service), ingress=ingress, principal=REMEDIATOR)


# ---------------------------------------------------------------------------------------------
# Figures


DEFINITIONS = {
    "events_pushed": "deliveries pushed to the function instances at least once (messages published x instances)",
    "duplicates": "deliveries beyond the first of each audit entry (copies published, fan-out, redeliveries counted by the scenario)",
    "faults_injected": "stand-in faults that fired (status, delay, drop, moved etag), processes killed, channels or policies broken",
    "violations_remediated": "violations closed again in live state (stand-in state, read through its admin API)",
    "alerts_sent": "alerts received on Slack, e-mail and the Pub/Sub alert topic for the scenario's incidents",
    "lost": "violations left open + incidents missing an alert on a routed channel + concurrent changes lost (must be 0)",
    "doubled": "resources written more often than they were opened + incidents alerted twice on a channel (must be 0)",
    "unseen": "violations ended without record or alert: still open with no alerted FAILED record, or closed with no record (must be 0)",
}


def save_figures(scenario: str, figures: dict[str, Any]) -> None:
    """Merge one scenario's figures into results.json (soak) or .local/reliability (short)."""
    path = RESULTS if SOAK else SHORT_RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.setdefault("scenarios", {})[scenario] = {**figures, "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    totals: Counter[str] = Counter()
    for fig in data["scenarios"].values():
        for k in ("events_pushed", "duplicates", "faults_injected", "violations_remediated", "alerts_sent", "lost", "doubled",
                  "unseen"):
            totals[k] += int(fig.get(k, 0))
    data["run"] = mode()
    data["provenance"] = measured_at()
    data["command"] = "make soak (RAMPART_SOAK=1 pytest tests/reliability -m soak)" if SOAK else "make test"
    data["totals"] = dict(totals)
    data["definitions"] = DEFINITIONS
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def poll(cond: Callable[[], Any], timeout: float, interval: float = 0.1) -> Any:
    """`cond()` once it is truthy, or its last value at the deadline (never raises on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


@dataclass
class Figures:
    events_pushed: int = 0
    duplicates: int = 0
    faults_injected: int = 0
    violations_remediated: int = 0
    alerts_sent: int = 0
    lost: int = 0
    doubled: int = 0
    unseen: int = 0  # violations ended without record or alert
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in ("events_pushed", "duplicates", "faults_injected", "violations_remediated",
                                             "alerts_sent", "lost", "doubled", "unseen")}
        out.update(self.extra)
        return out


def routed(stack: LocalStack, rule: str) -> tuple[str, ...]:
    """The channels the stack's current policy routes `rule`'s incident alerts to."""
    from shared.config import load_policy

    loaded = load_policy(stack.policy_path)
    return tuple(loaded.alerts.channels_for(rule, loaded.settings(rule).severity))


def dead_lettered(stack: LocalStack) -> list[Any]:
    """Messages that reached the dead-letter topic (pulled and acknowledged)."""
    from infra.local.emulators import pull

    return pull(stack.pubsub.host, f"projects/{S.P}/subscriptions/rampart-dlq-pull", max_messages=100, timeout=0.5)


def publish_burst(stack: LocalStack, entries: list[dict[str, Any]]) -> float:
    """Publish `entries` as fast as the client batches them; returns the seconds it took."""
    stack.publish(entries[0])  # creates the stack's publisher
    start = time.monotonic()
    topic = f"projects/{S.P}/topics/rampart-audit-logs"
    futures = [stack._publisher.publish(topic, json.dumps(e, separators=(",", ":")).encode(),
                                        **{"logging.googleapis.com/timestamp": e["timestamp"]}) for e in entries[1:]]
    for f in futures:
        f.result(timeout=60)
    return time.monotonic() - start


def noise(n: int) -> list[dict[str, Any]]:
    """`n` ordinary audit entries that concern no rule (each with its own insertId)."""
    kinds = S.noise()
    irrelevant = [e for e in kinds if e["protoPayload"]["serviceName"] != "run.googleapis.com"]
    out = []
    for i in range(n):
        e = copy.deepcopy(irrelevant[i % len(irrelevant)])
        e["insertId"] = f"noise{i:07d}"
        out.append(e)
    return out


def event_failures(stack: LocalStack, event_id: str, *, busy: bool = True) -> int:
    """Deliveries of `event_id` that returned an error; `busy=False` leaves out those that only
    found another instance sending the same alert, or waited for its record (retried by design)."""
    return sum(1 for line in stack.log_lines("rampart.event_failed")
               if line.get("event_id") == event_id and (busy or line.get("error") not in ("AlertClaimBusy", "AlertDeferred")))

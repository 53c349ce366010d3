"""The posture sweep on the real local pipeline (issue 12): Pub/Sub emulator → rampart_sweep workers
(two, behind a round-robin balancer, as Cloud Run would put them) and the event function, the real
clients against the stand-in, progress and alert dedupe in Firestore, the Slack/SMTP/Pub/Sub channels.

- The event function is down, violations are made and their audit entries dead-lettered; one sweep
  after the restart leaves none open, repeats no action the event path took, and doubles no alert
  (an alert-only violation the event path already told stays told).
- A sweep overlapping a burst of events on the same violations: one write and one alert each.
- Two sweeps at once: one write and one alert per violation.
- A sweep worker killed mid-shard: Pub/Sub redelivers the shard, the sweep completes, nothing doubles.

Judged from the outside, as the other scenarios: live state, effective writes in the stand-in's
request log, alerts per violation on every routed channel (the Pub/Sub alert topic names each alert's
rule and resource; Slack and e-mail carry the same alert id).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import scenario as S
from infra.local.stack import ROOT, LocalStack
from tests.reliability import harness as H

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sweep_stack() -> Iterator[LocalStack]:
    workdir = ROOT / ".local" / "reliability" / "sweep-stack"
    shutil.rmtree(workdir, ignore_errors=True)
    # Five attempts (about five seconds here) before an event is dead-lettered; sweeps may enforce.
    policy = H.stack_policy(sweep={"max_mode": "enforce", "page_size": 4})
    with LocalStack(workdir, functions=1, sweep_workers=2, policy_overrides=policy, max_delivery_attempts=5) as stack:
        yield stack


@pytest.fixture
def stack(sweep_stack: LocalStack) -> Iterator[LocalStack]:
    try:
        yield sweep_stack
    finally:
        sweep_stack.admin.clear_faults()
        for i, proc in enumerate(sweep_stack.functions):
            if not proc.alive():
                sweep_stack.start_function(i)
        for i, proc in enumerate(sweep_stack.sweep_workers):
            if not proc.alive():
                sweep_stack.start_sweep_worker(i)


def alerts_by_violation(ledger: H.Ledger, prefix: str) -> dict[tuple[str, str], dict[str, Counter[str]]]:
    """(rule, resource) → alert id → alerts per channel, for resources named <prefix>*."""
    ledger.drain_pubsub()
    # A dead-lettered entry's own alert (the dead-letter consumer: "Rampart failed on this event",
    # outcome failed) is a separate message by design (shared/deadletter.py); counted here are the
    # alerts about each violation.
    owner = {m["alert_id"]: (m["record"]["rule"], m["record"]["resource"]) for m in ledger.pubsub
             if f"/{prefix}" in m["record"]["resource"] and m["record"].get("outcome") != "failed"}
    out: dict[tuple[str, str], dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
    for a in ledger.alerts():
        if a.alert_id in owner and a.kind == "incident":
            out[owner[a.alert_id]][a.alert_id][a.channel] += 1
    return out


def verdict(stack: LocalStack, ledger: H.Ledger, prefix: str, doors: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """(lost, doubled) over alerts: each violation alerted exactly once on every routed channel."""
    by = alerts_by_violation(ledger, prefix)
    lost, doubled = [], []
    for rule, resource in doors:
        ids = by.get((rule, resource), {})
        if len(ids) > 1:
            doubled.append(f"{rule} on {H.short(resource)}: {len(ids)} alerts ({sorted(ids)})")
        for ch in H.routed(stack, rule):
            n = sum(c[ch] for c in ids.values())
            if n == 0:
                lost.append(f"{rule} on {H.short(resource)}: no {ch} alert")
            elif n > 1:
                doubled.append(f"{rule} on {H.short(resource)}: {n} {ch} alerts")
    return lost, doubled


def vpc_egress_opened(stack: LocalStack, service: str) -> dict[str, Any]:
    """An alert-only violation (run_vpc_egress): the change, and its v2 UpdateService entry."""
    stack.admin.mutate(service, patch={"template": {"vpcAccess": {"egress": "ALL_TRAFFIC"}}}, actor=S.DEVELOPER)
    live = stack.get(service)
    entry = S.update_service_v2(H.short(service), sa=live["template"]["serviceAccount"])
    body = entry["protoPayload"]["request"]["service"]
    body["name"] = service
    entry["protoPayload"]["resourceName"] = service
    body["template"]["vpcAccess"]["egress"] = "ALL_TRAFFIC"
    return entry


def sweep(stack: LocalStack, timeout: float = 90) -> Any:
    sweep_id = stack.request_sweep()
    rep = stack.wait_sweep(sweep_id, timeout=timeout)
    assert rep.complete, f"sweep {sweep_id} incomplete: {rep.to_dict()}"
    return rep


def writes_per_resource(ledger: H.Ledger, since: float, prefix: str) -> Counter[str]:
    return Counter({r: len(w) for r, w in ledger.writes(since).items() if f"/{prefix}" in r})


def save(scenario: str, stack: LocalStack, ledger: H.Ledger, prefix: str, doors: list[H.Door],
         lost: list[str], doubled: list[str], *, pushed: int, faults: int, double_writes: int,
         extra: dict[str, Any] | None = None) -> None:
    """The scenario's row of the README's reliability table. A violation closed by the sweep has
    the sweep's record, not one under its own event id, so "ended without record or alert" here is
    a violation still open, or closed with no alert about it on any channel."""
    by = alerts_by_violation(ledger, prefix)
    still = {d.resource for d in H.open_doors(stack, doors)}
    unseen = [d for d in doors if d.resource in still or not by.get((d.rule, d.resource))]
    H.save_figures(scenario, H.Figures(
        events_pushed=pushed, faults_injected=faults, violations_remediated=len(doors) - len(still),
        alerts_sent=sum(sum(c.values()) for ids in by.values() for c in ids.values()),
        lost=len(lost), doubled=len(doubled) + double_writes, unseen=len(unseen), extra=extra or {},
    ).as_dict())


@pytest.mark.parametrize(("n", "k"), H.sized(short=(4, 2), soak=(20, 6)))
def test_function_down_events_dead_lettered_then_one_sweep_closes_everything(stack: LocalStack, n: int, k: int) -> None:
    prefix = f"swdown{n}"
    ledger = H.Ledger(stack)
    doors_api = H.Doors(stack, prefix)
    services = doors_api.services(n + k + 1)
    versions = H.Doors(stack, prefix + "v").key_versions(2)
    since = time.time()
    # While the function runs: k violations remediated by the event path, one alert-only told.
    early = [doors_api.ingress(s) for s in services[:k]]
    egress_service = services[k]
    H.publish_all(stack, [d.entry for d in early] + [vpc_egress_opened(stack, egress_service)])
    assert not H.wait_closed(stack, early, timeout=30)
    assert H.poll(lambda: (("run_vpc_egress", egress_service) in alerts_by_violation(ledger, prefix)), 30)
    event_writes = writes_per_resource(ledger, since, prefix)
    # The function goes down; n more violations are made and their entries dead-lettered.
    stack.functions[0].stop()
    H.dead_lettered(stack)  # empty the dead-letter subscription first
    late = [doors_api.ingress(s) for s in services[k + 1:]] + [doors_api.version_disabled(v) for v in versions]
    H.publish_all(stack, [d.entry for d in late])
    dead: list[Any] = []
    assert H.poll(lambda: dead.extend(H.dead_lettered(stack)) or len(dead) >= len(late), 60), f"{len(dead)} dead-lettered"
    assert len(H.open_doors(stack, late)) == len(late)
    stack.start_function(0)
    rep = sweep(stack)
    H.settle(ledger)
    assert H.open_doors(stack, early + late) == []
    writes = writes_per_resource(ledger, since, prefix)
    # Each late violation written once (by the sweep); the event path's fixes not written again.
    assert {r: writes[r] for r in (d.resource for d in late)} == {d.resource: 1 for d in late}
    assert {r: writes[r] for r in event_writes} == dict(event_writes)
    lost, doubled = verdict(stack, ledger, prefix, [(d.rule, d.resource) for d in early + late]
                            + [("run_vpc_egress", egress_service)])
    rewritten = sum(max(0, writes[d.resource] - 1) for d in early + late)
    save("sweep_after_function_down", stack, ledger, prefix, early + late, lost, doubled,
         pushed=len(early) + 1 + len(late), faults=1, double_writes=rewritten,
         extra={"dead_lettered": len(dead), "closed_by_the_sweep": len(late)})
    assert lost == [] and doubled == []
    assert rep.tally.violations["run_vpc_egress"] >= 1  # still open (alert-only), seen again, not re-alerted


@pytest.mark.parametrize("n", H.sized(short=4, soak=20))
def test_sweep_overlapping_a_burst_of_events(stack: LocalStack, n: int) -> None:
    prefix = f"swburst{n}"
    ledger = H.Ledger(stack)
    doors_api = H.Doors(stack, prefix)
    since = time.time()
    doors = [doors_api.ingress(s) for s in doors_api.services(n)]
    sweep_id = stack.request_sweep()
    H.publish_all(stack, [d.entry for d in doors])
    stack.wait_sweep(sweep_id, timeout=90)
    assert not H.wait_closed(stack, doors, timeout=30)
    H.settle(ledger, 5.0)  # a tentative record waits settle_seconds (3 s) before it may speak
    writes = writes_per_resource(ledger, since, prefix)
    lost, doubled = verdict(stack, ledger, prefix, [(d.rule, d.resource) for d in doors])
    save("sweep_overlapping_events", stack, ledger, prefix, doors, lost, doubled, pushed=len(doors), faults=0,
         double_writes=sum(max(0, w - 1) for w in writes.values()))
    assert writes == Counter({d.resource: 1 for d in doors})
    assert lost == [] and doubled == []


def test_two_overlapping_sweeps(stack: LocalStack) -> None:
    prefix = "swtwice"
    ledger = H.Ledger(stack)
    doors_api = H.Doors(stack, prefix)
    since = time.time()
    services = doors_api.services(5)
    doors = [doors_api.ingress(s) for s in services[:3]] + [doors_api.public_invoker(s) for s in services[3:]]
    first, second = stack.request_sweep(), stack.request_sweep()
    reps = [stack.wait_sweep(first, 90), stack.wait_sweep(second, 90)]
    assert all(r.complete for r in reps)
    assert H.open_doors(stack, doors) == []
    H.settle(ledger)
    writes = writes_per_resource(ledger, since, prefix)
    lost, doubled = verdict(stack, ledger, prefix, [(d.rule, d.resource) for d in doors])
    save("two_overlapping_sweeps", stack, ledger, prefix, doors, lost, doubled, pushed=0, faults=0,
         double_writes=sum(max(0, w - 1) for w in writes.values()))
    assert writes == Counter({d.resource: 1 for d in doors})
    assert lost == [] and doubled == []
    # Between them the two sweeps saw every violation: fixed it, or found it fixed by the other (a shard
    # retried after acting reports what it found on the retry: already fixed).
    assert sum(r.tally.actions + r.tally.outcomes["already_compliant"] for r in reps) >= len(doors)
    # Either report can be fetched afterwards, as an operator would: python main.py scan --sweep-id.
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "FIRESTORE_EMULATOR_HOST": stack.firestore.host, "GOOGLE_CLOUD_PROJECT": S.P}
    p = subprocess.run([sys.executable, "main.py", "scan", "--policy", str(stack.policy_path), "--sweep-id", first, "--json"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert p.returncode == 0, p.stderr
    fetched = json.loads(p.stdout)
    assert fetched["sweep_id"] == first and fetched["complete"] and fetched["shards_done"] == reps[0].shards_total
    assert fetched["outcomes"] == dict(reps[0].tally.outcomes)
    missing = subprocess.run([sys.executable, "main.py", "scan", "--policy", str(stack.policy_path), "--sweep-id", "nope"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode == 1 and "no sweep 'nope'" in missing.stderr


def test_a_sweep_worker_killed_mid_shard(stack: LocalStack) -> None:
    prefix = "swkill"
    ledger = H.Ledger(stack)
    doors_api = H.Doors(stack, prefix)
    since = time.time()
    doors = [doors_api.ingress(s) for s in doors_api.services(3)]
    # The sweep's writes on these services hang; the workers are killed while they wait.
    for d in doors:
        stack.admin.fault("PATCH", rf"/services/{H.short(d.resource)}$", count=1, delay_ms=3000)
    sweep_id = stack.request_sweep()
    assert H.poll(lambda: sum(int(f["hits"]) for f in stack.admin.faults()) >= 1, 60), "no write started"
    for proc in stack.sweep_workers:
        proc.kill()
    for i in range(len(stack.sweep_workers)):
        stack.start_sweep_worker(i)
    with contextlib.suppress(TimeoutError):
        stack.wait_sweep(sweep_id, timeout=120)
    rep = stack.sweep_report(sweep_id)
    assert rep is not None and rep.complete, rep and rep.to_dict()
    assert H.open_doors(stack, doors) == []
    H.settle(ledger)
    writes = writes_per_resource(ledger, since, prefix)
    lost, doubled = verdict(stack, ledger, prefix, [(d.rule, d.resource) for d in doors])
    save("sweep_worker_killed_mid_shard", stack, ledger, prefix, doors, lost, doubled, pushed=0,
         faults=len(doors) + len(stack.sweep_workers),  # hung writes, workers killed
         double_writes=sum(max(0, w - 1) for w in writes.values()))
    assert all(writes[d.resource] == 1 for d in doors), writes  # a write that landed after the kill is not repeated
    assert lost == [] and doubled == []

"""Loops and storms (issue 7): Rampart's own changes coming back as audit entries, a deployer who
reopens a service's ingress again and again, and a burst of irrelevant audit traffic in front of
one violation. Nothing loops, every reopening is reverted, on-call gets one alert and at most one
escalation (the dedupe window of shared/alerts/dedupe.py), and the violation behind the burst is
still handled, with its time to remediate reported.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from infra.local import scenario as S
from infra.local.stack import REMEDIATOR, LocalStack
from tests.reliability import harness as H

pytestmark = pytest.mark.integration

DEPLOYER = "deploy-bot@demo-project.iam.gserviceaccount.com"


@pytest.mark.parametrize("n", H.sized(short=6, soak=40))
def test_rampart_ignores_its_own_changes_coming_back(stack: LocalStack, n: int) -> None:
    doors_api = H.Doors(stack, f"own{n}")
    services = doors_api.services(n)
    ledger = H.Ledger(stack)
    doors = [doors_api.open("ingress" if i % 2 == 0 else "invoker", s) for i, s in enumerate(services)]
    H.publish_all(stack, [d.entry for d in doors])
    assert not H.wait_closed(stack, doors, timeout=30)
    H.wait_alerted(ledger, doors, ("pubsub",), timeout=20)
    H.settle(ledger, 1)  # the first wave fully handled before its echoes are counted

    # Each of Rampart's writes comes back as the audit entry it produces, principal Rampart's own
    # service account; so does a change it would otherwise call a violation (a `release`).
    since = time.time()
    echoes = []
    for d in doors:
        if d.rule == "run_ingress_open":
            echoes.append(H.self_change(d.resource))
            echoes.append(H.self_change(d.resource, ingress="all"))
        else:
            echoes.append(S.set_iam_run(H.short(d.resource), "allUsers", action="REMOVE", policy_members=[H.PUSH_SA],
                                        principal=REMEDIATOR))
    ignored_before = len(stack.log_lines("rampart.ignored"))
    records_before = len(ledger.records())
    alerts_before = len(ledger.alerts())
    H.publish_all(stack, echoes * 2)  # and each twice
    want = len(echoes) * 2 * stack.n_functions
    H.poll(lambda: len(stack.log_lines("rampart.ignored")) - ignored_before >= want, 30)
    H.settle(ledger)  # and nothing else comes of them: no write, record or alert, however late
    ignored = len(stack.log_lines("rampart.ignored")) - ignored_before
    writes = ledger.writes(since)
    new_records = len(ledger.records()) - records_before
    new_alerts = len(ledger.alerts()) - alerts_before
    H.save_figures("own_changes_ignored", H.Figures(
        events_pushed=want, duplicates=len(echoes) * stack.n_functions, violations_remediated=len(doors),
        alerts_sent=new_alerts, doubled=sum(len(w) for w in writes.values()) + new_records,
        unseen=len(H.unseen(ledger, doors)),
        extra={"self_entries": len(echoes), "ignored_log_lines": ignored},
    ).as_dict())
    assert ignored == want, f"expected {want} rampart.ignored lines, found {ignored}"
    assert not writes, f"Rampart reacted to its own changes: {dict(writes)}"
    assert new_records == 0 and new_alerts == 0, (new_records, new_alerts)


@pytest.mark.parametrize(("period", "duration"), H.sized(short=(0.5, 10.0), soak=(1.0, 60.0)))
def test_deployer_reopening_ingress_is_reverted_every_time_and_alerted_once(
    stack: LocalStack, period: float, duration: float
) -> None:
    doors_api = H.Doors(stack, f"reopen{int(duration)}")
    (svc,) = doors_api.services(1)
    ledger = H.Ledger(stack)
    since = time.time()
    doors: list[H.Door] = []
    start = time.monotonic()
    while time.monotonic() - start < duration:
        tick = time.monotonic()
        door = doors_api.ingress(svc, principal=DEPLOYER)
        stack.publish(door.entry)
        doors.append(door)
        time.sleep(max(0.0, period - (time.monotonic() - tick)))
    end = time.time()
    assert not H.wait_closed(stack, doors, timeout=30), "left open after the last reopening"
    channels = H.routed(stack, "run_ingress_open")
    H.poll(lambda: len(ledger.alerts(doors)) >= 2 * len(channels), 20)
    H.settle(ledger)

    # When was the door closed again after each reopening (the first effective write after it)?
    writes = sorted(w["time"] + w["durationMs"] / 1000 for w in ledger.writes(since).get(svc, []))
    open_for = []
    for d in doors:
        after = [t for t in writes if t > d.opened_at]
        open_for.append(after[0] - d.opened_at if after else None)
    unreverted = [i for i, s in enumerate(open_for) if s is None or s > 10]
    kinds = Counter((a.channel, a.kind) for a in ledger.alerts(doors))
    escalate_after = 5
    bad_alerts = {ch: {"incident": kinds[(ch, "incident")], "escalation": kinds[(ch, "escalation")]} for ch in channels
                  if kinds[(ch, "incident")] != 1 or kinds[(ch, "escalation")] != (1 if len(doors) > escalate_after else 0)}
    closed_times = sorted(s for s in open_for if s is not None)
    H.save_figures("deployer_reopening_ingress", H.Figures(
        events_pushed=len(doors) * stack.n_functions, violations_remediated=len(doors) - len(unreverted),
        alerts_sent=sum(kinds.values()), lost=len(unreverted), doubled=max(0, len(writes) - len(doors)) + len(bad_alerts),
        unseen=len(H.unseen(ledger, doors)),
        extra={"reopenings": len(doors), "period_seconds": period, "duration_seconds": round(end - since, 1),
               "effective_reverts": len(writes), "alerts_by_kind": {f"{c}/{k}": v for (c, k), v in sorted(kinds.items())},
               "door_open_seconds_median": round(closed_times[len(closed_times) // 2], 3) if closed_times else None,
               "door_open_seconds_max": round(closed_times[-1], 3) if closed_times else None},
    ).as_dict())
    assert not unreverted, f"reopenings not reverted within 10 s: {unreverted} of {len(doors)}; open for {open_for}"
    assert len(writes) <= len(doors), f"{len(writes)} reverts for {len(doors)} reopenings"
    assert not bad_alerts, f"expected one incident and one escalation per channel: {dict(kinds)}"


@pytest.mark.parametrize("n", H.sized(short=2000, soak=10_000))
def test_violation_behind_a_burst_of_irrelevant_events_is_still_handled(stack: LocalStack, n: int) -> None:
    doors_api = H.Doors(stack, f"burst{n}")
    (svc,) = doors_api.services(1)
    ledger = H.Ledger(stack)
    since = time.time()
    records_before = len(ledger.records())
    publish_seconds = H.publish_burst(stack, H.noise(n))
    door = doors_api.ingress(svc)
    stack.publish(door.entry)
    still_open = H.wait_closed(stack, [door], timeout=120 if H.SOAK else 60)
    seconds = H.remediate_seconds(ledger, door)
    channels = H.routed(stack, door.rule)
    lost = H.wait_alerted(ledger, [door], channels, timeout=30)
    H.settle(ledger)
    lost, doubled = H.alerted_once(ledger, [door], channels)
    unremediated, double_writes = H.remediated_once(ledger, [door], since)
    noise_records = [r for r in ledger.records()[records_before:] if r.get("event_id", "").startswith("noise")]
    H.save_figures("burst_of_irrelevant_events", H.Figures(
        events_pushed=(n + 1) * stack.n_functions, violations_remediated=1 - len(still_open),
        alerts_sent=len(ledger.alerts([door])), lost=len(still_open) + len(lost),
        doubled=len(doubled) + len(double_writes),
        unseen=len(H.unseen(ledger, [door])),
        extra={"irrelevant_events": n, "publish_seconds": round(publish_seconds, 2),
               "time_to_remediate_seconds": round(seconds, 3) if seconds is not None else None},
    ).as_dict())
    assert not still_open, f"the violation behind {n} irrelevant events was not remediated"
    assert not unremediated and not double_writes, (unremediated, double_writes)
    assert not lost and not doubled, (lost, doubled)
    assert not noise_records, f"{len(noise_records)} records for irrelevant events"

"""Infrastructure faults (issue 7): a function process killed mid-remediation and restarted,
alert channels (Slack, SMTP) down for a while, the Firestore emulator (alert dedupe) down and the
Pub/Sub emulator restarted. Once things recover no violation is left open, no alert is lost on
any routed channel, and none arrives twice.

The emulators keep topics, subscriptions, unacknowledged messages and documents in memory only
(the Pub/Sub --data-dir holds nothing but env.yaml, checked with gcloud 528 / emulator 0.8.20), so
a restart is an outage followed by an empty service, harsher than real Pub/Sub or Firestore. The
restart scenario therefore creates the topics and subscriptions again, as a deployment's would
survive, and checks the running functions reconnect by themselves. What an outage of real Pub/Sub
does to a delivery in flight is what a killed function sees: it fails and is redelivered.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest

from infra.local.stack import LocalStack
from tests.reliability import harness as H

pytestmark = pytest.mark.integration


def _hits(stack: LocalStack) -> int:
    return sum(int(f["hits"]) for f in stack.admin.faults())


@pytest.mark.parametrize("rounds", H.sized(short=1, soak=4))
def test_function_killed_mid_remediation_and_restarted(stack: LocalStack, rounds: int) -> None:
    ledger = H.Ledger(stack)
    all_doors: list[H.Door] = []
    kills = 0
    since = time.time()
    for r in range(rounds):
        doors_api = H.Doors(stack, f"kill{rounds}r{r}")
        applied, refused = doors_api.services(2)
        # Both instances' writes hang in the stand-in; on `applied` they go through once the
        # callers are dead, on `refused` they are answered 503 and change nothing.
        stack.admin.fault("PATCH", rf"/services/{H.short(applied)}$", count=2, delay_ms=2000)
        stack.admin.fault("PATCH", rf"/services/{H.short(refused)}$", count=2, delay_ms=2000, status=503)
        doors = [doors_api.ingress(applied), doors_api.ingress(refused)]
        H.publish_all(stack, [d.entry for d in doors])
        assert H.poll(lambda: _hits(stack) >= 2, 20), f"the writes never started: {stack.admin.faults()}"
        for i in range(stack.n_functions):
            stack.kill_function(i)
            kills += 1
        stack.admin.clear_faults()
        for i in range(stack.n_functions):
            stack.start_function(i)
        all_doors += doors

    still_open = H.wait_closed(stack, all_doors, timeout=40)
    channels = H.routed(stack, "run_ingress_open")
    lost = H.wait_alerted(ledger, all_doors, channels, timeout=30)
    H.settle(ledger)
    lost, doubled = H.alerted_once(ledger, all_doors, channels)
    unremediated, double_writes = H.remediated_once(ledger, all_doors, since)
    recorded = {d.event_id: Counter(r["outcome"] for r in ledger.records(d.event_id)) for d in all_doors}
    unrecorded = [e for e, c in recorded.items() if not c]
    failed = {e: dict(c) for e, c in recorded.items() if c["failed"]}
    H.save_figures("function_killed_mid_remediation", H.Figures(
        events_pushed=len(all_doors) * stack.n_functions, faults_injected=kills,
        violations_remediated=len(all_doors) - len(still_open), alerts_sent=len(ledger.alerts(all_doors)),
        lost=len(still_open) + len(lost), doubled=len(double_writes) + len(doubled),
        unseen=len(H.unseen(ledger, all_doors)),
        extra={"instances_killed": kills, "violations": len(all_doors)},
    ).as_dict())
    problems = {"still open": [d.resource for d in still_open], "unremediated": unremediated,
                "written more than once": double_writes, "alert lost": lost, "alert doubled": doubled,
                "no record": unrecorded, "failed": failed}
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}


# The soak size is what two instances on a 2-CPU machine absorb: the emulator redelivers every
# failing message about once a second with no backoff, and with 25 violations and both people
# channels down for 20 s the instances saturated and some first deliveries waited over 30 s
# (every alert still arrived once, after). Real Pub/Sub backs off from 10 s to 600 s.
@pytest.mark.parametrize(("n", "down_seconds"), H.sized(short=(2, 5.0), soak=(8, 15.0)))
def test_alert_channels_down_for_a_while(stack: LocalStack, n: int, down_seconds: float) -> None:
    doors_api = H.Doors(stack, f"chan{n}")
    services = doors_api.services(2 * n)
    keys = doors_api.keys_with_agent(1)
    ledger = H.Ledger(stack)
    since = time.time()
    stack.slack.set_down(True)
    stack.smtp.stop()
    down_at = time.monotonic()
    try:
        doors = [doors_api.open("invoker" if i % 2 else "ingress", s) for i, s in enumerate(services)]
        doors += doors_api.key_agent_swapped_for_public(keys[0])
        H.publish_all(stack, [d.entry for d in doors])
        # Remediation does not wait for the channels: every door closes while they are down.
        open_while_down = H.wait_closed(stack, doors, timeout=30)
        time.sleep(max(0.0, down_seconds - (time.monotonic() - down_at)))  # down for a while: several redeliveries
    finally:
        stack.slack.set_down(False)
        stack.smtp.start()
    up_at = time.monotonic()
    channels = {d.alert_id: H.routed(stack, d.rule) for d in doors}
    deadline = time.monotonic() + 40
    while True:
        lost = [x for d in doors for x in H.alerted_once(ledger, [d], channels[d.alert_id])[0]]
        if not lost or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    caught_up = time.monotonic() - up_at
    H.settle(ledger)
    lost, doubled = [], []
    for d in doors:
        lo, do = H.alerted_once(ledger, [d], channels[d.alert_id])
        lost += lo
        doubled += do
    unremediated, double_writes = H.remediated_once(ledger, doors, since)
    latencies = [t for t in (H.remediate_seconds(ledger, d) for d in doors) if t is not None]
    notes = [m for m in ledger.pubsub if m["alert_id"] in channels and m.get("delivery_notes")]
    H.save_figures("alert_channels_down", H.Figures(
        events_pushed=len({d.event_id for d in doors}) * stack.n_functions,
        faults_injected=2,  # Slack and SMTP each down once
        violations_remediated=len(doors) - len(open_while_down), alerts_sent=len(ledger.alerts(doors)),
        lost=len(lost) + len(open_while_down), doubled=len(doubled) + len(double_writes),
        unseen=len(H.unseen(ledger, doors)),
        extra={"channels_down_seconds": down_seconds, "seconds_to_catch_up_after_recovery": round(caught_up, 1),
               "max_seconds_to_remediate_while_down": round(max(latencies), 2) if latencies else None,
               "slack_attempts_while_down_refused": "connection refused", "smtp_down": True},
    ).as_dict())
    problems = {"open while channels were down": [d.resource for d in open_while_down],
                "unremediated": unremediated, "written more than once": double_writes,
                "alert lost": lost, "alert doubled": doubled}
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}
    assert notes, "no Pub/Sub alert said that Slack or e-mail had failed"


def _alerted_at_most(ledger: H.Ledger, doors: list[H.Door], channels: tuple[str, ...], most: int) -> list[str]:
    by = ledger.alerts_by_id()
    return [f"{d.rule} {d.event_id}: {by[d.alert_id][ch]} {ch} alerts" for d in doors for ch in channels
            if by.get(d.alert_id, Counter())[ch] > most]


@pytest.mark.parametrize("n", H.sized(short=2, soak=6))
def test_emulators_down_and_back_empty(stack: LocalStack, n: int) -> None:
    """Firestore (the alert dedupe store) down while violations arrive, then back with nothing in
    it; then the Pub/Sub emulator restarted under the running functions.

    While the dedupe store is down every violation is still reverted and alerted: dedupe fails
    open, so each instance that receives the event may alert (here every message reaches both
    instances, so up to two alerts per channel: the trade-off, a duplicate over a silent
    violation, counted apart from `doubled`). Once it is back, and once Pub/Sub is back, the
    functions reconnect by themselves: new violations are reverted and alerted exactly once."""
    doors_api = H.Doors(stack, f"emu{n}")
    services = doors_api.services(3 * n)
    ledger = H.Ledger(stack)
    channels = H.routed(stack, "run_ingress_open")
    since = time.time()
    unavailable_before = len(stack.log_lines("rampart.alert.dedupe_unavailable"))

    stack.firestore.down()
    try:
        while_down = [doors_api.ingress(s) for s in services[:n]]
        t0 = time.monotonic()
        H.publish_all(stack, [d.entry for d in while_down])
        open_while_down = H.wait_closed(stack, while_down, timeout=30)
        lost_while_down = H.wait_alerted(ledger, while_down, channels, timeout=60)
        alerted_while_down_s = time.monotonic() - t0
    finally:
        stack.firestore.up()
    H.settle(ledger)
    over_fail_open_bound = _alerted_at_most(ledger, while_down, channels, stack.n_functions)
    _, twice_while_down = H.alerted_once(ledger, while_down, channels)
    fail_open_logged = len(stack.log_lines("rampart.alert.dedupe_unavailable")) - unavailable_before

    after_firestore = [doors_api.ingress(s) for s in services[n:2 * n]]
    t0 = time.monotonic()
    H.publish_all(stack, [d.entry for d in after_firestore])
    open_after_firestore = H.wait_closed(stack, after_firestore, timeout=30)
    lost_after_firestore = H.wait_alerted(ledger, after_firestore, channels, timeout=40)
    alerted_store_up_s = time.monotonic() - t0

    H.settle(ledger)  # every alert pulled: what the restart drops must be ours to drop
    stack.restart_pubsub()
    after_pubsub = [doors_api.ingress(s) for s in services[2 * n:]]
    H.publish_all(stack, [d.entry for d in after_pubsub])
    open_after_pubsub = H.wait_closed(stack, after_pubsub, timeout=40)
    lost_after_pubsub = H.wait_alerted(ledger, after_pubsub, channels, timeout=40)
    H.settle(ledger)

    back = after_firestore + after_pubsub
    _, doubled = H.alerted_once(ledger, back, channels)
    every = while_down + back
    still_open = open_while_down + open_after_firestore + open_after_pubsub
    lost = lost_while_down + lost_after_firestore + lost_after_pubsub
    unremediated, double_writes = H.remediated_once(ledger, every, since)
    H.save_figures("emulators_down_and_back_empty", H.Figures(
        events_pushed=len(every) * stack.n_functions, faults_injected=2,  # Firestore down once, Pub/Sub restarted once
        violations_remediated=len(every) - len(still_open), alerts_sent=len(ledger.alerts(every)),
        lost=len(still_open) + len(lost), doubled=len(doubled) + len(double_writes),
        unseen=len(H.unseen(ledger, every)),
        extra={"violations_while_dedupe_down": len(while_down),
               "alerted_more_than_once_while_dedupe_down": len(twice_while_down),
               "dedupe_unavailable_log_lines": fail_open_logged,
               # publish → every violation alerted on every channel (issue 15 §6: was ~10 s per alert)
               "seconds_to_alert_all_while_dedupe_down": round(alerted_while_down_s, 1),
               "seconds_to_alert_all_with_dedupe_up": round(alerted_store_up_s, 1)},
    ).as_dict())
    problems = {"still open": [d.resource for d in still_open], "unremediated": unremediated,
                "written more than once": double_writes, "alert lost": lost,
                "alert doubled once the store was back": doubled,
                "more alerts than instances while the store was down": over_fail_open_bound}
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}
    assert fail_open_logged, "the dedupe store was down and no function said so (rampart.alert.dedupe_unavailable)"

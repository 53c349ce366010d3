"""Redelivery and duplicates (issue 7): every audit entry arrives 2-5 times, shuffled, at two
function instances (each has its own push subscription on the audit topic, so every copy reaches
both), and stale copies arrive again after the work is done. Each violation must be remediated
exactly once (one effective write per resource in the stand-in's log), alerted exactly once on
each routed channel, with the alert describing the remediation, and every delivery recorded.
"""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from tests.reliability import harness as H

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("n", H.sized(short=8, soak=60))
def test_each_violation_remediated_and_alerted_once_however_often_it_arrives(stack, n: int) -> None:
    rng = random.Random(7)
    doors_api = H.Doors(stack, f"dup{n}")
    services = doors_api.services(n)
    versions = doors_api.key_versions(max(1, n // 4))
    ledger = H.Ledger(stack)
    since = time.time()
    kinds = ["ingress", "invoker"]
    doors = [doors_api.open(kinds[i % 2], s) for i, s in enumerate(services)]
    doors += [doors_api.version_disabled(v) for v in versions]

    copies = {d.event_id: rng.randint(2, 5) for d in doors}
    wave = [d.entry for d in doors for _ in range(copies[d.event_id])]
    rng.shuffle(wave)
    published = H.publish_all(stack, wave)

    still_open = H.wait_closed(stack, doors, timeout=60)
    assert not still_open, f"not remediated: {[d.resource for d in still_open]}"
    channels = {d.event_id: H.routed(stack, d.rule) for d in doors}
    missing = [x for d in doors for x in H.alerted_once(ledger, [d], channels[d.event_id])[0]]
    deadline = time.monotonic() + 45
    while missing and time.monotonic() < deadline:
        time.sleep(0.5)
        missing = [x for d in doors for x in H.alerted_once(ledger, [d], channels[d.event_id])[0]]

    # Stale copies, long after the work is done: they must change nothing and alert nothing.
    late_doors = rng.sample(doors, k=max(1, len(doors) // 2))
    seen = sum(len(ledger.records(d.event_id)) for d in late_doors)
    published += H.publish_all(stack, [d.entry for d in late_doors])
    H.poll(lambda: sum(len(ledger.records(d.event_id)) for d in late_doors) >= seen + len(late_doors) * stack.n_functions, 20)
    H.settle(ledger)

    unremediated, double_writes = H.remediated_once(ledger, doors, since)
    _, noop = H.effective_writes(ledger, doors, since)
    lost, doubled = [], []
    for d in doors:
        lo, do = H.alerted_once(ledger, [d], channels[d.event_id])
        lost += lo
        doubled += do
    # The alert must say what Rampart did, not what a late duplicate saw afterwards.
    wrong = []
    for d in doors:
        msg = ledger.pubsub_alert(d.alert_id)
        if msg is not None and msg["record"]["outcome"] != "remediated":
            wrong.append(f"{d.rule} on {H.short(d.resource)}: the alert says {msg['record']['outcome']!r}")
    # Every delivery is on the record, and every write: one "remediated" record per effective write
    # (KMS no-op re-writes have one too), the other deliveries found nothing to do.
    bad_records = {}
    for d in doors:
        c = Counter(r["outcome"] for r in ledger.records(d.event_id))
        writes = len(ledger.writes(since).get(d.resource, []))
        if c["remediated"] != writes or set(c) - {"remediated", "already_compliant"}:
            bad_records[d.event_id] = {"records": dict(c), "writes": writes}
    dlq = H.dead_lettered(stack)

    alerts = ledger.alerts(doors)
    H.save_figures("redelivery_and_duplicates", H.Figures(
        events_pushed=published * stack.n_functions,
        duplicates=published * stack.n_functions - len(doors),
        violations_remediated=len(doors) - len(unremediated),
        alerts_sent=len(alerts),
        lost=len(unremediated) + len(lost),
        unseen=len(H.unseen(ledger, doors)),
        doubled=len(double_writes) + len(doubled),
        extra={"violations": len(doors), "instances": stack.n_functions, "copies_per_entry": "2-5, then stale copies",
               "kms_noop_rewrites": noop, "wrong_alert_content": len(wrong), "dead_lettered": len(dlq)},
    ).as_dict())
    problems = {"unremediated": unremediated, "written more than once": double_writes, "alert lost": lost,
                "alert doubled": doubled, "alert describes a duplicate": wrong, "records": bad_records,
                "dead-lettered": [dict(m.attributes) for m in dlq]}
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}

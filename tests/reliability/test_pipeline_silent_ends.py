"""No silent ends (issue 15): a concurrent writer that wins every etag race leaves ingress `all`, so
every delivery fails and Pub/Sub dead-letters the message. The dead-letter consumer
(`rampart_dead_letter`, pushed from the dead-letter topic as deploy.sh sets it up) must record it as
FAILED and alert on every routed channel, once, naming resource, rule, cause and next step, and
never quoting the payload. Before issue 15 nothing watched the dead-letter topic: nobody was told.
"""

from __future__ import annotations

import json

import pytest

from infra.local.stack import LocalStack
from shared.alerts.dedupe import event_key
from tests.reliability import harness as H

pytestmark = pytest.mark.integration

HOSTILE = "postgres://admin:hunter2@db.internal"


@pytest.mark.parametrize("n", H.sized(short=1, soak=4))
def test_a_writer_that_wins_every_race_ends_in_front_of_a_human(stack: LocalStack, n: int) -> None:
    doors_api = H.Doors(stack, f"race{n}")
    services = doors_api.services(n)
    ledger = H.Ledger(stack)
    for svc in services:
        # Someone else's write lands between each read and Rampart's conditional write, every time.
        stack.admin.fault("PATCH", rf"/services/{H.short(svc)}$", count=None, move_etag=True)
    doors = []
    for svc in services:
        door = doors_api.ingress(svc)
        door.entry["protoPayload"]["request"]["service"]["metadata"].setdefault("labels", {})["note"] = HOSTILE
        doors.append(door)
    H.publish_all(stack, [d.entry for d in doors])
    channels = H.routed(stack, doors[0].rule)
    dead = [event_key(d.rule, d.event_id + "#dead-letter")[4:28] for d in doors]
    # ~1 s per redelivery, stack.max_delivery_attempts of them, then the dead-letter push.
    timeout = stack.max_delivery_attempts * 2.5 + 30
    H.poll(lambda: all(set(ledger.alerts_by_id().get(a, {})) >= set(channels) for a in dead), timeout, interval=0.5)
    H.settle(ledger)
    by = ledger.alerts_by_id()
    still_open = H.open_doors(stack, doors)
    unseen = H.unseen(ledger, doors)
    records = [r for d in doors for r in ledger.records(d.event_id + "#dead-letter")]
    lost = [f"{a}: no {ch} alert" for a in dead for ch in channels if by.get(a, {}).get(ch, 0) == 0]
    doubled = [f"{a}: {by[a][ch]} {ch} alerts" for a in dead for ch in channels if by.get(a, {}).get(ch, 0) > 1]
    H.save_figures("writer_wins_every_race", H.Figures(
        events_pushed=len(doors) * stack.n_functions, faults_injected=len(doors),
        alerts_sent=sum(sum(by.get(a, {}).values()) for a in dead), lost=len(lost), doubled=len(doubled),
        unseen=len(unseen), extra={"left_open_and_alerted": len(still_open), "dead_letter_records": len(records)},
    ).as_dict())
    assert len(still_open) == len(doors)  # the writer won: the door is open, so a human must know
    assert not lost and not doubled, (lost, doubled)
    assert not unseen, unseen
    assert records and all(r["outcome"] == "failed" and r["rule"] == "run_ingress_open" for r in records)
    reason = records[0]["reason"]
    assert "cause:" in reason and "Next step" in reason and "dead-lettered" in reason
    said = ledger.pubsub_alert(dead[0])
    assert said is not None and said["record"]["resource"] == doors[0].resource
    everything = json.dumps(ledger.pubsub) + stack.dead_letter_log().read_text()
    assert "hunter2" not in everything

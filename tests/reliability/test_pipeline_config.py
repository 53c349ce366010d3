"""Bad configuration (issue 7): a broken policy file when the functions start (they refuse to act,
say why in the log, and lose nothing: the messages come back and are handled once the file is
fixed), a broken file replacing a good one while running (the last good one stays in force and
`rampart.policy_rejected` says why), and exemptions that have expired or expire while running.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import pytest
import yaml

from infra.local import scenario as S
from infra.local.stack import LocalStack
from shared import config
from shared.config import parse_policy
from shared.event import parse
from shared.pipeline import Pipeline
from tests.reliability import harness as H

pytestmark = pytest.mark.integration


def _with(stack: LocalStack, edit: dict) -> dict:
    policy = H.base_policy(stack)
    H.deep_merge(policy, edit)
    return policy


@pytest.mark.parametrize("n", H.sized(short=3, soak=20))
def test_broken_policy_at_start_refuses_to_act_then_handles_every_message_once_fixed(stack: LocalStack, n: int) -> None:
    good = stack.policy_path.read_text()
    broken = yaml.safe_dump(_with(stack, {"rules": {"run_ingress_open": {"mode": "sometimes"}}, "remediaton": {}}))
    stack.write_policy(broken)
    for i in range(stack.n_functions):  # start with no good policy
        stack.kill_function(i)
        stack.start_function(i)
    doors_api = H.Doors(stack, f"cfgstart{n}")
    services = doors_api.services(n)
    ledger = H.Ledger(stack)
    since = time.time()
    invalid_before = len(stack.log_lines("rampart.policy_invalid"))
    doors = [doors_api.ingress(s) for s in services]
    H.publish_all(stack, [d.entry for d in doors])
    # Refused, and retried: each message comes back while the file stays broken.
    refused = H.poll(lambda: all(H.event_failures(stack, d.event_id) >= 2 * stack.n_functions for d in doors), 20)
    still_open_while_broken = len(H.open_doors(stack, doors))
    why = stack.log_lines("rampart.policy_invalid")[invalid_before:]
    stack.write_policy(good)
    still_open = H.wait_closed(stack, doors, timeout=30)
    lost = H.wait_alerted(ledger, doors, H.routed(stack, "run_ingress_open"), timeout=20)
    H.settle(ledger)
    lost, doubled = H.alerted_once(ledger, doors, H.routed(stack, "run_ingress_open"))
    unremediated, double_writes = H.remediated_once(ledger, doors, since)
    refusals = sum(H.event_failures(stack, d.event_id) for d in doors)
    dlq = H.dead_lettered(stack)
    H.save_figures("broken_policy_at_start", H.Figures(
        events_pushed=len(doors) * stack.n_functions, duplicates=refusals, faults_injected=1,
        violations_remediated=len(doors) - len(still_open), alerts_sent=len(ledger.alerts(doors)),
        lost=len(still_open) + len(lost) + len(dlq), doubled=len(doubled) + len(double_writes),
        unseen=len(H.unseen(ledger, doors)),
        extra={"deliveries_refused_while_broken": refusals},
    ).as_dict())
    assert refused, "the functions did not return an error for events they could not judge"
    assert still_open_while_broken == len(doors), "acted with no valid policy"
    assert why, "no rampart.policy_invalid line said why the functions refuse to act"
    reason = why[-1]["reason"]
    assert str(stack.policy_path) in reason and "rules.run_ingress_open.mode" in reason and "remediaton" in reason, reason
    problems = {"still open": [d.resource for d in still_open], "unremediated": unremediated,
                "written more than once": double_writes, "alert lost": lost, "alert doubled": doubled,
                "dead-lettered": [dict(m.attributes) for m in dlq]}
    assert not any(problems.values()), {k: v for k, v in problems.items() if v}


def test_broken_policy_while_running_keeps_the_last_good_one(stack: LocalStack) -> None:
    doors_api = H.Doors(stack, "cfgrun")
    first, second, third = doors_api.services(3)
    ledger = H.Ledger(stack)
    # A good new policy (ingress: alert only), then a broken one (not YAML).
    stack.write_policy(yaml.safe_dump(_with(stack, {"rules": {"run_ingress_open": {"mode": "alert"}}})))
    a = doors_api.ingress(first)
    stack.publish(a.entry)
    assert H.poll(lambda: len(ledger.records(a.event_id)) >= stack.n_functions, 20), "the new policy was not used"
    rejected_before = len(stack.log_lines("rampart.policy_rejected"))
    stack.write_policy("rules:\n  run_ingress_open: {mode: enforce\n")
    b = doors_api.ingress(second)
    stack.publish(b.entry)
    assert H.poll(lambda: len(ledger.records(b.event_id)) >= stack.n_functions, 20), "no record under a broken file"
    rejected = stack.log_lines("rampart.policy_rejected")[rejected_before:]
    # The good file again: it takes effect on the next event.
    H.restore(stack)
    c = doors_api.ingress(third)
    stack.publish(c.entry)
    closed = not H.wait_closed(stack, [c], timeout=20)
    outcomes = {d.resource: Counter(r["outcome"] for r in ledger.records(d.event_id)) for d in (a, b, c)}
    failures = H.event_failures(stack, b.event_id, busy=False)
    H.save_figures("broken_policy_while_running", H.Figures(
        events_pushed=3 * stack.n_functions, faults_injected=1, violations_remediated=int(closed),
        alerts_sent=len(ledger.alerts([a, b, c])), lost=int(not closed),
        unseen=len(H.unseen(ledger, [a, b, c])),
        extra={"policy_rejected_lines": len(rejected)},
    ).as_dict())
    assert set(outcomes[first]) == {"alerted"}, outcomes[first]
    assert set(outcomes[second]) == {"alerted"}, f"the last good policy (alert) did not stay in force: {outcomes[second]}"
    assert failures == 0, "a broken file made the function fail instead of keeping the last good policy"
    assert len(rejected) == stack.n_functions, f"expected one rampart.policy_rejected per instance, found {len(rejected)}"
    assert "not valid YAML" in rejected[0]["reason"] and rejected[0]["action"] == "keeping the last good policy"
    assert closed and set(outcomes[third]) <= {"remediated", "already_compliant"}, outcomes[third]


def test_exemption_expiring_today_applies_and_one_expired_yesterday_does_not(stack: LocalStack) -> None:
    doors_api = H.Doors(stack, "cfgexp")
    live, lapsed = doors_api.services(2)
    today = dt.date.today()
    yesterday = today - dt.timedelta(days=1)
    stack.write_policy(yaml.safe_dump(_with(stack, {"rules": {"run_ingress_open": {"exemptions": [
        {"resources": [live], "owner": "team-records", "reason": "load test", "expires": today.isoformat()},
        {"resources": [lapsed], "owner": "team-claims", "reason": "migration", "expires": yesterday.isoformat()},
    ]}}})))
    ledger = H.Ledger(stack)
    doors = [doors_api.ingress(live), doors_api.ingress(lapsed)]
    H.publish_all(stack, [d.entry for d in doors])
    assert not H.wait_closed(stack, [doors[1]], timeout=20), "the lapsed exemption still applied"
    H.poll(lambda: len(ledger.records(doors[0].event_id)) >= stack.n_functions, 15)
    H.wait_alerted(ledger, [doors[1]], ("pubsub",), timeout=15)
    H.settle(ledger)
    exempt = ledger.records(doors[0].event_id)
    acted = [r for r in ledger.records(doors[1].event_id) if r["outcome"] == "remediated"]
    assert H.open_doors(stack, [doors[0]]) == [doors[0]], "an exemption valid through today was not honoured"
    assert exempt and {r["outcome"] for r in exempt} == {"exempt"}, exempt
    assert f"exempt until {today}" in exempt[0]["reason"]
    assert not ledger.alerts([doors[0]]), "an exempt finding was paged"
    assert len(acted) == 1 and f"expired on {yesterday}" in acted[0]["reason"], [r["reason"] for r in acted]
    lost, doubled = H.alerted_once(ledger, [doors[1]], H.routed(stack, "run_ingress_open"))
    assert not lost and not doubled, (lost, doubled)


def test_exemption_expires_while_the_function_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    # No reload between the two events: the same loaded policy, judged on two different days.
    svc = f"{S.SVC}/patient-api"
    loaded = parse_policy(f"""
rules:
  run_ingress_open:
    mode: alert
    exemptions: [{{resources: ["{svc}"], owner: team-records, reason: load test, expires: 2026-03-31}}]
""")

    class Pinned:
        def current(self) -> object:
            return loaded

    pipeline = Pipeline(Pinned(), alert=False)
    day = [dt.date(2026, 3, 31)]
    monkeypatch.setattr(config, "date_today", lambda: day[0])
    before = pipeline.handle(parse(S.replace_service_v1("patient-api", ingress="all"))).records
    day[0] = dt.date(2026, 4, 1)  # midnight passes
    after = pipeline.handle(parse(S.replace_service_v1("patient-api", ingress="all"))).records
    assert [r.outcome.value for r in before] == ["exempt"]
    assert [r.outcome.value for r in after] == ["alerted"]
    assert "expired on 2026-03-31" in after[0].reason

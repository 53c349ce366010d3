"""No silent ends (issue 15 §1, §3): a rule that raises, a failure on the last delivery attempt and a
dead-lettered message each end as a FAILED record and an alert naming resource, rule, cause and
next step. Real pipeline parts: the google-cloud clients against the stand-in, a Slack receiver,
functions-framework's own app for the entry points."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

import functions
from infra.local import scenario
from shared import log
from shared.alerts.dedupe import MemoryStore
from shared.config import parse_policy
from shared.event import parse
from shared.pipeline import Pipeline

pytestmark = pytest.mark.integration
SVC = f"{scenario.SVC}/patient-api"
HOSTILE = "postgres://admin:hunter2@db"  # what a broken rule's exception text might quote


class Pinned:
    def __init__(self, loaded) -> None:
        self.loaded = loaded

    def current(self):
        return self.loaded


def _policy(slack_receiver, tmp_path, extra: str = ""):
    return parse_policy(_policy_text(slack_receiver, tmp_path, extra), "test-policy.yaml")


def _policy_file(slack_receiver, tmp_path, monkeypatch) -> None:
    """For functions-framework's app, which loads main.py afresh: the policy from RAMPART_POLICY."""
    path = tmp_path / "policy.yaml"
    path.write_text(_policy_text(slack_receiver, tmp_path))
    monkeypatch.setenv("RAMPART_POLICY", str(path))


def _policy_text(slack_receiver, tmp_path, extra: str = "") -> str:
    hook = tmp_path / "slack-webhook"
    hook.write_text(slack_receiver.url)
    return f"""
ignore_principals: ["rampart-remediator@demo-project.iam.gserviceaccount.com"]
rules:
  run_ingress_open: {{mode: enforce}}
  run_vpc_egress: {{mode: alert}}
{extra}
alerts:
  slack: {{webhook_url_file: {hook}, allowed_hosts: [127.0.0.1]}}
  routes: {{critical: [slack], high: [slack], medium: [slack], low: [slack]}}
  retry: {{retries: 0}}
  dedupe: {{store: memory}}
"""


def _open_ingress(standin) -> None:
    standin.seed_example()
    standin.admin.mutate(SVC, patch={"ingress": "INGRESS_TRAFFIC_ALL"})
    standin.admin.clear_requests()


def _ingress(standin) -> str:
    return next(s for s in standin.admin.state()["services"] if s["name"] == SVC)["ingress"]


def _boom(*_: object) -> None:
    raise ValueError(f"cannot parse {HOSTILE}")


def test_a_rule_that_raises_is_failed_and_alerted_and_the_others_still_act(standin, slack_receiver, tmp_path,
                                                                           monkeypatch) -> None:
    monkeypatch.setitem(functions._loaded, "run_vpc_egress",
                        dataclasses.replace(functions.rule("run_vpc_egress"), check=_boom))
    _open_ingress(standin)
    pipeline = Pipeline(Pinned(_policy(slack_receiver, tmp_path)), dedupe=MemoryStore())
    with log.captured() as out:
        result = pipeline.handle(parse(scenario.replace_service_v1("patient-api", ingress="all")))
    outcomes = {r.finding.rule: r.outcome.value for r in result.records}
    assert outcomes["run_ingress_open"] == "remediated" and _ingress(standin) == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert outcomes["run_vpc_egress"] == "failed"
    failed = next(r for r in result.records if r.finding.rule == "run_vpc_egress")
    assert failed.finding.resource == SVC and "ValueError" in failed.reason and "Next step" in failed.reason
    texts = [p.body["text"] for p in slack_receiver.wait_for(2)]
    assert any("run_vpc_egress" in t for t in texts) and any("run_ingress_open" in t for t in texts)
    everything = out.getvalue() + json.dumps([p.body for p in slack_receiver.posts])
    assert "hunter2" not in everything and '"rampart.rule_failed"' in out.getvalue()


def test_last_delivery_attempt_records_and_alerts_instead_of_failing(standin, slack_receiver, tmp_path) -> None:
    _open_ingress(standin)
    standin.admin.fault("PATCH", count=None, status=503, rpc_status="UNAVAILABLE")
    pipeline = Pipeline(Pinned(_policy(slack_receiver, tmp_path)), dedupe=MemoryStore())
    entry = parse(scenario.replace_service_v1("patient-api", ingress="all"))
    with pytest.raises(Exception):  # noqa: B017 — an attempt that is not the last still fails, so Pub/Sub redelivers
        pipeline.handle(entry, only="run_ingress_open", last_attempt=None)
    assert slack_receiver.posts == []
    with log.captured() as out:
        result = pipeline.handle(entry, only="run_ingress_open", last_attempt=5)
    (record,) = result.records
    assert record.outcome.value == "failed" and record.finding.resource == SVC
    assert "delivery attempt 5 of 5" in record.reason and "Next step" in record.reason
    (post,) = slack_receiver.wait_for(1)
    assert "run_ingress_open" in post.body["text"] and '"outcome":"failed"' in out.getvalue()


def _push_body(entry: dict, attempt: int | None, *, attributes: dict | None = None) -> dict:
    body = {
        "message": {"data": base64.b64encode(json.dumps(entry).encode()).decode(), "messageId": "9001",
                    "publishTime": "2026-12-01T00:00:00Z", "attributes": attributes or {}},
        "subscription": "projects/demo-project/subscriptions/rampart-push",
    }
    if attempt is not None:
        body["deliveryAttempt"] = attempt
    return body


def _app(target: str):
    import functions_framework

    from tests.helpers import ROOT

    return functions_framework.create_app(target=target, source=str(ROOT / "main.py"), signature_type="cloudevent")


def test_entry_point_reads_delivery_attempt_from_the_push_body(standin, slack_receiver, tmp_path, monkeypatch) -> None:
    _open_ingress(standin)
    standin.admin.fault("PATCH", count=None, status=503, rpc_status="UNAVAILABLE")
    _policy_file(slack_receiver, tmp_path, monkeypatch)
    monkeypatch.setenv("RAMPART_MAX_DELIVERY_ATTEMPTS", "3")
    client = _app("run_ingress_open").test_client()
    entry = scenario.replace_service_v1("patient-api", ingress="all")
    path = "/projects/demo-project/topics/rampart-audit"
    assert client.post(path, json=_push_body(entry, 2)).status_code == 500  # not the last: redelivered
    assert slack_receiver.posts == []
    assert client.post(path, json=_push_body(entry, 3)).status_code == 200  # the last: recorded, alerted, acked
    (post,) = slack_receiver.wait_for(1)
    assert "run_ingress_open" in post.body["text"]


def test_dead_letter_consumer_alerts_with_the_facts_never_the_payload(slack_receiver, tmp_path, monkeypatch) -> None:
    _policy_file(slack_receiver, tmp_path, monkeypatch)
    client = _app("rampart_dead_letter").test_client()
    entry = scenario.replace_service_v1("patient-api", ingress="all")
    entry["protoPayload"]["request"]["service"]["metadata"]["labels"] = {"note": HOSTILE}
    attrs = {"CloudPubSubDeadLetterSourceDeliveryCount": "5",
             "CloudPubSubDeadLetterSourceSubscription": "rampart-push"}
    with log.captured() as out:
        r = client.post("/projects/demo-project/topics/rampart-dead-letter", json=_push_body(entry, None, attributes=attrs))
    assert r.status_code == 200
    assert '"rampart.alert"' in out.getvalue(), out.getvalue()
    posts = slack_receiver.wait_for(1)
    text = json.dumps([p.body for p in posts])
    assert "run_ingress_open" in text and "patient-api" in text and "dead-lettered" in text
    records = [json.loads(x)["rampart"] for x in out.getvalue().splitlines() if '"rampart.remediation"' in x]
    assert records and all(r["outcome"] == "failed" for r in records)
    assert records[0]["observed"]["dead_letter"]["delivery_count"] == "5"
    assert "hunter2" not in out.getvalue() + text

    # A message that is not an audit entry at all still reaches a human, as itself.
    with log.captured() as out:
        r = client.post("/projects/demo-project/topics/rampart-dead-letter",
                        json={"message": {"data": base64.b64encode(b"not json " + HOSTILE.encode()).decode(),
                                          "messageId": "42", "attributes": attrs},
                              "subscription": "projects/demo-project/subscriptions/rampart-dead-letter-push"})
    assert r.status_code == 200
    assert any("pubsub message 42" in json.dumps(p.body) for p in slack_receiver.wait_for(len(posts) + 1))
    assert "hunter2" not in out.getvalue()

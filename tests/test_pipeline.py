"""The pipeline's decision across modes, through the real google-cloud clients against the stand-in,
with a real Slack receiver: off, alert, dry-run, enforce and exempt each do what the policy says."""

from __future__ import annotations

import json

import pytest

from infra.local import scenario
from shared import log
from shared.alerts.dedupe import MemoryStore
from shared.config import parse_policy
from shared.event import parse
from shared.pipeline import Pipeline

pytestmark = pytest.mark.integration
SVC = f"{scenario.SVC}/patient-api"


class Pinned:
    def __init__(self, loaded) -> None:
        self.loaded = loaded

    def current(self):
        return self.loaded


def _policy(slack_receiver, tmp_path, rule_yaml: str):
    hook = tmp_path / "slack-webhook"
    hook.write_text(slack_receiver.url)
    text = f"""
ignore_principals: ["rampart-remediator@demo-project.iam.gserviceaccount.com"]
rules:
  run_ingress_open: {rule_yaml}
alerts:
  slack: {{webhook_url_file: {hook}, allowed_hosts: [127.0.0.1]}}
  routes: {{critical: [slack], high: [slack], medium: [slack], low: [slack]}}
  retry: {{retries: 0}}
  dedupe: {{store: memory}}
"""
    return parse_policy(text, "test-policy.yaml")


def _run(standin, slack_receiver, tmp_path, rule_yaml: str):
    standin.seed_example()
    standin.admin.mutate(SVC, patch={"ingress": "INGRESS_TRAFFIC_ALL"})
    standin.admin.clear_requests()
    pipeline = Pipeline(Pinned(_policy(slack_receiver, tmp_path, rule_yaml)), dedupe=MemoryStore())
    with log.captured() as out:
        result = pipeline.handle(parse(scenario.replace_service_v1("patient-api", ingress="all")))
    writes = [r for r in standin.admin.requests() if r["method"] in ("PATCH", "POST")]
    live = standin.admin.state()
    ingress = next(s for s in live["services"] if s["name"] == SVC)["ingress"]
    return result, writes, ingress, out.getvalue()


def test_enforce_reverts_records_and_alerts(standin, slack_receiver, tmp_path) -> None:
    result, writes, ingress, logged = _run(standin, slack_receiver, tmp_path, "{mode: enforce}")
    assert [r.outcome.value for r in result.records] == ["remediated"]
    assert ingress == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER" and len(writes) == 1
    assert slack_receiver.wait_for(1)[0].body["text"].startswith("HIGH run_ingress_open")
    record = next(json.loads(x) for x in logged.splitlines() if '"rampart.remediation"' in x)
    assert record["rampart"]["changes"] == [{"field": "ingress", "before": "INGRESS_TRAFFIC_ALL", "after": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}]


def test_dry_run_describes_the_change_and_writes_nothing(standin, slack_receiver, tmp_path) -> None:
    result, writes, ingress, _ = _run(standin, slack_receiver, tmp_path, "{mode: dry-run}")
    (record,) = result.records
    assert record.outcome.value == "dry_run" and writes == [] and ingress == "INGRESS_TRAFFIC_ALL"
    assert record.changes[0].after == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert "would" in slack_receiver.wait_for(1)[0].body["text"].lower()


def test_alert_mode_alerts_and_writes_nothing(standin, slack_receiver, tmp_path) -> None:
    result, writes, ingress, _ = _run(standin, slack_receiver, tmp_path, "{mode: alert, severity: critical}")
    (record,) = result.records
    assert record.outcome.value == "alerted" and writes == [] and ingress == "INGRESS_TRAFFIC_ALL"
    assert slack_receiver.wait_for(1)[0].body["text"].startswith("CRITICAL")


def test_off_is_not_evaluated(standin, slack_receiver, tmp_path) -> None:
    result, writes, _, _ = _run(standin, slack_receiver, tmp_path, "{mode: 'off'}")
    assert result.findings == [] and result.skipped == "compliant" and writes == []
    assert slack_receiver.posts == []


def test_exempt_is_recorded_not_acted_on_or_paged(standin, slack_receiver, tmp_path) -> None:
    rule = "{exemptions: [{resources: ['" + SVC + "'], owner: web@example.com, reason: public site, expires: 2099-01-01}]}"
    result, writes, ingress, logged = _run(standin, slack_receiver, tmp_path, rule)
    (record,) = result.records
    assert record.outcome.value == "exempt" and writes == [] and ingress == "INGRESS_TRAFFIC_ALL"
    assert "web@example.com" in record.reason and '"outcome":"exempt"' in logged
    assert slack_receiver.posts == []

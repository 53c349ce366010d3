"""Fights with infrastructure as code (issue 15 §2): the circuit breaker per rule and resource, the
`reset` command, and the per-project write rate limit. Through the real clients against the
stand-in, with a real Slack receiver."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infra.local import scenario
from shared import breaker
from shared.alerts.dedupe import MemoryStore
from shared.config import parse_policy
from shared.event import parse
from shared.pipeline import Pipeline
from tests.helpers import ROOT

pytestmark = pytest.mark.integration
SVC = f"{scenario.SVC}/patient-api"
TERRAFORM = "terraform@infra-prod.iam.gserviceaccount.com"


class Pinned:
    def __init__(self, loaded) -> None:
        self.loaded = loaded

    def current(self):
        return self.loaded


def _policy(slack_receiver, tmp_path, remediation: str = "{}"):
    hook = tmp_path / "slack-webhook"
    hook.write_text(slack_receiver.url)
    return parse_policy(f"""
ignore_principals: ["rampart-remediator@demo-project.iam.gserviceaccount.com"]
remediation: {remediation}
rules:
  run_ingress_open: {{mode: enforce}}
alerts:
  slack: {{webhook_url_file: {hook}, allowed_hosts: [127.0.0.1]}}
  routes: {{critical: [slack], high: [slack], medium: [slack], low: [slack]}}
  retry: {{retries: 0}}
  dedupe: {{store: memory, escalate_after: 50}}
""", "test-policy.yaml")


def _reopen(standin, pipeline, n: int):
    standin.admin.mutate(SVC, patch={"ingress": "INGRESS_TRAFFIC_ALL"}, actor=TERRAFORM)
    entry = scenario.replace_service_v1("patient-api", ingress="all", principal=TERRAFORM)
    entry["insertId"] = f"tf-apply-{n}"
    (record,) = pipeline.handle(parse(entry), only="run_ingress_open").records
    return record


def _ingress(standin) -> str:
    return next(s for s in standin.admin.state()["services"] if s["name"] == SVC)["ingress"]


def test_breaker_stops_reverting_alerts_once_naming_the_other_side_and_reset_clears_it(
        standin, slack_receiver, tmp_path) -> None:
    standin.seed_example()
    loaded = _policy(slack_receiver, tmp_path)
    store = MemoryStore()
    pipeline = Pipeline(Pinned(loaded), dedupe=store)
    outcomes = [_reopen(standin, pipeline, i).outcome.value for i in range(3)]
    assert outcomes == ["remediated"] * 3
    tripped = _reopen(standin, pipeline, 3)
    assert tripped.outcome.value == "alerted" and _ingress(standin) == "INGRESS_TRAFFIC_ALL"
    assert "circuit breaker" in tripped.reason and TERRAFORM in tripped.reason and "main.py reset" in tripped.reason
    assert tripped.effective_severity.value == "critical"  # one step above the rule's high
    held = _reopen(standin, pipeline, 4)
    assert held.outcome.value == "alerted" and "holds it in alert mode" in held.reason
    posts = slack_receiver.wait_for(2)
    escalations = [p for p in posts if "Circuit breaker" in json.dumps(p.body)]
    assert len(escalations) == 1 and TERRAFORM in json.dumps(escalations[0].body)
    assert len(slack_receiver.posts) == 2  # the first remediation, the escalation; the held repeat is grouped

    assert breaker.reset(loaded, SVC, ("run_ingress_open",), store=store) == 1
    assert _reopen(standin, pipeline, 5).outcome.value == "remediated"


def test_breaker_window_passes(standin, slack_receiver, tmp_path) -> None:
    standin.seed_example()
    loaded = _policy(slack_receiver, tmp_path, "{circuit_breaker: {max_remediations: 1, window_seconds: 0.5}}")
    pipeline = Pipeline(Pinned(loaded), dedupe=MemoryStore())
    assert _reopen(standin, pipeline, 10).outcome.value == "remediated"
    assert _reopen(standin, pipeline, 11).outcome.value == "alerted"
    import time

    time.sleep(0.6)
    assert _reopen(standin, pipeline, 12).outcome.value == "remediated"


def test_per_project_write_rate_limit() -> None:
    clock = iter([0.0, 1.0, 2.0, 3.0, 61.0])
    for _ in range(3):
        breaker.take_write("noisy-a", 3, now=lambda: next(clock))
    with pytest.raises(breaker.ProjectRateLimited, match="noisy-a: 3 remediation writes"):
        breaker.take_write("noisy-a", 3, now=lambda: next(clock))
    breaker.take_write("quiet-b", 3, now=lambda: 3.5)  # another project is not held back
    breaker.take_write("noisy-a", 3, now=lambda: next(clock))  # a minute later


def test_reset_command(tmp_path) -> None:
    policy = tmp_path / "p.yaml"
    policy.write_text("version: 1\n")
    p = subprocess.run([sys.executable, "main.py", "reset", SVC, "--policy", str(policy)], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    assert "circuit breaker cleared" in p.stdout

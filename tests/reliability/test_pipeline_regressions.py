"""Fast, deterministic regression tests for what the pipeline scenarios found (issue 7); each
names the scenario that showed the bug. The scenarios themselves run on the local stack.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from infra.local import scenario as S
from shared import pipeline as pipeline_mod
from shared.actions import TransientError
from shared.alerts.dedupe import BeginRequest, MemoryStore, begin_transition
from shared.config import parse_policy
from shared.event import parse
from shared.model import ActionRecord, Mode, Outcome
from shared.pipeline import Pipeline


def _req(owner: str, outcome: str, now: float, *, settle: float = 3.0) -> BeginRequest:
    return BeginRequest(
        event_key="evt-1", resource_key="res-1", owner=owner, payload=json.dumps({"outcome": outcome}), now=now,
        lease_seconds=20, window_seconds=3600, escalate_after=5,
        tentative=outcome == "already_compliant", settle_seconds=settle,
    )


def test_a_duplicate_that_found_the_work_done_does_not_speak_first() -> None:
    # test_pipeline_redelivery: two instances, the same entry; one reverted the change, the other
    # read the live state a moment later and claimed the alert first, so on-call was told
    # "nothing to do" about a change Rampart had reverted.
    store = MemoryStore()
    dup = store.begin(_req("B", "already_compliant", now=100.0))
    assert dup.status == "deferred"
    assert store.begin(_req("C", "already_compliant", now=101.0)).status == "deferred"  # still settling
    worker = store.begin(_req("A", "remediated", now=101.5))
    assert worker.status == "new" and json.loads(worker.payload) == {"outcome": "remediated"} and worker.attempt == 1
    store.finish("evt-1", "A")
    assert store.begin(_req("B", "already_compliant", now=104.0)).status == "duplicate"
    assert store.docs["res-1"]["count"] == 1  # one occurrence in the window, not one per delivery


def test_a_tentative_alert_goes_out_once_the_settle_time_is_over() -> None:
    # test_pipeline_outages: the instance that did the work was killed before it alerted; the
    # redelivery only finds the work done, and that must still reach on-call, once.
    store = MemoryStore()
    assert store.begin(_req("B", "already_compliant", now=100.0)).status == "deferred"
    late = store.begin(_req("B", "already_compliant", now=103.5))
    assert late.status == "new" and late.attempt == 1 and json.loads(late.payload)["outcome"] == "already_compliant"
    assert store.begin(_req("C", "already_compliant", now=104.0)).status == "busy"  # B is sending


def test_settle_zero_and_suppressed_repeats_are_never_deferred() -> None:
    claim, ev, _ = begin_transition(None, None, _req("B", "already_compliant", now=1.0, settle=0))
    assert claim.status == "new" and ev is not None and not ev["tentative"]
    res = {"window_start": 0.0, "count": 1, "escalated": False}
    claim, ev, _ = begin_transition(None, res, _req("B", "already_compliant", now=1.0))
    assert claim.status == "new" and claim.decision == "suppress" and ev is not None and ev["done"]


def test_one_failing_finding_does_not_hold_back_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    # test_pipeline_outages: a SetIamPolicy that removes the service agent and grants allUsers
    # has two findings; with alert channels down the first one's delivery failed and the
    # public member stayed on the key until the channels came back.
    loaded = parse_policy("rules: {}")

    class Pinned:
        def current(self) -> Any:
            return loaded

    acted: list[str] = []

    def act(finding: Any, settings: Any, loaded: Any, today: Any = None) -> ActionRecord:
        acted.append(finding.rule)
        if finding.rule == "kms_agent_binding_removed":
            raise TransientError("alert channel down")
        return ActionRecord(finding=finding, mode=Mode.ENFORCE, outcome=Outcome.REMEDIATED)

    monkeypatch.setattr(pipeline_mod, "act", act)
    entry = S.kms_set_iam(S.KEY, "roles/cloudkms.cryptoKeyEncrypterDecrypter", S.AGENT, "REMOVE")
    entry["protoPayload"]["serviceData"]["policyDelta"]["bindingDeltas"].append(
        {"action": "ADD", "role": "roles/cloudkms.cryptoKeyEncrypterDecrypter", "member": "allUsers"})
    with pytest.raises(TransientError, match="alert channel down"):  # still redelivered
        Pipeline(Pinned(), alert=False).handle(parse(entry))
    assert acted == ["kms_agent_binding_removed", "kms_public_member"]


def test_a_redelivery_tries_a_missing_channel_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # test_pipeline_outages (soak): with Slack and SMTP down, every redelivery spent each channel's
    # whole in-process retry budget again; the instances saturated and new violations waited.
    from shared.alerts import delivery as deliver_mod
    from shared.alerts.channels import ChannelError
    from shared.alerts.config import AlertsConfig
    from shared.alerts.delivery import AlertDeliveryError, deliver
    from tests.support.fixtures_local import make_record

    tries: list[str] = []

    def down(cfg: Any, alert: Any) -> None:
        tries.append("slack")
        raise ChannelError("Slack webhook unreachable", transient=True)

    monkeypatch.setitem(deliver_mod._SENDERS, "slack", down)
    monkeypatch.setitem(deliver_mod._SENDERS, "pubsub", lambda cfg, alert: tries.append("pubsub"))
    cfg = AlertsConfig.model_validate({
        "slack": {"webhook_url_file": "/nonexistent/slack-webhook"}, "pubsub": {"topic": "projects/demo-project/topics/rampart-alerts"},
        "retry": {"retries": 2, "backoff_seconds": 0}, "routes": {"high": ["slack", "pubsub"]},
    })
    store, record = MemoryStore(), make_record()
    for _ in range(3):
        with pytest.raises(AlertDeliveryError, match="still missing on slack"):
            deliver(record, cfg, store, sleep=lambda s: None)
    assert tries == ["slack"] * 3 + ["pubsub"] + ["slack", "slack"]

"""Detection apart from action (issue 14, finding 7), end to end: the detector that reads the
audit topic writes nothing and asks a writer; each writer reads the entry itself from Cloud
Logging before it acts, so a delivery Cloud Logging never held, or a forged request, moves nothing."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from infra.local import scenario as S
from infra.local.stack import ACTIONS_TOPIC, PROJECT, LocalStack, wait_until

pytestmark = pytest.mark.integration
SVC = f"{S.SVC}/patient-api"


@pytest.fixture(scope="module")
def split() -> Iterator[LocalStack]:
    # iam_outsider_member enforcing: its finding on a key must reach the KMS writer.
    overrides = {"trusted_domains": ["demo-project.example"], "rules": {"iam_outsider_member": {"mode": "enforce"}}}
    with LocalStack(split=True, policy_overrides=overrides) as stack:
        yield stack


def _lines(stack: LocalStack, i: int, message: str) -> list[dict[str, Any]]:
    path = stack.function_log(i)
    out = []
    for line in path.read_text(errors="replace").splitlines() if path.exists() else []:
        if f'"{message}"' in line:
            out.append(json.loads(line))
    return out


def _writes(stack: LocalStack) -> list[dict[str, Any]]:
    return [r for r in stack.admin.requests() if r["method"] in ("PATCH", "POST") and "entries:list" not in r["path"]]


def _fresh(entry: dict[str, Any]) -> dict[str, Any]:
    entry["insertId"] = f"split{uuid.uuid4().hex[:12]}"
    return entry


def test_the_detector_asks_and_the_run_writer_acts(split: LocalStack) -> None:
    split.admin.mutate(SVC, patch={"ingress": "INGRESS_TRAFFIC_ALL"}, actor=S.DEVELOPER)
    entry = _fresh(S.replace_service_v1("patient-api", ingress="all"))
    split.publish(entry)
    wait_until(lambda: split.get(SVC)["ingress"] != "INGRESS_TRAFFIC_ALL", 30, what="ingress closed by the writer")
    (asked,) = [x for x in _lines(split, 0, "rampart.action_requested") if x["event_id"] == entry["insertId"]]
    assert asked["product"] == "run"
    rec = wait_until(lambda: [r.get("rampart", r) for r in _lines(split, 1, "rampart.remediation")
                              if r.get("rampart", r)["event_id"] == entry["insertId"]], 10, what="the writer's record")[0]
    assert rec["outcome"] == "remediated"
    # The detector recorded nothing it acted on: it cannot act.
    assert not [r for r in _lines(split, 0, "rampart.remediation") if r["rampart"]["event_id"] == entry["insertId"]]


def test_the_kms_writer_takes_kms_requests(split: LocalStack) -> None:
    split.admin.mutate(S.VERSION, patch={"state": "DISABLED"}, actor=S.DEVELOPER)
    entry = _fresh(S.kms_update_version("DISABLED"))
    split.publish(entry)
    wait_until(lambda: split.get(S.VERSION)["state"] == "ENABLED", 30, what="version enabled by the KMS writer")
    wait_until(lambda: [r for r in _lines(split, 2, "rampart.remediation") if r["rampart"]["event_id"] == entry["insertId"]],
               10, what="the KMS writer's record")
    assert not [r for r in _lines(split, 1, "rampart.remediation") if r["rampart"]["event_id"] == entry["insertId"]]


def test_a_delivery_cloud_logging_never_held_moves_nothing(split: LocalStack) -> None:
    split.admin.mutate(S.VERSION, patch={"state": "DISABLED"}, actor=S.DEVELOPER)
    split.admin.clear_requests()
    entry = _fresh(S.kms_update_version("DISABLED"))
    split.publish(entry, logged=False)  # straight onto the audit topic: a forged delivery
    line = wait_until(lambda: [x for x in _lines(split, 2, "rampart.unconfirmed") if x["event_id"] == entry["insertId"]],
                      30, what="the writer's refusal")[0]
    assert "no Admin Activity entry" in line["reason"]
    time.sleep(0.5)
    assert _writes(split) == [] and split.get(S.VERSION)["state"] == "DISABLED"
    split.admin.mutate(S.VERSION, patch={"state": "ENABLED"}, actor=S.DEVELOPER)


def test_a_forged_action_request_moves_nothing(split: LocalStack) -> None:
    split.admin.mutate(SVC, patch={"ingress": "INGRESS_TRAFFIC_ALL"}, actor=S.DEVELOPER)
    split.admin.clear_requests()
    insert_id = f"forged{uuid.uuid4().hex[:10]}"
    body = {"v": 1, "rule": "run_ingress_open", "insert_id": insert_id, "timestamp": "2026-12-01T00:00:00.000000Z",
            "project": PROJECT, "method": "google.cloud.run.v1.Services.ReplaceService", "resource": SVC}
    from infra.local.emulators import publisher

    publisher(split.pubsub.host).publish(f"projects/{PROJECT}/topics/{ACTIONS_TOPIC}", json.dumps(body).encode(),
                                         product="run", rule="run_ingress_open").result(timeout=30)
    wait_until(lambda: [x for x in _lines(split, 1, "rampart.unconfirmed") if x["event_id"] == insert_id], 30,
               what="the writer's refusal")
    assert _writes(split) == [] and split.get(SVC)["ingress"] == "INGRESS_TRAFFIC_ALL"


def test_an_outsider_on_a_key_is_removed_by_the_kms_writer(split: LocalStack) -> None:
    """iam_outsider_member is not a KMS rule, but on a key only the KMS writer holds the write."""
    role, outsider = "roles/cloudkms.cryptoKeyEncrypterDecrypter", "user:mallory@gmail.com"
    split.admin.mutate(S.KEY, iam_add={"role": role, "member": outsider}, actor=S.DEVELOPER)
    entry = _fresh(S.kms_set_iam(S.KEY, role, outsider, "ADD"))
    split.publish(entry)

    def members() -> set[str]:
        return {m for b in split.iam(S.KEY).get("bindings", []) for m in b.get("members", [])}

    wait_until(lambda: outsider not in members(), 30, what="the outsider removed from the key")
    assert S.AGENT in members()  # only the outsider went
    asked = [x for x in _lines(split, 0, "rampart.action_requested")
             if x["event_id"] == entry["insertId"] and x["rule"] == "iam_outsider_member"]
    assert [x["product"] for x in asked] == ["kms"]
    rec = wait_until(lambda: [r.get("rampart", r) for r in _lines(split, 2, "rampart.remediation")
                              if r.get("rampart", r)["event_id"] == entry["insertId"]], 10, what="the KMS writer's record")
    assert [(r["rule"], r["outcome"]) for r in rec] == [("iam_outsider_member", "remediated")]
    assert not [r for r in _lines(split, 1, "rampart.remediation") if r["rampart"]["event_id"] == entry["insertId"]]

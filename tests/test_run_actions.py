"""Cloud Run remediation end to end: real audit entries (tests/data/run, from the corpus) through
`evaluate` and `run_remediation(remediate, ...)`, with the real run_v2 client against the
stand-in subprocess, down to the live state read back from it.

Pure helpers (grants, the quarantine record, conflict classification) are tested without a server.
"""

from __future__ import annotations

import importlib
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared import clients, quarantine_store
from shared.actions import ActionContext, TransientError, iam, is_conflict, quarantine, run_remediation
from shared.actions.iam import Grant
from shared.actions.quarantine import QuarantineRecord
from shared.config import HIPAA_REGIONS
from shared.event import parse
from shared.model import Action, ActionRecord, Change, Finding, Mode, Outcome
from shared.quarantine_store import MemoryRecords
from tests.helpers import ROOT, load_json

DATA = Path(__file__).parent / "data" / "run"

SLACKBOT = "projects/test-project-1234/locations/asia-northeast1/services/cloud-run-slack-bot"
CRM = "projects/power-choosers-crm/locations/us-south1/services/power-choosers-crm"
EXFIL = "projects/some-project/locations/us-west1/services/cloudrun-exfil"
DEFAULT_SA = "792458658491-compute@developer.gserviceaccount.com"
INVOKER = "roles/run.invoker"
CONDITION = {"title": "office-hours", "expression": "request.time.getHours('UTC') < 18"}
AUDIT = [{"service": "allServices", "auditLogConfigs": [{"logType": "DATA_READ"}]}]
LABEL = "rampart-quarantine"
ANNOTATION = quarantine.QUARANTINE_ANNOTATION


@pytest.fixture(autouse=True)
def records() -> Iterator[MemoryRecords]:
    """Quarantine records in memory for these tests (the deployed default is Firestore)."""
    store = MemoryRecords()
    quarantine_store.set_default(store)
    try:
        yield store
    finally:
        quarantine_store.set_default(None)


def held_record(svc: dict[str, Any]) -> QuarantineRecord:
    """The record the service's marker points to, as Rampart keeps it."""
    stored = quarantine_store.default().load(svc["name"], svc["annotations"][ANNOTATION])
    return QuarantineRecord.parse(json.dumps(stored.record))
WRITES = r"/services/[^/:]+$|:setIamPolicy$"
NOW = 1795430000.0  # 2026-11-23T10:33:20Z: a fixed clock, so records compare exactly

pytestmark = pytest.mark.integration


# ---------------------------------------------------------------------------
# Helpers.


def rule_module(rule_id: str) -> Any:
    return importlib.import_module(f"functions.{rule_id}")


def finding_for(rule_id: str, fixture: str, **params: Any) -> tuple[Finding, Any]:
    mod = rule_module(rule_id)
    if rule_id == "run_unapproved_region":
        params.setdefault("approved_regions", HIPAA_REGIONS)
    p = mod.Params(**params)
    f = mod.RULE.evaluate(parse(load_json(DATA / fixture)), p)
    assert f is not None, f"{rule_id} did not fire on {fixture}"
    return f, p


def ctx(action: Action = Action.REVERT, mode: Mode = Mode.ENFORCE, **kw: Any) -> ActionContext:
    return ActionContext(mode=mode, action=action, clock=lambda: NOW, **kw)


def remediate(rule_id: str, f: Finding, p: Any, c: ActionContext) -> ActionRecord:
    return run_remediation(rule_module(rule_id).remediate, f, p, c)


def service_json(name: str, *, ingress: str = "INGRESS_TRAFFIC_ALL", invoker_off: bool = False, sa: str = "",
                 env: list[dict[str, Any]] | None = None, labels: dict[str, str] | None = None,
                 annotations: dict[str, str] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": "us-docker.pkg.dev/cloudrun/container/hello"}
    if env:
        container["env"] = env
    template: dict[str, Any] = {"containers": [container]}
    if sa:
        template["serviceAccount"] = sa
    out = {"name": name, "ingress": ingress, "invokerIamDisabled": invoker_off,
           "labels": labels or {"team": "bots"}, "template": template}
    if annotations:
        out["annotations"] = annotations
    return out


def public_policy() -> dict[str, Any]:
    """allUsers on the invoker role next to bindings a remediation must leave alone."""
    return {
        "version": 3,
        "bindings": [
            {"role": INVOKER, "members": ["user:some.user@company.com", "allUsers"]},
            {"role": "roles/run.viewer", "members": ["allAuthenticatedUsers", "group:ops@company.com"]},
            {"role": "roles/run.developer", "members": ["user:dev@company.com"], "condition": CONDITION},
        ],
        "auditConfigs": AUDIT,
    }


def seed(standin: Any, svc: dict[str, Any], policy: dict[str, Any] | None = None) -> None:
    data: dict[str, Any] = {"services": [svc]}
    if policy is not None:
        data["policies"] = {svc["name"]: policy}
    standin.admin.seed(data)
    standin.admin.clear_requests()


def live(standin: Any, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    state = standin.admin.state()
    svc = next(s for s in state["services"] if s["name"] == name)
    return svc, state.get("policies", {}).get(name, {"version": 1})


def writes(standin: Any) -> list[dict[str, Any]]:
    return [r for r in standin.admin.requests(path=WRITES) if r["method"] in ("PATCH", "POST")]


def members(policy: dict[str, Any], role: str, condition: dict[str, Any] | None = None) -> list[str]:
    for b in policy.get("bindings", []):
        if b["role"] == role and b.get("condition") == condition:
            return sorted(b["members"])
    return []


def on_first_call(monkeypatch: pytest.MonkeyPatch, method: str, then: Any) -> None:
    """After the real client's first `method` call returns, run `then()`: another writer acting
    between our read and our write. The call itself still goes to the stand-in."""
    client = clients.run_services()
    real = getattr(client, method)
    calls = {"n": 0}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            then()
        return out

    monkeypatch.setattr(client, method, wrapper)


# ---------------------------------------------------------------------------
# Pure helpers.


class TestGrants:
    def test_public_grants_any_role_and_by_role(self) -> None:
        pol = public_policy()
        assert iam.public_grants(pol) == [
            Grant(INVOKER, "allUsers"), Grant("roles/run.viewer", "allAuthenticatedUsers")
        ]
        assert iam.public_grants(pol, [INVOKER]) == [Grant(INVOKER, "allUsers")]

    def test_without_keeps_everything_else(self) -> None:
        pol = {**public_policy(), "etag": "BwYQYvUoBxs="}
        new, changes = iam.without_grants(pol, iam.public_grants(pol))
        assert new["etag"] == "BwYQYvUoBxs=" and new["version"] == 3 and new["auditConfigs"] == AUDIT
        assert members(new, INVOKER) == ["user:some.user@company.com"]
        assert members(new, "roles/run.viewer") == ["group:ops@company.com"]
        assert members(new, "roles/run.developer", CONDITION) == ["user:dev@company.com"]
        assert changes == [
            Change("bindings[roles/run.invoker].members", ["allUsers", "user:some.user@company.com"],
                   ["user:some.user@company.com"]),
            Change("bindings[roles/run.viewer].members", ["allAuthenticatedUsers", "group:ops@company.com"],
                   ["group:ops@company.com"]),
        ]

    def test_without_drops_emptied_binding_and_conditional_member(self) -> None:
        pol = {"version": 3, "bindings": [{"role": INVOKER, "members": ["allUsers"], "condition": CONDITION}]}
        g = Grant.of(INVOKER, "allUsers", CONDITION)
        assert iam.public_grants(pol) == [g]
        new, changes = iam.without_grants(pol, [g])
        assert new["bindings"] == []
        assert changes[0].field == "bindings[roles/run.invoker if office-hours].members"

    def test_with_grants_restores_into_matching_binding_and_raises_version(self) -> None:
        pol = {"version": 1, "bindings": [{"role": INVOKER, "members": ["user:a@x.com"]}]}
        new, changes = iam.with_grants(pol, [Grant(INVOKER, "allUsers"), Grant.of(INVOKER, "allUsers", CONDITION)])
        assert members(new, INVOKER) == ["allUsers", "user:a@x.com"]
        assert members(new, INVOKER, CONDITION) == ["allUsers"]
        assert new["version"] == 3 and len(changes) == 2
        again, none = iam.with_grants(new, [Grant(INVOKER, "allUsers")])
        assert none == [] and again == new


GOOD_RECORD: dict[str, Any] = {
    "v": 1, "rule": "r", "event": "e", "at": "t", "label": "l",
    "prior": {"ingress": "X", "invoker_iam_disabled": False}, "set": {"ingress": "Y"},
}


class TestRecord:
    def record(self) -> QuarantineRecord:
        return QuarantineRecord(
            rule="run_default_service_account", event="i2m4lzd7hnt-ok", at="2026-11-23T09:30:00Z", label=LABEL,
            prior_ingress="INGRESS_TRAFFIC_ALL", prior_invoker_iam_disabled=True, prior_label=None,
            set_ingress="INGRESS_TRAFFIC_INTERNAL_ONLY",
            removed=(Grant(INVOKER, "allUsers"), Grant.of(INVOKER, "allAuthenticatedUsers", CONDITION)),
        )

    def test_round_trip_and_format(self) -> None:
        rec = self.record()
        text = rec.to_json()
        assert QuarantineRecord.parse(text) == rec
        obj = json.loads(text)
        assert obj["v"] == 1 and obj["prior"] == {"ingress": "INGRESS_TRAFFIC_ALL", "invoker_iam_disabled": True, "label": None}
        assert obj["set"] == {"ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY", "invoker_iam_disabled": False}
        assert {"role": INVOKER, "member": "allAuthenticatedUsers", "condition": CONDITION} in obj["removed"]
        assert " " not in text.replace("request.time.getHours('UTC') < 18", "")  # compact
        assert len(text) < 600

    @pytest.mark.parametrize("text,why", [
        ("not json", "expected JSON"),
        (json.dumps({**GOOD_RECORD, "v": 2}), '"v": 1'),
        (json.dumps({k: v for k, v in GOOD_RECORD.items() if k != "event"}), "missing key 'event'"),
        (json.dumps({**GOOD_RECORD, "prior": {"ingress": "X", "invoker_iam_disabled": "yes"}}), "boolean"),
        (json.dumps({**GOOD_RECORD, "removed": [{"role": "r"}]}), "expected a grant"),
    ])
    def test_parse_rejects_what_rampart_did_not_write(self, text: str, why: str) -> None:
        assert QuarantineRecord.parse(json.dumps(GOOD_RECORD)).rule == "r"
        with pytest.raises(quarantine.BadRecord, match=why.replace("(", r"\(")):
            QuarantineRecord.parse(text)

    @pytest.mark.parametrize("rule,value", [
        ("run_default_service_account", "run_default_service_account"),
        ("Run.Weird Rule/ID", "run-weird-rule-id"),
        ("x" * 80, "x" * 63),
    ])
    def test_label_value_is_a_valid_gcp_label_value(self, rule: str, value: str) -> None:
        assert quarantine.label_value(rule) == value


class TestConflicts:
    def test_classification(self) -> None:
        from google.api_core import exceptions as gexc

        class Resp:
            def __init__(self, status: str) -> None:
                self.status = status

            def json(self) -> dict[str, Any]:
                return {"error": {"code": 400, "status": self.status}}

        assert is_conflict(gexc.Conflict("etag"))
        assert is_conflict(gexc.Aborted("etag"))
        assert is_conflict(gexc.PreconditionFailed("412"))
        assert is_conflict(gexc.BadRequest("etag", response=Resp("FAILED_PRECONDITION")))
        assert not is_conflict(gexc.BadRequest("bad", response=Resp("INVALID_ARGUMENT")))
        assert not is_conflict(gexc.BadRequest("bad"))
        assert not is_conflict(gexc.AlreadyExists("exists"))
        assert not is_conflict(gexc.PermissionDenied("no"))


def test_rule_modules_import_no_google_library() -> None:
    code = (
        "import sys\n"
        "import main, functions\n"
        "for r in functions.RULE_IDS: functions.rule(r)\n"
        "import shared.actions.run, shared.actions.quarantine, shared.actions.iam\n"
        "libs = ('google.cloud.run_v2', 'google.cloud.kms_v1', 'google.api_core', 'google.iam', 'grpc', 'requests')\n"
        "bad = sorted(m for m in sys.modules if m.startswith(libs))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


# ---------------------------------------------------------------------------
# Revert.


def test_ingress_revert_then_duplicate_delivery_writes_once(standin: Any) -> None:
    seed(standin, service_json(SLACKBOT, sa="cloud-run-slack-bot@test-project-1234.iam.gserviceaccount.com"))
    seeded = live(standin, SLACKBOT)[0]
    rev_before, etag_before = seeded["latestCreatedRevision"], seeded["etag"]
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")

    rec = remediate("run_ingress_open", f, p, ctx())
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert rec.changes == [Change("ingress", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER")]
    assert rec.before["ingress"] == "INGRESS_TRAFFIC_ALL"
    assert rec.after["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert rec.attempts == 1
    assert rec.undo.startswith(
        "gcloud run services update cloud-run-slack-bot --region=asia-northeast1 --project=test-project-1234 --ingress=all"
    )
    assert "exemption" in rec.undo
    svc, _ = live(standin, SLACKBOT)
    assert svc["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert svc["labels"] == {"team": "bots"}
    assert svc["latestCreatedRevision"] == rev_before, "a service-level fix must not roll out a new revision"

    again = remediate("run_ingress_open", f, p, ctx())
    assert again.outcome is Outcome.ALREADY_COMPLIANT and again.changes == []
    patches = writes(standin)
    assert len(patches) == 1 and patches[0]["status"] == 200
    assert json.loads(patches[0]["body"])["etag"] == etag_before, "the write must carry the etag it read"


def test_invoker_check_revert(standin: Any) -> None:
    seed(standin, service_json(CRM, invoker_off=True, sa=DEFAULT_SA))
    f, p = finding_for("run_invoker_iam_disabled", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    rec = remediate("run_invoker_iam_disabled", f, p, ctx())
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert rec.changes == [Change("invoker_iam_disabled", True, False)]
    assert "--no-invoker-iam-check" in rec.undo and "--region=us-south1" in rec.undo
    svc, _ = live(standin, CRM)
    assert svc.get("invokerIamDisabled", False) is False
    assert svc["ingress"] == "INGRESS_TRAFFIC_ALL", "a revert changes only its own field"


def test_public_invoker_revert_keeps_every_other_binding(standin: Any) -> None:
    seed(standin, service_json(EXFIL), public_policy())
    policy_etag = live(standin, EXFIL)[1]["etag"]
    f, p = finding_for("run_public_invoker", "panther-gcp-cloud-run-set-iam-policy-allusers.json")
    rec = remediate("run_public_invoker", f, p, ctx())
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    (post,) = writes(standin)
    assert json.loads(post["body"])["policy"]["etag"] == policy_etag, "the IAM write must carry the policy etag"
    assert {c.field for c in rec.changes} == {"bindings[roles/run.invoker].members", "bindings[roles/run.viewer].members"}
    assert rec.after == {"public_members": []}
    assert "add-iam-policy-binding cloudrun-exfil --region=us-west1 --project=some-project --member=allUsers" in rec.undo
    _, pol = live(standin, EXFIL)
    assert members(pol, INVOKER) == ["user:some.user@company.com"]
    assert members(pol, "roles/run.viewer") == ["group:ops@company.com"]
    assert members(pol, "roles/run.developer", CONDITION) == ["user:dev@company.com"]
    assert pol["version"] == 3 and pol["auditConfigs"] == AUDIT
    gets = standin.admin.requests(method="GET", path=":getIamPolicy$")
    assert "requestedPolicyVersion=3" in gets[0]["query"]


def test_public_invoker_revert_limited_to_configured_roles(standin: Any) -> None:
    seed(standin, service_json(EXFIL), public_policy())
    f, p = finding_for("run_public_invoker", "panther-gcp-cloud-run-set-iam-policy-allusers.json", roles=(INVOKER,))
    rec = remediate("run_public_invoker", f, p, ctx())
    assert rec.outcome is Outcome.REMEDIATED
    _, pol = live(standin, EXFIL)
    assert members(pol, INVOKER) == ["user:some.user@company.com"]
    assert members(pol, "roles/run.viewer") == ["allAuthenticatedUsers", "group:ops@company.com"]


def test_stale_event_on_compliant_service_writes_nothing(standin: Any) -> None:
    seed(standin, service_json(SLACKBOT, ingress="INGRESS_TRAFFIC_INTERNAL_ONLY"), {"version": 1})
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    for action in (Action.REVERT, Action.QUARANTINE):
        rec = remediate("run_ingress_open", f, p, ctx(action))
        assert rec.outcome is Outcome.ALREADY_COMPLIANT, (action, rec.reason)
    assert writes(standin) == []


def test_dry_run_reports_exact_changes_and_writes_nothing(standin: Any) -> None:
    seed(standin, service_json(CRM, invoker_off=True, sa=DEFAULT_SA), public_policy())
    f, p = finding_for("run_default_service_account", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    rec = remediate("run_default_service_account", f, p, ctx(Action.QUARANTINE, Mode.DRY_RUN))
    assert rec.outcome is Outcome.DRY_RUN
    fields = [c.field for c in rec.changes]
    assert fields == ["ingress", "invoker_iam_disabled", f"labels.{LABEL}", f"annotations.{ANNOTATION}",
                      "bindings[roles/run.invoker].members", "bindings[roles/run.viewer].members"]
    assert rec.changes[0] == Change("ingress", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_ONLY")
    assert rec.changes[2] == Change(f"labels.{LABEL}", None, "run_default_service_account")
    f2, p2 = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    seed(standin, service_json(SLACKBOT))
    rec2 = remediate("run_ingress_open", f2, p2, ctx(mode=Mode.DRY_RUN))
    assert rec2.outcome is Outcome.DRY_RUN
    assert rec2.changes == [Change("ingress", "INGRESS_TRAFFIC_ALL", "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER")]
    assert writes(standin) == []
    assert live(standin, CRM)[0]["ingress"] == "INGRESS_TRAFFIC_ALL"


# ---------------------------------------------------------------------------
# Conflicts.


def test_unrelated_binding_added_between_read_and_write_survives(standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(standin, service_json(EXFIL), public_policy())
    f, p = finding_for("run_public_invoker", "panther-gcp-cloud-run-set-iam-policy-allusers.json")
    on_first_call(monkeypatch, "get_iam_policy", lambda: standin.admin.mutate(
        EXFIL, iam_add={"role": "roles/run.admin", "member": "user:terraform@company.com"}, actor="terraform@company.com"
    ))
    rec = remediate("run_public_invoker", f, p, ctx())
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert rec.attempts == 2 and "1 conflicting write" in rec.reason
    _, pol = live(standin, EXFIL)
    assert members(pol, "roles/run.admin") == ["user:terraform@company.com"], "the other writer's binding was lost"
    assert iam.public_grants(pol) == []
    assert [w["status"] for w in writes(standin)] == [409, 200]


def test_service_etag_moved_by_another_writer_then_retry(standin: Any) -> None:
    seed(standin, service_json(SLACKBOT))
    standin.admin.fault("PATCH", "cloud-run-slack-bot$", move_etag=True, count=1)
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    rec = remediate("run_ingress_open", f, p, ctx())
    assert rec.outcome is Outcome.REMEDIATED and rec.attempts == 2
    assert [w["status"] for w in writes(standin)] == [409, 200]


def test_other_writer_fixed_it_first_is_not_overwritten(standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(standin, service_json(SLACKBOT))
    on_first_call(monkeypatch, "get_service", lambda: standin.admin.mutate(
        SLACKBOT, patch={"ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY", "labels": {"team": "bots", "by": "tf"}}
    ))
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    rec = remediate("run_ingress_open", f, p, ctx())
    assert rec.outcome is Outcome.ALREADY_COMPLIANT and "1 conflicting write" in rec.reason
    svc, _ = live(standin, SLACKBOT)
    assert svc["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and svc["labels"]["by"] == "tf"


def test_conflicts_every_time_raise_transient(standin: Any) -> None:
    seed(standin, service_json(SLACKBOT))
    standin.admin.fault("PATCH", "cloud-run-slack-bot$", move_etag=True, count=None)
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    with pytest.raises(TransientError, match="changed under us 3 time"):
        remediate("run_ingress_open", f, p, ctx())
    assert len(writes(standin)) == 3
    assert live(standin, SLACKBOT)[0]["ingress"] == "INGRESS_TRAFFIC_ALL"


def test_conflict_without_a_concurrent_change_is_a_failure(standin: Any) -> None:
    seed(standin, service_json(SLACKBOT))
    standin.admin.fault("PATCH", "cloud-run-slack-bot$", status=409, rpc_status="ABORTED", count=None,
                        message="Revision named 'cloud-run-slack-bot-00001' with different configuration already exists.")
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    rec = remediate("run_ingress_open", f, p, ctx())
    assert rec.outcome is Outcome.FAILED
    assert "has not changed since it was read" in rec.reason and "Revision named" in rec.reason
    assert len(writes(standin)) == 1


# ---------------------------------------------------------------------------
# Faults.


@pytest.mark.parametrize("status", [429, 500, 503])
def test_transient_status_raises_for_redelivery(standin: Any, status: int) -> None:
    seed(standin, service_json(SLACKBOT))
    standin.admin.fault("GET", "cloud-run-slack-bot$", status=status, count=1)
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    with pytest.raises(TransientError):
        remediate("run_ingress_open", f, p, ctx())
    assert writes(standin) == []
    assert remediate("run_ingress_open", f, p, ctx()).outcome is Outcome.REMEDIATED  # the redelivery


def test_dropped_connection_is_transient(standin: Any) -> None:
    seed(standin, service_json(SLACKBOT))
    standin.admin.fault("GET", "cloud-run-slack-bot$", drop=True, count=1)
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    with pytest.raises(TransientError, match="get_service"):
        remediate("run_ingress_open", f, p, ctx())


def test_permission_denied_is_a_failed_record(standin: Any) -> None:
    seed(standin, service_json(SLACKBOT))
    standin.admin.fault("PATCH", "cloud-run-slack-bot$", status=403, rpc_status="PERMISSION_DENIED", count=1,
                        message="Permission 'run.services.update' denied on resource")
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    rec = remediate("run_ingress_open", f, p, ctx())
    assert rec.outcome is Outcome.FAILED and "run.services.update" in rec.reason


def test_bad_request_is_a_failed_record(standin: Any) -> None:
    seed(standin, service_json(EXFIL), public_policy())
    standin.admin.fault("POST", ":setIamPolicy$", status=400, rpc_status="INVALID_ARGUMENT", count=1)
    f, p = finding_for("run_public_invoker", "panther-gcp-cloud-run-set-iam-policy-allusers.json")
    assert remediate("run_public_invoker", f, p, ctx()).outcome is Outcome.FAILED


def test_deleted_service_is_not_found(standin: Any) -> None:
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    for action in (Action.REVERT, Action.QUARANTINE):
        rec = remediate("run_ingress_open", f, p, ctx(action))
        assert rec.outcome is Outcome.NOT_FOUND, rec.reason
    fp, pp = finding_for("run_public_invoker", "panther-gcp-cloud-run-set-iam-policy-allusers.json")
    assert remediate("run_public_invoker", fp, pp, ctx()).outcome is Outcome.NOT_FOUND


def test_deleted_between_read_and_write_is_not_found(standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(standin, service_json(SLACKBOT))
    on_first_call(monkeypatch, "get_service", lambda: standin.admin.mutate(SLACKBOT, delete=True))
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    assert remediate("run_ingress_open", f, p, ctx()).outcome is Outcome.NOT_FOUND


def test_write_unanswered_past_its_deadline_is_bounded_and_transient(standin: Any) -> None:
    # The write may or may not have applied: a redelivery re-reads and finds out. A FAILED
    # record (acknowledged) would leave the violation open for good when it did not apply,
    # as here: the stand-in answers 503 after the deadline and changes nothing.
    seed(standin, service_json(SLACKBOT))
    standin.admin.fault("PATCH", "cloud-run-slack-bot$", delay_ms=1500, status=503, count=1)
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    start = time.monotonic()
    with pytest.raises(TransientError, match="update_service"):
        remediate("run_ingress_open", f, p, ctx(operation_timeout=0.5))
    elapsed = time.monotonic() - start
    assert elapsed < 1.4, f"took {elapsed:.2f}s: the timeout did not bound the wait"
    # The redelivery comes once the delayed write has been answered (refused), not after a guess.
    deadline = time.monotonic() + 10
    while not standin.admin.requests(method="PATCH", path="cloud-run-slack-bot$") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["status"] for r in standin.admin.requests(method="PATCH", path="cloud-run-slack-bot$")] == [503]
    again = remediate("run_ingress_open", f, p, ctx(operation_timeout=5))  # the redelivery
    assert again.outcome is Outcome.REMEDIATED, again.reason


def test_pending_operation_is_polled_until_done(standin: Any) -> None:
    seed(standin, service_json(SLACKBOT))
    standin.admin.fault("PATCH", "cloud-run-slack-bot$", pending_polls=2, count=1)
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    rec = remediate("run_ingress_open", f, p, ctx(operation_timeout=10))
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert rec.after["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"  # from the operation's response
    polls = standin.admin.requests(method="GET", path="/operations/")
    assert len(polls) == 3  # two answers "not done", then the result


def test_operation_that_never_finishes_is_bounded_and_failed(standin: Any) -> None:
    seed(standin, service_json(SLACKBOT))
    standin.admin.fault("PATCH", "cloud-run-slack-bot$", pending_polls=10_000, count=1)
    f, p = finding_for("run_ingress_open", "slackbot-replaceservice-success.json")
    start = time.monotonic()
    rec = remediate("run_ingress_open", f, p, ctx(operation_timeout=1.0))
    elapsed = time.monotonic() - start
    assert rec.outcome is Outcome.FAILED and "operation did not finish within 1s" in rec.reason
    assert elapsed < 2.0, f"took {elapsed:.2f}s: the timeout did not bound the wait"
    assert len(standin.admin.requests(method="GET", path="/operations/")) >= 2  # it did poll


# ---------------------------------------------------------------------------
# Quarantine and release.


def quarantine_crm(standin: Any) -> ActionRecord:
    """The default-SA finding on power-choosers-crm, quarantined (public grants, invoker check off)."""
    seed(standin, service_json(CRM, invoker_off=True, sa=DEFAULT_SA), public_policy())
    f, p = finding_for("run_default_service_account", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    return remediate("run_default_service_account", f, p, ctx(Action.QUARANTINE))


def test_quarantine_isolates_labels_and_records_prior_state(standin: Any) -> None:
    rec = quarantine_crm(standin)
    assert rec.outcome is Outcome.QUARANTINED, rec.reason
    assert rec.undo == f"python main.py release {CRM}"
    assert rec.before["ingress"] == "INGRESS_TRAFFIC_ALL" and rec.before["invoker_iam_disabled"] is True
    assert rec.after["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and rec.after["public_members"] == []

    svc, pol = live(standin, CRM)
    assert svc["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and svc.get("invokerIamDisabled", False) is False
    assert svc["labels"] == {"team": "bots", LABEL: "run_default_service_account"}
    record = held_record(svc)
    assert record == QuarantineRecord(
        rule="run_default_service_account", event="i2m4lzd7hnt-ok", at="2026-11-23T10:33:20Z", label=LABEL,
        prior_ingress="INGRESS_TRAFFIC_ALL", prior_invoker_iam_disabled=True, prior_label=None,
        set_ingress="INGRESS_TRAFFIC_INTERNAL_ONLY",
        removed=(Grant(INVOKER, "allUsers"), Grant("roles/run.viewer", "allAuthenticatedUsers")),
    )
    assert members(pol, INVOKER) == ["user:some.user@company.com"]
    assert members(pol, "roles/run.developer", CONDITION) == ["user:dev@company.com"]
    assert pol["auditConfigs"] == AUDIT and pol["version"] == 3
    assert svc["template"]["serviceAccount"] == DEFAULT_SA, "quarantine isolates, it does not redeploy"
    assert svc["generation"] == "2" and "/revisions/power-choosers-crm-00001-" in svc["latestCreatedRevision"], (
        "a quarantine that leaves the template alone must not roll out a new revision"
    )


def test_quarantine_duplicate_and_second_rule_are_no_ops(standin: Any) -> None:
    quarantine_crm(standin)
    n = len(writes(standin))
    assert n == 2  # one service update, one IAM write
    f, p = finding_for("run_default_service_account", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    again = remediate("run_default_service_account", f, p, ctx(Action.QUARANTINE))
    assert again.outcome is Outcome.ALREADY_COMPLIANT and "already quarantined by run_default_service_account" in again.reason
    f2, p2 = finding_for("run_unapproved_region", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    other = remediate("run_unapproved_region", f2, p2, ctx(Action.QUARANTINE))
    assert other.outcome is Outcome.ALREADY_COMPLIANT
    assert len(writes(standin)) == n


def test_quarantine_restores_isolation_and_keeps_original_prior_state(standin: Any) -> None:
    quarantine_crm(standin)
    standin.admin.mutate(CRM, patch={"ingress": "INGRESS_TRAFFIC_ALL"}, iam_add={"role": INVOKER, "member": "allAuthenticatedUsers"})
    f, p = finding_for("run_default_service_account", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    rec = remediate("run_default_service_account", f, p, ctx(Action.QUARANTINE))
    assert rec.outcome is Outcome.QUARANTINED
    svc, pol = live(standin, CRM)
    assert svc["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and iam.public_grants(pol) == []
    record = held_record(svc)
    assert record.prior_ingress == "INGRESS_TRAFFIC_ALL" and record.prior_invoker_iam_disabled is True
    assert Grant(INVOKER, "allAuthenticatedUsers") in record.removed and Grant(INVOKER, "allUsers") in record.removed


def test_quarantine_keeps_stricter_ingress_none(standin: Any) -> None:
    seed(standin, service_json(SLACKBOT, ingress="INGRESS_TRAFFIC_NONE"), {"version": 1})
    f, p = finding_for("run_unapproved_region", "slackbot-replaceservice-success.json")
    rec = remediate("run_unapproved_region", f, p, ctx(Action.QUARANTINE))
    assert rec.outcome is Outcome.QUARANTINED
    assert "ingress" not in [c.field for c in rec.changes]
    assert live(standin, SLACKBOT)[0]["ingress"] == "INGRESS_TRAFFIC_NONE"


def test_quarantine_iam_conflict_keeps_record_exact(standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Between our policy read and write someone else removes allUsers and adds a binding:
    the record must not claim a grant Rampart did not take, and their binding survives."""
    seed(standin, service_json(CRM, invoker_off=True, sa=DEFAULT_SA), public_policy())
    on_first_call(monkeypatch, "get_iam_policy", lambda: standin.admin.mutate(
        CRM, iam_remove={"role": INVOKER, "member": "allUsers"}, iam_add={"role": "roles/run.admin", "member": "user:tf@company.com"}
    ))
    f, p = finding_for("run_default_service_account", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    rec = remediate("run_default_service_account", f, p, ctx(Action.QUARANTINE))
    assert rec.outcome is Outcome.QUARANTINED and rec.attempts == 2
    svc, pol = live(standin, CRM)
    record = held_record(svc)
    assert record.removed == (Grant("roles/run.viewer", "allAuthenticatedUsers"),)
    assert members(pol, "roles/run.admin") == ["user:tf@company.com"]
    assert iam.public_grants(pol) == []


def test_quarantine_of_plaintext_secrets_never_leaks_the_value(standin: Any) -> None:
    secret = "plain-value-7f3a-must-never-be-logged"
    env = [{"name": "SLACK_CHANNEL", "value": "alerts"}, {"name": "SLACK_BOT_TOKEN", "value": secret}]
    seed(standin, service_json(SLACKBOT, env=env), {"version": 1})
    f, p = finding_for("run_plaintext_secrets", "slackbot-replaceservice-plaintext-token.json")
    rec = remediate("run_plaintext_secrets", f, p, ctx(Action.QUARANTINE))
    assert rec.outcome is Outcome.QUARANTINED, rec.reason
    assert secret not in json.dumps(rec.to_dict(), default=str)
    svc, _ = live(standin, SLACKBOT)
    assert secret not in json.dumps(svc["annotations"]) and secret not in json.dumps(svc["labels"])
    reverted = remediate("run_plaintext_secrets", f, p, ctx(Action.REVERT))
    assert reverted.outcome is Outcome.FAILED and "expected action quarantine, found revert" in reverted.reason


def test_alert_only_rules_quarantine_when_chosen(standin: Any) -> None:
    # A live service without VPC egress settings or CMEK: both alert-only rules still fire on it.
    seed(standin, service_json(SLACKBOT), {"version": 1})
    f, p = finding_for("run_cmek_missing", "slackbot-replaceservice-success.json")
    rec = remediate("run_cmek_missing", f, p, ctx(Action.QUARANTINE))
    assert rec.outcome is Outcome.QUARANTINED, rec.reason
    assert live(standin, SLACKBOT)[0]["labels"][LABEL] == "run_cmek_missing"


def owner_fixes_the_service_account(standin: Any) -> None:
    """What the owner of a service quarantined for its default service account does first."""
    standin.admin.mutate(CRM, patch={"template": {"serviceAccount": "crm@power-choosers-crm.iam.gserviceaccount.com"}})


def test_release_restores_the_recorded_state(standin: Any) -> None:
    quarantine_crm(standin)
    owner_fixes_the_service_account(standin)
    standin.admin.clear_requests()
    result = quarantine.release(CRM)
    assert isinstance(result, quarantine.ReleaseResult) and not result.forced
    svc, pol = live(standin, CRM)
    assert svc["ingress"] == "INGRESS_TRAFFIC_ALL" and svc["invokerIamDisabled"] is True
    assert svc["labels"] == {"team": "bots"} and ANNOTATION not in svc.get("annotations", {})
    assert members(pol, INVOKER) == ["allUsers", "user:some.user@company.com"]
    assert members(pol, "roles/run.viewer") == ["allAuthenticatedUsers", "group:ops@company.com"]
    assert members(pol, "roles/run.developer", CONDITION) == ["user:dev@company.com"]
    assert pol["auditConfigs"] == AUDIT
    fields = [c.field for c in result.restored]
    assert fields == ["bindings[roles/run.invoker].members", "bindings[roles/run.viewer].members", "ingress",
                      "invoker_iam_disabled", f"labels.{LABEL}", f"annotations.{ANNOTATION}"]
    assert str(result).startswith(f"released {CRM} (quarantined by run_default_service_account")
    assert len(writes(standin)) == 2
    with pytest.raises(quarantine.NotQuarantined, match="not quarantined"):
        quarantine.release(CRM)


def test_release_refuses_when_the_service_changed_and_force_overrides(standin: Any) -> None:
    quarantine_crm(standin)
    standin.admin.mutate(CRM, patch={"ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"},
                         iam_add={"role": INVOKER, "member": "allUsers"})
    standin.admin.clear_requests()
    with pytest.raises(quarantine.ReleaseRefused) as err:
        quarantine.release(CRM)
    msg = str(err.value)
    assert "ingress: quarantine left 'INGRESS_TRAFFIC_INTERNAL_ONLY', found 'INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER'" in msg
    assert "allUsers granted again" in msg and "--force" in msg
    assert {d.field for d in err.value.drift} == {"ingress", "bindings[roles/run.invoker].members"}
    assert writes(standin) == [], "a refused release writes nothing"

    result = quarantine.release(CRM, force=True)
    assert result.forced and len(result.drift) == 2
    svc, pol = live(standin, CRM)
    assert svc["ingress"] == "INGRESS_TRAFFIC_ALL" and svc["invokerIamDisabled"] is True
    assert ANNOTATION not in svc.get("annotations", {}) and LABEL not in svc["labels"]
    assert members(pol, INVOKER) == ["allUsers", "user:some.user@company.com"]
    assert members(pol, "roles/run.viewer") == ["allAuthenticatedUsers", "group:ops@company.com"]


def test_release_through_the_cli(standin: Any) -> None:
    from shared import cli

    quarantine_crm(standin)
    owner_fixes_the_service_account(standin)
    out = io.StringIO()
    assert cli.main(["release", CRM], out=out) == 0
    assert f"released {CRM}" in out.getvalue()
    assert live(standin, CRM)[0]["ingress"] == "INGRESS_TRAFFIC_ALL"


def test_release_rejects_bad_names_and_missing_services(standin: Any) -> None:
    with pytest.raises(quarantine.ReleaseError, match="expected a service name projects/"):
        quarantine.release("cloud-run-slack-bot")
    with pytest.raises(quarantine.ReleaseError, match="not found"):
        quarantine.release(SLACKBOT)


def test_iam_undo_quotes_conditions_the_way_gcloud_reads_them() -> None:
    plain = Grant.of("roles/run.invoker", "allUsers", {"expression": "request.time < timestamp('2030-01-01T00:00:00Z')", "title": "t"})
    comma = Grant.of("roles/run.invoker", "allAuthenticatedUsers", {"expression": "a in [1, 2]", "title": "t"})
    name = "projects/p/locations/us-central1/services/svc"
    assert "--condition='expression=request.time < timestamp('\"'\"'2030-01-01T00:00:00Z'\"'\"'),title=t'" in iam.undo(
        name, "add", [plain])
    # A comma inside a part needs gcloud's alternate delimiter, or gcloud splits the expression.
    assert "--condition='^;^expression=a in [1, 2];title=t'" in iam.undo(name, "add", [comma])
    assert "--condition" not in iam.undo(name, "add", [Grant.of("roles/run.invoker", "allUsers")])



# ---------------------------------------------------------------------------
# Issue 14, findings 1 and 5: the prior state lives where only Rampart writes.

OUTSIDER = "user:mallory@attacker.example"


def test_an_edited_annotation_makes_release_refuse_and_grant_nothing(standin: Any) -> None:
    quarantine_crm(standin)
    owner_fixes_the_service_account(standin)
    # A run.developer writes the "prior state" they would like release to restore.
    forged = {"v": 1, "rule": "run_default_service_account", "event": "x", "at": "2026-01-01T00:00:00Z",
              "label": LABEL, "prior": {"ingress": "INGRESS_TRAFFIC_ALL", "invoker_iam_disabled": True, "label": None},
              "set": {"ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY", "invoker_iam_disabled": False},
              "removed": [{"role": "roles/run.admin", "member": OUTSIDER}, {"role": INVOKER, "member": "allUsers"}]}
    standin.admin.mutate(CRM, patch={"annotations": {ANNOTATION: json.dumps(forged)}})
    standin.admin.clear_requests()
    with pytest.raises(quarantine.ReleaseError, match="refusing to release") as exc:
        quarantine.release(CRM, force=True)
    assert "no Rampart quarantine id" in str(exc.value)
    svc, pol = live(standin, CRM)
    assert writes(standin) == [] and members(pol, "roles/run.admin") == [] and svc["ingress"] != "INGRESS_TRAFFIC_ALL"


def test_a_marker_with_another_digest_is_refused(standin: Any) -> None:
    quarantine_crm(standin)
    svc, _ = live(standin, CRM)
    qid = svc["annotations"][ANNOTATION].split(":")[0]
    standin.admin.mutate(CRM, patch={"annotations": {ANNOTATION: f"{qid}:{'0' * 64}"}})
    with pytest.raises(quarantine.ReleaseError, match="does not match the digest"):
        quarantine.release(CRM)


def test_release_refuses_while_the_quarantining_rule_still_holds_unless_forced(standin: Any) -> None:
    quarantine_crm(standin)
    with pytest.raises(quarantine.ReleaseRefused, match="run_default_service_account would still flag it") as exc:
        quarantine.release(CRM)
    assert "dedicated one first" in str(exc.value) and "--force" in str(exc.value)
    assert quarantine.release(CRM, force=True).forced


def test_release_restores_only_what_quarantine_removed(standin: Any, records: MemoryRecords) -> None:
    quarantine_crm(standin)
    owner_fixes_the_service_account(standin)
    quarantine.release(CRM)
    _, pol = live(standin, CRM)
    assert members(pol, "roles/run.admin") == []
    everyone = {m for b in pol.get("bindings", []) for m in b["members"]}
    assert OUTSIDER not in everyone


def test_a_junk_annotation_never_blocks_quarantine_and_is_kept(standin: Any) -> None:
    seed(standin, service_json(CRM, invoker_off=True, sa=DEFAULT_SA, annotations={ANNOTATION: "{not a record \x1b[2J"}),
         public_policy())
    f, p = finding_for("run_default_service_account", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    rec = remediate("run_default_service_account", f, p, ctx(Action.QUARANTINE))
    assert rec.outcome is Outcome.QUARANTINED, rec.reason
    svc, pol = live(standin, CRM)
    assert svc["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and "allUsers" not in members(pol, INVOKER)
    assert held_record(svc).prior_annotation == "{not a record \x1b[2J"


def test_release_output_carries_no_terminal_escapes(standin: Any, records: MemoryRecords) -> None:
    from shared import cli

    quarantine_crm(standin)
    owner_fixes_the_service_account(standin)
    svc, _ = live(standin, CRM)
    stored = records.load(CRM, svc["annotations"][ANNOTATION])
    hostile = {**stored.record, "at": "2026\x1b]0;pwned\x07\x1b[31m", "event": "e\r\nFAKE: released cleanly"}
    new = records.save(CRM, hostile)
    standin.admin.mutate(CRM, patch={"annotations": {ANNOTATION: new.marker}})
    out = io.StringIO()
    assert cli.main(["release", CRM], out=out) == 0
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "\r" not in text
    assert "\nFAKE" not in text


# ---------------------------------------------------------------------------
# A PATCH without an update mask: Google's documents leave open whether Cloud Run replaces the
# service or updates only the fields set on the wire (AIP-134). Rampart must work under both.


@pytest.mark.parametrize("semantics", ["replace", "implied"])
def test_reverts_and_quarantine_hold_whichever_way_cloud_run_reads_a_maskless_patch(standin: Any, semantics: str) -> None:
    seed(standin, service_json(CRM, invoker_off=True, sa=DEFAULT_SA))
    assert standin.admin.settings(run_patch_without_mask=semantics)["run_patch_without_mask"] == semantics
    f, p = finding_for("run_invoker_iam_disabled", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    rec = remediate("run_invoker_iam_disabled", f, p, ctx())
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert live(standin, CRM)[0].get("invokerIamDisabled", False) is False
    (patch,) = writes(standin)
    assert "updateMask=invokerIamDisabled" in patch["query"], patch["query"]
    # Quarantine turns the invoker check on too (False: the default, never on the wire).
    seed(standin, service_json(CRM, invoker_off=True, sa=DEFAULT_SA))
    standin.admin.settings(run_patch_without_mask=semantics)
    f, p = finding_for("run_default_service_account", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    rec = remediate("run_default_service_account", f, p, ctx(Action.QUARANTINE))
    assert rec.outcome is Outcome.QUARANTINED, rec.reason
    svc = live(standin, CRM)[0]
    assert svc.get("invokerIamDisabled", False) is False and svc["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"


def test_a_write_accepted_but_not_applied_is_failed_not_remediated(standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # As if Cloud Run ignored the field: the write answers with the service unchanged.
    from shared.actions import run as run_actions

    monkeypatch.setattr(run_actions, "update_service", lambda svc, budget, fields=(): run_actions.get_service(svc.name, budget))
    seed(standin, service_json(CRM, invoker_off=True, sa=DEFAULT_SA))
    f, p = finding_for("run_invoker_iam_disabled", "powerchoosers-replaceservice-invoker-iam-disabled-success.json")
    rec = remediate("run_invoker_iam_disabled", f, p, ctx())
    assert rec.outcome is Outcome.FAILED
    assert "still has invoker_iam_disabled=True" in rec.reason and rec.after["invoker_iam_disabled"] is True

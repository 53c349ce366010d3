"""KMS remediation end to end: real audit entries (tests/data/kms, from the corpus) through
`evaluate` and `run_remediation(remediate, ...)`, with the real kms_v1 / run_v2 clients
against the stand-in subprocess, down to the live state read back from it.

Pure helpers (policy planning, undo commands, time left) are tested without a server.
"""

from __future__ import annotations

import datetime as dt
import importlib
import time
from pathlib import Path
from typing import Any

import pytest

from shared import clients
from shared.actions import ActionContext, TransientError, run_remediation
from shared.event import parse
from shared.model import Action, ActionRecord, Change, Finding, Mode, Outcome
from tests.helpers import load_json

DATA = Path(__file__).parent / "data" / "kms"

PROJECT = "test-project"
RING = f"projects/{PROJECT}/locations/us/keyRings/test-keyring"
KEY = f"{RING}/cryptoKeys/test-key"
V1 = f"{KEY}/cryptoKeyVersions/1"
ROLE = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
AGENT = "serviceAccount:service-111111111111@gcp-sa-financialservices.iam.gserviceaccount.com"
CONDITION = {"title": "until-2030", "expression": "request.time < timestamp('2030-01-01T00:00:00Z')"}

WRITES = r":restore$|:setIamPolicy$|/cryptoKeyVersions/\d+$"


def rule_module(rule_id: str) -> Any:
    return importlib.import_module(f"functions.{rule_id}")


def finding_for(rule_id: str, fixture: str, **params: Any) -> tuple[Finding, Any]:
    mod = rule_module(rule_id)
    p = mod.Params(**params)
    f = mod.RULE.evaluate(parse(load_json(DATA / fixture)), p)
    assert f is not None, f"{rule_id} did not fire on {fixture}"
    return f, p


def ctx(mode: Mode = Mode.ENFORCE, action: Action = Action.RESTORE, **kw: Any) -> ActionContext:
    return ActionContext(mode=mode, action=action, **kw)


def remediate(rule_id: str, f: Finding, p: Any, c: ActionContext | None = None) -> ActionRecord:
    return run_remediation(rule_module(rule_id).remediate, f, p, c or ctx())


def rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def seed_key(standin: Any, *, location: str = "us", versions: dict[str, dict[str, Any]] | None = None,
             policies: dict[str, Any] | None = None, services: list[dict[str, Any]] | None = None) -> str:
    ring = f"projects/{PROJECT}/locations/{location}/keyRings/test-keyring"
    key = f"{ring}/cryptoKeys/test-key"
    standin.admin.seed({
        "keyRings": [{"name": ring}],
        "cryptoKeys": [{"name": key, "rotationPeriod": "7776000s", "nextRotationTime": "2030-01-01T00:00:00Z"}],
        "cryptoKeyVersions": [{"name": f"{key}/cryptoKeyVersions/{n}", **v} for n, v in (versions or {"1": {}}).items()],
        "policies": policies or {},
        "services": services or [],
    })
    standin.admin.clear_requests()
    return key


def live_state(name: str) -> str:
    return clients.kms().get_crypto_key_version(name=name).state.name


def live_policy(resource: str) -> dict[str, Any]:
    from google.protobuf import json_format

    pol = clients.kms().get_iam_policy(request={"resource": resource, "options": {"requested_policy_version": 3}})
    return json_format.MessageToDict(pol)


def writes(standin: Any) -> list[dict[str, Any]]:
    return [r for r in standin.admin.requests(path=WRITES) if r["method"] != "GET"]


def members(policy: dict[str, Any], role: str, condition: dict[str, Any] | None = None) -> list[str]:
    for b in policy.get("bindings", []):
        if b["role"] == role and (b.get("condition") or None) == condition:
            return sorted(b["members"])
    return []


# ---------------------------------------------------------------------------
# Version disabled → re-enable.


@pytest.mark.integration
def test_disabled_version_is_reenabled_once(standin: Any) -> None:
    seed_key(standin, versions={"1": {"state": "DISABLED"}})
    f, p = finding_for("kms_version_disabled", "version_disabled.json")

    rec = remediate("kms_version_disabled", f, p)

    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert rec.changes == [Change("state", "DISABLED", "ENABLED")]
    assert rec.before["state"] == "DISABLED" and rec.after["state"] == "ENABLED"
    assert rec.attempts == 1
    assert rec.undo.startswith(
        "gcloud kms keys versions disable 1 --key=test-key --keyring=test-keyring --location=us --project=test-project"
    )
    assert "exemption" in rec.undo
    assert live_state(V1) == "ENABLED"
    (patch,) = writes(standin)
    assert patch["method"] == "PATCH" and "updateMask=state" in patch["query"]

    # The same event again (Pub/Sub redelivers at least once): nothing is written twice.
    again = remediate("kms_version_disabled", f, p)
    assert again.outcome is Outcome.ALREADY_COMPLIANT
    assert again.changes == [] and again.undo == ""
    assert len(writes(standin)) == 1


@pytest.mark.integration
def test_disabled_version_dry_run_writes_nothing(standin: Any) -> None:
    seed_key(standin, versions={"1": {"state": "DISABLED"}})
    f, p = finding_for("kms_version_disabled", "version_disabled.json")

    rec = remediate("kms_version_disabled", f, p, ctx(Mode.DRY_RUN))

    assert rec.outcome is Outcome.DRY_RUN
    assert rec.changes == [Change("state", "DISABLED", "ENABLED")]
    assert writes(standin) == []
    assert live_state(V1) == "DISABLED"


@pytest.mark.integration
def test_disabled_rule_leaves_a_scheduled_destruction_to_the_restore_rule(standin: Any) -> None:
    seed_key(standin, versions={"1": {"state": "DESTROY_SCHEDULED"}})
    f, p = finding_for("kms_version_disabled", "version_disabled.json")

    rec = remediate("kms_version_disabled", f, p)

    assert rec.outcome is Outcome.FAILED
    assert "found DESTROY_SCHEDULED" in rec.reason and "kms_version_destroy_scheduled" in rec.reason
    assert writes(standin) == []


@pytest.mark.integration
def test_enrich_finds_dependent_run_services(standin: Any) -> None:
    key = f"projects/{PROJECT}/locations/us-central1/keyRings/test-keyring/cryptoKeys/test-key"
    seed_key(standin, location="us-central1", versions={"1": {"state": "DISABLED"}}, services=[
        _service("billing", "us-central1", None),
        _service("claims", "us-central1", key, revocation="SHUTDOWN"),
        _service("records", "us-central1", f"{key}/cryptoKeyVersions/1"),
        _service("other", "us-central1", f"projects/{PROJECT}/locations/us-central1/keyRings/r/cryptoKeys/k"),
        _service("elsewhere", "us-east1", key),  # another region: not listed (the key's location only)
    ])
    f, p = finding_for("kms_version_disabled", "version_disabled_us_central1.json")

    facts = rule_module("kms_version_disabled").enrich(f, p, ctx(Mode.ALERT, Action.ALERT))

    assert facts["key"] == key and facts["version"] == "1" and facts["state_now"] == "DISABLED"
    assert facts["dependents_searched"] == "projects/test-project/locations/us-central1"
    assert facts["dependents"] == [
        {"service": "projects/test-project/locations/us-central1/services/claims", "revocation_action": "SHUTDOWN"},
        {"service": "projects/test-project/locations/us-central1/services/records"},
    ]
    assert facts["services_scanned"] == 4
    assert "dependents_error" not in facts
    assert writes(standin) == []


@pytest.mark.integration
def test_enrich_dependents_are_bounded_and_optional(standin: Any) -> None:
    key = f"projects/{PROJECT}/locations/us-central1/keyRings/test-keyring/cryptoKeys/test-key"
    seed_key(standin, location="us-central1", services=[_service(f"svc-{i}", "us-central1", key) for i in range(5)])
    f, p = finding_for("kms_version_disabled", "version_disabled_us_central1.json", max_services_scanned=3)
    mod = rule_module("kms_version_disabled")

    facts = mod.enrich(f, p, ctx(Mode.ALERT, Action.ALERT))
    assert facts["services_scanned"] == 3 and len(facts["dependents"]) == 3
    assert facts["dependents_truncated"] == "stopped after 3 services"

    standin.admin.clear_requests()
    off = mod.enrich(f, mod.Params(find_dependents=False), ctx(Mode.ALERT, Action.ALERT))
    assert "dependents" not in off
    assert standin.admin.requests(path=r"/services$") == []


@pytest.mark.integration
def test_enrich_reports_a_failed_listing_instead_of_failing(standin: Any) -> None:
    seed_key(standin, location="us-central1", versions={"1": {"state": "DISABLED"}})
    standin.admin.fault("GET", r"/v2/.*/services$", status=403, rpc_status="PERMISSION_DENIED",
                        message="run.services.list denied")
    f, p = finding_for("kms_version_disabled", "version_disabled_us_central1.json")

    facts = rule_module("kms_version_disabled").enrich(f, p, ctx(Mode.ALERT, Action.ALERT))

    assert facts["state_now"] == "DISABLED"
    assert facts["dependents"] == []
    assert "run.services.list denied" in facts["dependents_error"]


@pytest.mark.integration
def test_enrich_reports_a_dropped_listing_and_keeps_the_version_facts(standin: Any) -> None:
    # Over REST a dropped connection is a requests error, not a google.api_core one.
    seed_key(standin, location="us-central1", versions={"1": {"state": "DISABLED"}})
    standin.admin.fault("GET", r"/v2/.*/services$", drop=True)
    f, p = finding_for("kms_version_disabled", "version_disabled_us_central1.json")

    facts = rule_module("kms_version_disabled").enrich(f, p, ctx(Mode.ALERT, Action.ALERT))

    assert facts["state_now"] == "DISABLED"
    assert facts["dependents"] == []
    assert facts["dependents_error"].startswith("ConnectionError")


def _service(name: str, location: str, encryption_key: str | None, *, revocation: str | None = None) -> dict[str, Any]:
    tmpl: dict[str, Any] = {"containers": [{"image": "us-docker.pkg.dev/cloudrun/container/hello"}]}
    if encryption_key:
        tmpl["encryptionKey"] = encryption_key
    if revocation:
        tmpl["encryptionKeyRevocationAction"] = revocation
    return {"name": f"projects/{PROJECT}/locations/{location}/services/{name}", "template": tmpl}


# ---------------------------------------------------------------------------
# Version scheduled for destruction → restore, then re-enable.


@pytest.mark.integration
def test_scheduled_version_is_restored_and_reenabled_once(standin: Any) -> None:
    destroy_at = time.time() + 86400
    seed_key(standin, versions={"1": {"state": "DESTROY_SCHEDULED", "destroyTime": rfc3339(destroy_at)}})
    f, p = finding_for("kms_version_destroy_scheduled", "version_destroy.json")
    assert f.observed["destroy_time"].startswith("2025-12-16T15:40:47")

    rec = remediate("kms_version_destroy_scheduled", f, p)

    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert rec.changes == [Change("state", "DESTROY_SCHEDULED", "DISABLED"), Change("state", "DISABLED", "ENABLED")]
    assert rec.before["destroy_time"][:19] == rfc3339(destroy_at)[:19]
    assert 86000 < rec.before["seconds_left"] <= 86400
    assert rec.before["time_left"].startswith("23h") or rec.before["time_left"].startswith("1d")
    assert "reenable_after_restore" in rec.reason and "does not record" in rec.reason
    assert rec.attempts == 2
    assert rec.undo.startswith(
        "gcloud kms keys versions disable 1 --key=test-key --keyring=test-keyring --location=us --project=test-project"
        " && gcloud kms keys versions destroy 1 --key=test-key"
    )
    assert live_state(V1) == "ENABLED"
    assert [(w["method"], w["path"].rsplit("/", 1)[1]) for w in writes(standin)] == [("POST", "1:restore"), ("PATCH", "1")]

    again = remediate("kms_version_destroy_scheduled", f, p)
    assert again.outcome is Outcome.ALREADY_COMPLIANT
    assert len(writes(standin)) == 2


@pytest.mark.integration
def test_restore_without_reenable_leaves_it_disabled(standin: Any) -> None:
    seed_key(standin, versions={"1": {"state": "DESTROY_SCHEDULED"}})
    f, p = finding_for("kms_version_destroy_scheduled", "version_destroy.json", reenable_after_restore=False)

    rec = remediate("kms_version_destroy_scheduled", f, p)

    assert rec.outcome is Outcome.REMEDIATED
    assert rec.changes == [Change("state", "DESTROY_SCHEDULED", "DISABLED")]
    assert "left DISABLED" in rec.reason
    assert live_state(V1) == "DISABLED"
    assert remediate("kms_version_destroy_scheduled", f, p).outcome is Outcome.ALREADY_COMPLIANT


@pytest.mark.integration
def test_restore_after_the_window_is_refused_plainly(standin: Any) -> None:
    seed_key(standin, versions={"1": {"state": "DESTROY_SCHEDULED", "destroyTime": rfc3339(time.time() + 3600)}})
    standin.admin.advance_clock(7200)  # the destroy time passes: the version reads DESTROYED
    f, p = finding_for("kms_version_destroy_scheduled", "version_destroy.json")

    rec = remediate("kms_version_destroy_scheduled", f, p)

    assert rec.outcome is Outcome.FAILED
    assert rec.reason.startswith(f"version {V1} was destroyed at ")
    assert rec.reason.endswith("; nothing can be restored")
    assert rec.changes == [] and rec.undo == ""
    assert writes(standin) == []
    assert live_state(V1) == "DESTROYED"

    facts = rule_module("kms_version_destroy_scheduled").enrich(f, p, ctx())
    assert facts["state_now"] == "DESTROYED" and facts["destroyed_at"]


@pytest.mark.integration
def test_restore_dry_run_writes_nothing(standin: Any) -> None:
    seed_key(standin, versions={"1": {"state": "DESTROY_SCHEDULED"}})
    f, p = finding_for("kms_version_destroy_scheduled", "version_destroy.json")

    rec = remediate("kms_version_destroy_scheduled", f, p, ctx(Mode.DRY_RUN))

    assert rec.outcome is Outcome.DRY_RUN
    assert rec.changes == [Change("state", "DESTROY_SCHEDULED", "DISABLED"), Change("state", "DISABLED", "ENABLED")]
    assert writes(standin) == []
    assert live_state(V1) == "DESTROY_SCHEDULED"


@pytest.mark.integration
def test_restore_interrupted_before_reenable_finishes_on_redelivery(standin: Any) -> None:
    seed_key(standin, versions={"1": {"state": "DESTROY_SCHEDULED"}})
    standin.admin.fault("PATCH", r"/cryptoKeyVersions/1$", status=503, rpc_status="UNAVAILABLE")
    f, p = finding_for("kms_version_destroy_scheduled", "version_destroy.json")

    with pytest.raises(TransientError, match="ServiceUnavailable"):
        remediate("kms_version_destroy_scheduled", f, p)
    assert live_state(V1) == "DISABLED"  # restored, not yet enabled

    rec = remediate("kms_version_destroy_scheduled", f, p)
    assert rec.outcome is Outcome.REMEDIATED
    assert rec.changes == [Change("state", "DISABLED", "ENABLED")]
    assert live_state(V1) == "ENABLED"
    assert [w["path"].rsplit("/", 1)[1] for w in writes(standin)] == ["1:restore", "1", "1"]


@pytest.mark.integration
def test_enrich_carries_destroy_time_and_time_left(standin: Any) -> None:
    destroy_at = time.time() + 3 * 86400 + 600
    seed_key(standin, versions={"1": {"state": "DESTROY_SCHEDULED", "destroyTime": rfc3339(destroy_at)}})
    f, p = finding_for("kms_version_destroy_scheduled", "version_destroy.json", find_dependents=False)

    facts = rule_module("kms_version_destroy_scheduled").enrich(f, p, ctx(Mode.ALERT, Action.ALERT))

    assert facts["state_now"] == "DESTROY_SCHEDULED"
    assert facts["destroy_time"].startswith(rfc3339(destroy_at)[:19])
    assert facts["time_left"].startswith("3d 0h")
    assert "dependents" not in facts

    remediate("kms_version_destroy_scheduled", f, p)
    after = rule_module("kms_version_destroy_scheduled").enrich(f, p, ctx())
    assert after["state_now"] == "ENABLED"
    assert "time_left" not in after and after["destroy_time_in_event"].startswith("2025-12-16")


# ---------------------------------------------------------------------------
# Service agent's binding removed → put it back.


def _key_policy() -> dict[str, Any]:
    return {
        "version": 3,
        "bindings": [
            {"role": ROLE, "members": ["user:alice@lotr.com"]},
            {"role": ROLE, "members": [AGENT], "condition": CONDITION},
            {"role": "roles/cloudkms.viewer", "members": ["group:kms-admins@lotr.com"]},
        ],
    }


@pytest.mark.integration
def test_agent_binding_is_restored_keeping_everything_else(standin: Any) -> None:
    seed_key(standin, policies={KEY: _key_policy()})
    f, p = finding_for("kms_agent_binding_removed", "key_setiam_remove_agent.json")
    assert f.observed["missing_members"] == [AGENT]

    rec = remediate("kms_agent_binding_removed", f, p)

    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert rec.changes == [Change(f"bindings[{ROLE}].members", ["user:alice@lotr.com"], [AGENT, "user:alice@lotr.com"])]
    pol = live_policy(KEY)
    assert pol["version"] == 3
    assert members(pol, ROLE) == [AGENT, "user:alice@lotr.com"]
    assert members(pol, ROLE, CONDITION) == [AGENT]  # the conditional binding is untouched
    assert members(pol, "roles/cloudkms.viewer") == ["group:kms-admins@lotr.com"]
    assert len(pol["bindings"]) == 3
    assert rec.undo.startswith(
        "gcloud kms keys remove-iam-policy-binding test-key --keyring=test-keyring --location=us --project=test-project"
        f" --member={AGENT} --role={ROLE} --condition=None"
    )
    (setp,) = writes(standin)
    assert '"etag"' in setp["body"]

    again = remediate("kms_agent_binding_removed", f, p)
    assert again.outcome is Outcome.ALREADY_COMPLIANT
    assert len(writes(standin)) == 1


@pytest.mark.integration
def test_required_member_missing_from_new_policy_is_added(standin: Any) -> None:
    # The real corpus entry carries no policyDelta: the rule checks its new policy against `required`.
    gcs_agent = "serviceAccount:service-111111111111@gs-project-accounts.iam.gserviceaccount.com"
    seed_key(standin, policies={KEY: {"version": 1, "bindings": [
        {"role": ROLE, "members": ["serviceAccount:app-service@test-project.iam.gserviceaccount.com"]},
    ]}})
    f, p = finding_for("kms_agent_binding_removed", "key_setiam_regular_sa.json", required={"*/cryptoKeys/test-key": (gcs_agent,)})

    rec = remediate("kms_agent_binding_removed", f, p)

    assert rec.outcome is Outcome.REMEDIATED
    pol = live_policy(KEY)
    assert pol["version"] == 1
    assert members(pol, ROLE) == [
        "serviceAccount:app-service@test-project.iam.gserviceaccount.com", gcs_agent,
    ]


@pytest.mark.integration
def test_agent_restored_on_a_key_ring_without_any_binding(standin: Any) -> None:
    seed_key(standin)
    mod = rule_module("kms_agent_binding_removed")
    f = _ring_finding(mod)

    rec = remediate("kms_agent_binding_removed", f, mod.Params())

    assert rec.outcome is Outcome.REMEDIATED
    assert rec.changes == [Change(f"bindings[{ROLE}].members", [], [AGENT])]
    assert members(live_policy(RING), ROLE) == [AGENT]
    assert rec.undo.startswith(
        "gcloud kms keyrings remove-iam-policy-binding test-keyring --location=us --project=test-project"
    )


def _ring_finding(mod: Any) -> Finding:
    doc = load_json(DATA / "key_setiam_remove_agent.json")
    pp = doc["protoPayload"]
    pp["resourceName"] = pp["request"]["resource"] = RING
    f = mod.RULE.evaluate(parse(doc), mod.Params())
    assert f is not None and f.resource == RING
    return f


@pytest.mark.integration
def test_concurrent_unrelated_iam_change_survives(standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import iam

    seed_key(standin, policies={KEY: _key_policy()})
    f, p = finding_for("kms_agent_binding_removed", "key_setiam_remove_agent.json")
    real_get = iam.get_policy
    calls = {"n": 0}

    def get_then_someone_writes(resource: str, timeout: float) -> dict[str, Any]:
        policy = real_get(resource, timeout)
        calls["n"] += 1
        if calls["n"] == 1:  # another admin writes between our read and our write
            standin.admin.mutate(KEY, iam_add={"role": "roles/cloudkms.viewer", "member": "user:carol@lotr.com"})
        return policy

    monkeypatch.setattr(iam, "get_policy", get_then_someone_writes)

    rec = remediate("kms_agent_binding_removed", f, p)

    assert rec.outcome is Outcome.REMEDIATED
    assert rec.attempts == 2 and "1 conflicting write" in rec.reason
    pol = live_policy(KEY)
    assert members(pol, "roles/cloudkms.viewer") == ["group:kms-admins@lotr.com", "user:carol@lotr.com"]
    assert members(pol, ROLE) == [AGENT, "user:alice@lotr.com"]
    assert [w["status"] for w in writes(standin)] == [409, 200]


@pytest.mark.integration
def test_endless_iam_conflicts_become_transient(standin: Any) -> None:
    seed_key(standin, policies={KEY: _key_policy()})
    standin.admin.fault("POST", r":setIamPolicy$", move_etag=True, count=None)
    f, p = finding_for("kms_agent_binding_removed", "key_setiam_remove_agent.json")

    with pytest.raises(TransientError, match="changed under us 3 time"):
        remediate("kms_agent_binding_removed", f, p, ctx(max_attempts=3))

    assert [w["status"] for w in writes(standin)] == [409, 409, 409]
    standin.admin.clear_faults()
    assert members(live_policy(KEY), ROLE) == ["user:alice@lotr.com"]


@pytest.mark.integration
def test_a_conflict_without_a_moved_etag_is_a_failed_record_not_an_endless_retry(standin: Any) -> None:
    # A 409 that is no race (the policy did not change) would repeat on every redelivery.
    seed_key(standin, policies={KEY: _key_policy()})
    standin.admin.fault("POST", r":setIamPolicy$", status=409, rpc_status="ABORTED", message="refused", count=None)
    f, p = finding_for("kms_agent_binding_removed", "key_setiam_remove_agent.json")

    rec = remediate("kms_agent_binding_removed", f, p, ctx(max_attempts=3))

    assert rec.outcome is Outcome.FAILED and rec.attempts == 1
    assert "has not changed since it was read" in rec.reason and "refused" in rec.reason
    assert [w["status"] for w in writes(standin)] == [409]
    assert members(live_policy(KEY), ROLE) == ["user:alice@lotr.com"]


@pytest.mark.integration
def test_agent_restore_dry_run_writes_nothing(standin: Any) -> None:
    seed_key(standin, policies={KEY: _key_policy()})
    f, p = finding_for("kms_agent_binding_removed", "key_setiam_remove_agent.json")

    rec = remediate("kms_agent_binding_removed", f, p, ctx(Mode.DRY_RUN))

    assert rec.outcome is Outcome.DRY_RUN
    assert rec.changes == [Change(f"bindings[{ROLE}].members", ["user:alice@lotr.com"], [AGENT, "user:alice@lotr.com"])]
    assert writes(standin) == []
    assert members(live_policy(KEY), ROLE) == ["user:alice@lotr.com"]


# ---------------------------------------------------------------------------
# Public or outside-domain member → strip exactly those.


@pytest.mark.integration
def test_public_member_is_stripped_from_a_key_ring(standin: Any) -> None:
    seed_key(standin, policies={RING: {"version": 3, "bindings": [
        {"role": ROLE, "members": ["allUsers", AGENT]},
        {"role": "roles/cloudkms.viewer", "members": ["user:alice@lotr.com"], "condition": CONDITION},
    ]}})
    f, p = finding_for("kms_public_member", "keyring_setiam_allusers.json")
    assert f.resource == RING

    rec = remediate("kms_public_member", f, p, ctx(action=Action.REVERT))

    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert rec.changes == [Change(f"bindings[{ROLE}].members", sorted(["allUsers", AGENT]), [AGENT])]
    pol = live_policy(RING)
    assert pol["version"] == 3
    assert members(pol, ROLE) == [AGENT]
    assert members(pol, "roles/cloudkms.viewer", CONDITION) == ["user:alice@lotr.com"]
    assert rec.undo.startswith(
        "gcloud kms keyrings add-iam-policy-binding test-keyring --location=us --project=test-project"
        f" --member=allUsers --role={ROLE} --condition=None"
    )

    again = remediate("kms_public_member", f, p, ctx(action=Action.REVERT))
    assert again.outcome is Outcome.ALREADY_COMPLIANT
    assert len(writes(standin)) == 1


@pytest.mark.integration
def test_outside_member_is_stripped_and_allowed_ones_kept(standin: Any) -> None:
    app_sa = "serviceAccount:app-service@test-project.iam.gserviceaccount.com"
    seed_key(standin, policies={KEY: {"version": 3, "bindings": [
        {"role": ROLE, "members": [app_sa, AGENT]},
        {"role": "roles/cloudkms.cryptoKeyDecrypter", "members": ["user:mallory@outside.example", "user:bob@lotr.com"]},
        {"role": "roles/cloudkms.cryptoKeyDecrypter", "members": ["user:mallory@outside.example"],
         "condition": CONDITION},
    ]}})
    f, p = finding_for("kms_public_member", "key_setiam_outside_user.json", allowed_domains=("lotr.com",))
    assert f.observed["members"] == [{"role": "roles/cloudkms.cryptoKeyDecrypter", "member": "user:mallory@outside.example"}]

    rec = remediate("kms_public_member", f, p, ctx(action=Action.REVERT))

    assert rec.outcome is Outcome.REMEDIATED
    pol = live_policy(KEY)
    assert members(pol, ROLE) == sorted([app_sa, AGENT])
    assert members(pol, "roles/cloudkms.cryptoKeyDecrypter") == ["user:bob@lotr.com"]
    assert members(pol, "roles/cloudkms.cryptoKeyDecrypter", CONDITION) == []  # a conditional grant is still a grant
    assert len(pol["bindings"]) == 2
    assert "--condition=" in rec.undo and "until-2030" in rec.undo


@pytest.mark.integration
def test_member_no_longer_outside_under_live_params_is_kept(standin: Any) -> None:
    seed_key(standin, policies={KEY: {"version": 1, "bindings": [
        {"role": "roles/cloudkms.cryptoKeyDecrypter", "members": ["user:mallory@outside.example"]},
    ]}})
    f, _ = finding_for("kms_public_member", "key_setiam_outside_user.json", allowed_domains=("lotr.com",))
    widened = rule_module("kms_public_member").Params(allowed_domains=("lotr.com", "outside.example"))

    rec = remediate("kms_public_member", f, widened, ctx(action=Action.REVERT))

    assert rec.outcome is Outcome.ALREADY_COMPLIANT
    assert writes(standin) == []


# ---------------------------------------------------------------------------
# Error classes: transient raises, permanent is recorded.


@pytest.mark.integration
@pytest.mark.parametrize("status", [429, 503, 500])
def test_transient_errors_raise(standin: Any, status: int) -> None:
    seed_key(standin, versions={"1": {"state": "DISABLED"}})
    standin.admin.fault("GET", r"/cryptoKeyVersions/1$", status=status)
    f, p = finding_for("kms_version_disabled", "version_disabled.json")

    with pytest.raises(TransientError):
        remediate("kms_version_disabled", f, p)

    assert writes(standin) == []
    assert len(standin.admin.requests("GET", r"/cryptoKeyVersions/1$")) == 1  # no client-side retry loop


@pytest.mark.integration
def test_transient_iam_error_raises(standin: Any) -> None:
    seed_key(standin, policies={KEY: _key_policy()})
    standin.admin.fault("POST", r":setIamPolicy$", status=503, rpc_status="UNAVAILABLE")
    f, p = finding_for("kms_agent_binding_removed", "key_setiam_remove_agent.json")

    with pytest.raises(TransientError):
        remediate("kms_agent_binding_removed", f, p)
    assert remediate("kms_agent_binding_removed", f, p).outcome is Outcome.REMEDIATED


@pytest.mark.integration
def test_permission_denied_is_a_failed_record(standin: Any) -> None:
    seed_key(standin, versions={"1": {"state": "DISABLED"}})
    standin.admin.fault("PATCH", r"/cryptoKeyVersions/1$", status=403, rpc_status="PERMISSION_DENIED",
                        message="Permission 'cloudkms.cryptoKeyVersions.update' denied")
    f, p = finding_for("kms_version_disabled", "version_disabled.json")

    rec = remediate("kms_version_disabled", f, p)

    assert rec.outcome is Outcome.FAILED
    assert "cloudkms.cryptoKeyVersions.update" in rec.reason and "Forbidden" in rec.reason
    assert live_state(V1) == "DISABLED"


@pytest.mark.integration
def test_permission_denied_on_iam_is_a_failed_record(standin: Any) -> None:
    seed_key(standin, policies={RING: {"bindings": [{"role": ROLE, "members": ["allUsers"]}]}})
    standin.admin.fault("GET", r":getIamPolicy$", status=403, rpc_status="PERMISSION_DENIED")
    f, p = finding_for("kms_public_member", "keyring_setiam_allusers.json")

    rec = remediate("kms_public_member", f, p, ctx(action=Action.REVERT))

    assert rec.outcome is Outcome.FAILED
    assert writes(standin) == []


@pytest.mark.integration
def test_state_moving_between_read_and_write_is_explained(standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from shared.actions import kms as kms_actions

    seed_key(standin, versions={"1": {"state": "DISABLED"}})
    f, p = finding_for("kms_version_disabled", "version_disabled.json")
    real_get = kms_actions._get_version
    calls = {"n": 0}

    def get_then_someone_destroys(name: str, c: ActionContext) -> Any:
        version = real_get(name, c)
        calls["n"] += 1
        if calls["n"] == 1:  # KMS versions have no etag: the write itself is refused (400 FAILED_PRECONDITION)
            standin.admin.mutate(V1, patch={"state": "DESTROY_SCHEDULED"})
        return version

    monkeypatch.setattr(kms_actions, "_get_version", get_then_someone_destroys)

    rec = remediate("kms_version_disabled", f, p)

    assert rec.outcome is Outcome.FAILED
    assert rec.reason.startswith(f"enabling version {V1} was refused (") and rec.reason.endswith("it is now DESTROY_SCHEDULED")
    assert rec.changes == [] and rec.undo == ""
    assert [w["status"] for w in writes(standin)] == [400]
    assert live_state(V1) == "DESTROY_SCHEDULED"


@pytest.mark.integration
@pytest.mark.parametrize(
    ("rule_id", "fixture", "action"),
    [
        ("kms_version_disabled", "version_disabled.json", Action.RESTORE),
        ("kms_version_destroy_scheduled", "version_destroy.json", Action.RESTORE),
        ("kms_agent_binding_removed", "key_setiam_remove_agent.json", Action.RESTORE),
        ("kms_public_member", "keyring_setiam_allusers.json", Action.REVERT),
    ],
)
def test_missing_resource_is_not_found(standin: Any, rule_id: str, fixture: str, action: Action) -> None:
    f, p = finding_for(rule_id, fixture)

    rec = remediate(rule_id, f, p, ctx(action=action))

    assert rec.outcome is Outcome.NOT_FOUND
    assert writes(standin) == []


# ---------------------------------------------------------------------------
# Alert-only rules: enrich with live facts.


@pytest.mark.integration
def test_rotation_enrich_reads_the_live_period(standin: Any) -> None:
    seed_key(standin)
    mod = rule_module("kms_rotation")
    f = Finding(
        rule="kms_rotation", severity=mod.RULE.severity, title=mod.RULE.title, resource=KEY,
        resource_type="kms.cryptoKey", project=PROJECT, location="us", principal="", action=Action.ALERT,
        event_id="e", method="UpdateCryptoKey", timestamp="", observed={},
    )

    facts = mod.enrich(f, mod.Params(), ctx(Mode.ALERT, Action.ALERT))

    assert facts == {"rotation_period_days_now": 90.0, "next_rotation_time": "2030-01-01T00:00:00Z"}
    assert not hasattr(mod, "remediate") and not hasattr(rule_module("kms_unapproved_location"), "remediate")


# ---------------------------------------------------------------------------
# Pure helpers.


def test_add_members_keeps_conditional_and_other_bindings() -> None:
    from shared.actions.iam import Grant, add_members

    live = _key_policy() | {"etag": "BwY="}
    new, changes, grants = add_members(ROLE, [AGENT, AGENT])(live)
    assert live == _key_policy() | {"etag": "BwY="}  # the read policy is not mutated
    assert new["etag"] == "BwY=" and new["version"] == 3
    assert new["bindings"][0] == {"role": ROLE, "members": ["user:alice@lotr.com", AGENT]}
    assert new["bindings"][1:] == _key_policy()["bindings"][1:]
    assert changes == [Change(f"bindings[{ROLE}].members", ["user:alice@lotr.com"], [AGENT, "user:alice@lotr.com"])]
    assert grants == [Grant(ROLE, AGENT)]
    assert add_members(ROLE, [AGENT])(new)[1:] == ([], [])


def test_remove_grants_drops_emptied_bindings_only() -> None:
    from shared.actions.iam import Grant, remove_grants

    live = {"version": 3, "bindings": [
        {"role": ROLE, "members": ["allUsers"]},
        {"role": ROLE, "members": ["allUsers", "user:a@lotr.com"], "condition": CONDITION},
        {"role": "roles/cloudkms.viewer", "members": ["allUsers"]},
    ]}
    flagged = remove_grants(lambda g: (g.role, g.member) == (ROLE, "allUsers"))
    new, changes, grants = flagged(live)
    assert new["bindings"] == [
        {"role": ROLE, "members": ["user:a@lotr.com"], "condition": CONDITION},
        {"role": "roles/cloudkms.viewer", "members": ["allUsers"]},  # not in the finding: left alone
    ]
    assert [c.field for c in changes] == [f"bindings[{ROLE}].members", f"bindings[{ROLE} if until-2030].members"]
    assert grants == [Grant(ROLE, "allUsers"), Grant.of(ROLE, "allUsers", CONDITION)]
    assert remove_grants(lambda g: False)(live)[1] == []


def test_undo_commands_are_exact_and_non_interactive() -> None:
    from shared.actions.iam import Grant
    from shared.actions.iam import undo as iam_undo
    from shared.actions.kms import version_undo

    cmd = iam_undo(KEY, "add", [Grant.of(ROLE, "user:o'neil@x.example", CONDITION), Grant(ROLE, "allUsers")])
    second, first = cmd.split(" && ")
    assert first.startswith(
        "gcloud kms keys add-iam-policy-binding test-key --keyring=test-keyring --location=us --project=test-project "
    )
    assert "--member='user:o'\"'\"'neil@x.example'" in first
    assert "--condition='expression=request.time < timestamp('\"'\"'2030-01-01T00:00:00Z'\"'\"'),title=until-2030'" in first
    assert second.startswith("gcloud kms keys add-iam-policy-binding test-key") and "--member=allUsers" in second
    assert "--condition=None" in second and first.endswith("Rampart reverts the undo")
    comma = iam_undo(RING, "remove", [Grant.of(ROLE, "allUsers", {"title": "t", "expression": "a in [1, 2]"})])
    assert comma.startswith("gcloud kms keyrings remove-iam-policy-binding test-keyring --location=us")
    assert "--condition='^;^expression=a in [1, 2];title=t'" in comma
    assert iam_undo(KEY, "add", []) == ""
    assert version_undo(V1, "disable", "destroy").startswith(
        "gcloud kms keys versions disable 1 --key=test-key --keyring=test-keyring --location=us --project=test-project"
        " && gcloud kms keys versions destroy 1 --key=test-key"
    )


def test_time_left_reads_plainly() -> None:
    from shared.actions.kms import _time_left

    assert _time_left(1000 + 90061, 1000) == {"seconds_left": 90061, "time_left": "1d 1h 1m"}
    assert _time_left(1000, 1000 + 7200) == {"seconds_left": 0, "time_left": "window closed 2h 0m ago"}


def test_kms_actions_imports_no_google_library() -> None:
    import subprocess
    import sys

    code = (  # `google` and `google.cloud` are namespace stubs that site .pth files load at start-up
        "import sys; before = set(sys.modules);"
        "import shared.actions.kms, functions.kms_version_disabled, functions.kms_version_destroy_scheduled,"
        " functions.kms_agent_binding_removed, functions.kms_public_member, functions.kms_rotation;"
        "print(sorted(m for m in set(sys.modules) - before if m.startswith('google')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.stdout.strip() == "[]"


@pytest.mark.integration
def test_pipeline_act_remediates_then_enriches_the_alert(standin: Any) -> None:
    from shared.pipeline import act
    from tests.helpers import default_policy

    key = f"projects/{PROJECT}/locations/us-central1/keyRings/test-keyring/cryptoKeys/test-key"
    seed_key(standin, location="us-central1", versions={"1": {"state": "DISABLED"}},
             services=[_service("claims", "us-central1", key)])
    loaded = default_policy()
    settings = loaded.settings("kms_version_disabled")
    f = rule_module("kms_version_disabled").RULE.evaluate(
        parse(load_json(DATA / "version_disabled_us_central1.json")), settings.params
    )

    rec = act(f, settings, loaded)

    assert rec.outcome is Outcome.REMEDIATED and rec.mode is Mode.ENFORCE
    assert rec.after["state"] == "ENABLED"
    assert rec.after["context"]["state_now"] == "ENABLED"
    assert rec.after["context"]["dependents"] == [{"service": f"projects/{PROJECT}/locations/us-central1/services/claims"}]
    assert rec.to_dict()["undo"].startswith("gcloud kms keys versions disable 1 --key=test-key")


def test_granting_the_agent_is_not_a_finding() -> None:
    # The real corpus grant of a Google service agent: neither IAM rule fires, so nothing is remediated.
    event = parse(load_json(DATA / "key_setiam_gcs_agent.json"))
    for rule_id, params in (("kms_agent_binding_removed", {}), ("kms_public_member", {"allowed_domains": ("lotr.com",)})):
        mod = rule_module(rule_id)
        assert mod.RULE.evaluate(event, mod.Params(**params)) is None, rule_id

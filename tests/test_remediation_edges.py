"""Edges of remediation that small mutations of the core slipped past (issue 18 item 1), checked
through public entry points only (the pipeline, the CLI, live state in the stand-in), so that
they hold whatever shape the actions take inside:

- release refuses over a public grant made since the quarantine, not only over a removed one
  granted again;
- release that gave the grants back, then lost a race on the service write, does not take its
  own grants for someone else's drift on the retry (a half-done release: IAM back, ingress shut);
- a refused KMS re-enable after a restore keeps the restore on the record;
- the destroy rule reads version states as enum numbers (3 DESTROYED, 4 DESTROY_SCHEDULED);
- a version still reading DESTROY_SCHEDULED whose destroy time has passed is not restored.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import time
from collections.abc import Iterator
from typing import Any

import pytest

from shared import cli, clients, log, quarantine_store
from shared.config import parse_policy
from shared.event import parse
from shared.model import Outcome
from shared.pipeline import Pipeline, evaluate, triage
from shared.quarantine_store import MemoryRecords
from tests.helpers import ROOT, default_policy, load_json

pytestmark = pytest.mark.integration

DATA = ROOT / "tests" / "data"
CRM = "projects/power-choosers-crm/locations/us-south1/services/power-choosers-crm"
CRM_ENTRY = DATA / "run" / "powerchoosers-replaceservice-invoker-iam-disabled-success.json"
DEFAULT_SA = "792458658491-compute@developer.gserviceaccount.com"
INVOKER = "roles/run.invoker"
KEY = "projects/test-project/locations/us/keyRings/test-keyring/cryptoKeys/test-key"
V1 = f"{KEY}/cryptoKeyVersions/1"


class Pinned:
    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded

    def current(self) -> Any:
        return self.loaded


def _handle(policy_yaml: str, entry: dict[str, Any]) -> list[Any]:
    """The pipeline on one entry under `policy_yaml`: its records (no alert channels)."""
    pipeline = Pipeline(Pinned(parse_policy(policy_yaml, "edges-policy.yaml")), alert=False)
    with log.captured():
        return pipeline.handle(parse(entry)).records


# ---------------------------------------------------------------------------
# Quarantine, then release.

@pytest.fixture
def records() -> Iterator[MemoryRecords]:
    """Quarantine records in memory, shared by quarantine and release in this process (the
    deployed default is Rampart's Firestore database), as tests/test_run_actions.py keeps them."""
    store = MemoryRecords()
    quarantine_store.set_default(store)
    try:
        yield store
    finally:
        quarantine_store.set_default(None)


QUARANTINE_POLICY = """
default_mode: "off"
rules:
  run_default_service_account: {mode: enforce, action: quarantine}
"""


def _quarantined(standin: Any) -> None:
    standin.admin.seed({
        "services": [{"name": CRM, "ingress": "INGRESS_TRAFFIC_ALL", "invokerIamDisabled": True, "labels": {"team": "bots"},
                      "template": {"serviceAccount": DEFAULT_SA,
                                   "containers": [{"name": "app", "image": "us-docker.pkg.dev/cloudrun/container/hello"}]}}],
        "policies": {CRM: {"version": 3, "bindings": [
            {"role": INVOKER, "members": ["user:some.user@company.com", "allUsers"]},
            {"role": "roles/run.viewer", "members": ["allAuthenticatedUsers", "group:ops@company.com"]},
        ]}},
    })
    (rec,) = _handle(QUARANTINE_POLICY, load_json(CRM_ENTRY))
    assert rec.outcome is Outcome.QUARANTINED, rec.reason
    svc, pol = _live(standin)
    assert svc["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY" and _public(pol) == []
    standin.admin.clear_requests()


def _owner_fixes_the_service_account(standin: Any) -> None:
    """What the owner does before a release (release refuses while the quarantining rule would
    still flag the service, issue 14): a dedicated service account. No writes are logged."""
    standin.admin.mutate(CRM, patch={"template": {"serviceAccount": "crm@power-choosers-crm.iam.gserviceaccount.com"}})
    standin.admin.clear_requests()


def _live(standin: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    state = standin.admin.state()
    return next(s for s in state["services"] if s["name"] == CRM), state["policies"].get(CRM, {})


def _public(policy: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted((b["role"], m) for b in policy.get("bindings", []) for m in b.get("members", [])
                  if m in ("allUsers", "allAuthenticatedUsers"))


def _release(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.main(["release", CRM, *args], out=out)
    return rc, out.getvalue(), err.getvalue()


def _service_writes(standin: Any) -> list[dict[str, Any]]:
    return [r for r in standin.admin.requests(path=r"/services/[^/:]+$") if r["method"] in ("PATCH", "POST")]


def _iam_writes(standin: Any) -> list[dict[str, Any]]:
    return [r for r in standin.admin.requests(path=r":setIamPolicy$") if r["method"] == "POST"]


def test_release_refuses_over_a_public_grant_made_since_the_quarantine(standin: Any, records: MemoryRecords) -> None:
    """allAuthenticatedUsers on the invoker role was never there: quarantine did not remove it, so
    releasing would leave the service public on someone's new grant plus its old ones."""
    _quarantined(standin)
    _owner_fixes_the_service_account(standin)
    standin.admin.mutate(CRM, iam_add={"role": INVOKER, "member": "allAuthenticatedUsers"})
    standin.admin.clear_requests()

    rc, out, err = _release()

    assert rc != 0 and out == ""
    assert "release refused" in err and "allAuthenticatedUsers granted" in err and "bindings[roles/run.invoker]" in err
    assert _service_writes(standin) == [] and _iam_writes(standin) == [], "a refused release writes nothing"
    assert _live(standin)[0]["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"


def test_release_retrying_after_a_lost_service_write_is_not_stopped_by_its_own_grants(
    standin: Any, records: MemoryRecords
) -> None:
    """The grants go back first; the service write then meets a moved etag (someone else's write)
    and the release reads everything again. The grants it gave back are live now: they are its
    own, not drift, so the retry finishes the release instead of refusing half-way."""
    _quarantined(standin)
    _owner_fixes_the_service_account(standin)
    standin.admin.fault("PATCH", r"/services/power-choosers-crm$", move_etag=True, count=1)

    rc, out, err = _release()

    assert rc == 0, err
    assert out.startswith(f"released {CRM}")
    svc, pol = _live(standin)
    assert svc["ingress"] == "INGRESS_TRAFFIC_ALL" and svc["invokerIamDisabled"] is True
    assert "rampart-quarantine" not in svc["labels"]
    assert _public(pol) == [(INVOKER, "allUsers"), ("roles/run.viewer", "allAuthenticatedUsers")]
    assert len(_iam_writes(standin)) == 1, "the grants were given back once"
    assert len(_service_writes(standin)) == 2, "the service write was retried once after the conflict"


# ---------------------------------------------------------------------------
# KMS: restore, re-enable, destroy time.

KMS_POLICY = """
default_mode: "off"
rules:
  kms_version_destroy_scheduled: {mode: enforce}
"""


def _rfc3339(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat().replace("+00:00", "Z")


def _seed_version(standin: Any, **version: Any) -> None:
    ring = KEY.rsplit("/cryptoKeys/", 1)[0]
    standin.admin.seed({
        "keyRings": [{"name": ring}],
        "cryptoKeys": [{"name": KEY, "rotationPeriod": "7776000s", "nextRotationTime": "2030-01-01T00:00:00Z"}],
        "cryptoKeyVersions": [{"name": V1, **version}],
        "policies": {}, "services": [],
    })
    standin.admin.clear_requests()


def _version_writes(standin: Any) -> list[str]:
    return [r["path"].rsplit("/", 1)[1] for r in standin.admin.requests(path=r":restore$|/cryptoKeyVersions/\d+$")
            if r["method"] in ("PATCH", "POST")]


def _state() -> str:
    return clients.kms().get_crypto_key_version(name=V1).state.name


def _log_enabled_before_the_destroy(standin: Any, destroy: dict[str, Any]) -> None:
    """Cloud Logging's history of V1: set ENABLED, then the destroy. Since issue 14 the rule
    re-enables a restored version only when this history shows it ENABLED just before."""
    from infra.local import scenario

    enabled = scenario.kms_update_version("ENABLED", version=V1)
    enabled["timestamp"] = "2025-12-01T00:00:00Z"
    enabled["logName"] = "projects/test-project/logs/cloudaudit.googleapis.com%2Factivity"
    standin.admin.log_entries([enabled, destroy])


def test_a_refused_reenable_keeps_the_restore_on_the_record(standin: Any) -> None:
    _seed_version(standin, state="DESTROY_SCHEDULED", destroyTime=_rfc3339(time.time() + 86400))
    destroy = load_json(DATA / "kms" / "version_destroy.json")
    _log_enabled_before_the_destroy(standin, destroy)
    standin.admin.fault("PATCH", r"/cryptoKeyVersions/1$", status=400, rpc_status="FAILED_PRECONDITION",
                        message="refused", count=1)

    (rec,) = _handle(KMS_POLICY, destroy)

    assert rec.outcome is Outcome.FAILED and "refused" in rec.reason
    assert _state() == "DISABLED", "the restore went through"
    assert [(c.field, c.before, c.after) for c in rec.changes] == [("state", "DESTROY_SCHEDULED", "DISABLED")], (
        "the record must say what Rampart changed: the restore happened"
    )
    assert "gcloud kms keys versions destroy 1" in rec.undo
    assert _version_writes(standin) == ["1:restore", "1"]


def test_a_version_past_its_destroy_time_is_not_restored(standin: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API can still read DESTROY_SCHEDULED for a moment after destroyTime (the destruction
    runs after it): Rampart's clock says the window is closed, so it does not write."""
    destroy_at = time.time() + 3600
    _seed_version(standin, state="DESTROY_SCHEDULED", destroyTime=_rfc3339(destroy_at))
    from shared import actions

    real = actions.ActionContext
    monkeypatch.setattr(actions, "ActionContext", lambda **kw: real(**{**kw, "clock": lambda: destroy_at + 60}))

    (rec,) = _handle(KMS_POLICY, load_json(DATA / "kms" / "version_destroy.json"))

    assert rec.outcome is Outcome.FAILED
    assert rec.reason.startswith(f"version {V1} was destroyed at ") and rec.reason.endswith("nothing can be restored")
    assert rec.changes == [] and _version_writes(standin) == []
    assert _state() == "DESTROY_SCHEDULED"


# ---------------------------------------------------------------------------
# The destroy rule and enum numbers (no server).


def _update_version_entry(state: Any) -> dict[str, Any]:
    entry = load_json(ROOT / "tests" / "rules" / "kms_version_disabled" / "positive_disabled.json")
    entry["protoPayload"]["request"]["cryptoKeyVersion"]["state"] = state
    return entry


def _fired(entry: dict[str, Any]) -> set[str]:
    event = parse(entry)
    t = triage(event)
    assert not isinstance(t, str), t
    return {f.rule for f, _ in evaluate(event, t, default_policy())}


@pytest.mark.parametrize("state", [3, 4, "DESTROYED", "DESTROY_SCHEDULED"])
def test_update_to_a_destroy_state_fires_the_destroy_rule_by_name_or_number(state: Any) -> None:
    assert "kms_version_destroy_scheduled" in _fired(_update_version_entry(state))


@pytest.mark.parametrize("state", [1, 2, "ENABLED", "DISABLED", 0, 5])
def test_update_to_another_state_does_not(state: Any) -> None:
    assert "kms_version_destroy_scheduled" not in _fired(_update_version_entry(state))


def test_the_fixture_is_an_update_with_a_state() -> None:
    entry = _update_version_entry("DISABLED")
    assert entry["protoPayload"]["methodName"].endswith("UpdateCryptoKeyVersion")
    assert _fired(entry) >= {"kms_version_disabled"}

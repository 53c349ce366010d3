"""A detached Cloud Armor policy attached again, end to end against the stand-in: the detach entry
confirmed through Cloud Logging (the stand-in's entries.list, real google-cloud-logging client),
the policy taken from Cloud Logging's history of the backend, the backend read and written over
REST (compute.v1.json shapes), through the pipeline's act() in enforce and dry-run modes.

Fixtures: tests/rules/armor_policy_detached (their `_source` gives the provenance: request bodies
from compute.v1.json, entry shape as the corpus compute entries show)."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import pytest

import functions
from functions.armor_policy_detached import COMPUTE_ENDPOINT_ENV
from shared import clients, principals
from shared.config import parse_policy
from shared.event import parse
from shared.model import Action, ActionRecord, Mode, Outcome
from tests.helpers import RULE_FIXTURES, default_policy, load_json
from tests.support.fixtures_standin import Standin

pytestmark = pytest.mark.integration

POLICY = default_policy()
RULE = functions.rule("armor_policy_detached")
BACKEND = "projects/phi-prod/global/backendServices/phi-api-backend"
REGIONAL = "projects/phi-prod/regions/us-east4/backendServices/phi-internal-backend"
LINK = "https://www.googleapis.com/compute/v1/"
EDGE = f"{LINK}projects/phi-prod/global/securityPolicies/phi-edge"


@pytest.fixture
def compute(standin: Standin, monkeypatch: pytest.MonkeyPatch) -> Standin:
    monkeypatch.setenv(COMPUTE_ENDPOINT_ENV, standin.url)
    clients.reset()
    return standin


def _entry(name: str, insert_id: str, timestamp: str, **request: Any) -> dict[str, Any]:
    e = copy.deepcopy(load_json(RULE_FIXTURES / "armor_policy_detached" / name))
    e["insertId"], e["timestamp"] = insert_id, timestamp
    e["protoPayload"]["request"].update(request)
    return e


def _detach(**over: Any) -> dict[str, Any]:
    return _entry("positive_detached.json", "armor-detach", "2026-11-30T10:00:00.000000Z", **over)


def _attach(policy: str = EDGE, when: str = "2026-11-30T09:00:00.000000Z", insert_id: str = "armor-attach") -> dict[str, Any]:
    return _entry("negative_attached.json", insert_id, when, securityPolicy=policy)


def _seed(standin: Standin, name: str = BACKEND, **fields: Any) -> None:
    standin.admin.seed({"backendServices": [{"name": name, "backends": [], **fields}]})


def _act(entry: dict[str, Any], mode: Mode = Mode.ENFORCE) -> ActionRecord:
    from shared.pipeline import act

    params = POLICY.settings(RULE.id).params
    f = RULE.evaluate(parse(entry), params)
    assert f is not None
    settings = dataclasses.replace(POLICY.settings(RULE.id), mode=mode, action=Action.REVERT)
    return act(f, settings, POLICY)


def _writes(standin: Standin) -> list[dict[str, Any]]:
    return [r for r in standin.admin.requests(method="POST") if r["path"].endswith("/setSecurityPolicy")]


def _live(name: str = BACKEND) -> dict[str, Any]:
    from shared.actions import rest_call

    return rest_call(clients.rest(COMPUTE_ENDPOINT_ENV, ""), "GET", f"compute/v1/{name}", 5)


def test_the_policy_cloud_logging_shows_before_the_detach_is_attached_again(compute: Standin) -> None:
    _seed(compute)
    older = f"{LINK}projects/phi-prod/global/securityPolicies/old-waf"
    compute.admin.log_entries([_attach(older, "2026-11-29T09:00:00.000000Z", "armor-attach-old"), _attach(), _detach()])
    record = _act(_detach())
    assert record.outcome is Outcome.REMEDIATED, record.reason
    assert [(c.field, c.before, c.after) for c in record.changes] == [("securityPolicy", "(none)", EDGE)]
    assert "entry armor-attach" in record.reason and "--security-policy=''" in record.undo
    assert record.before["fingerprint"] and record.after["fingerprint"] != record.before["fingerprint"]
    (write,) = _writes(compute)
    assert write["path"] == f"/compute/v1/{BACKEND}/setSecurityPolicy"
    assert _live()["securityPolicy"] == EDGE


def test_a_regional_backend_gets_its_regional_policy_back(compute: Standin) -> None:
    _seed(compute, REGIONAL)
    regional = f"{LINK}projects/phi-prod/regions/us-east4/securityPolicies/internal-waf"
    detach = _entry("positive_detached_regional.json", "armor-detach-r", "2026-11-30T10:00:00.000000Z")
    attach = _entry("positive_detached_regional.json", "armor-attach-r", "2026-11-30T08:00:00.000000Z", securityPolicy=regional)
    compute.admin.log_entries([attach, detach])
    record = _act(detach)
    assert record.outcome is Outcome.REMEDIATED, record.reason
    assert _live(REGIONAL)["securityPolicy"] == regional and "--region=us-east4" in record.undo


def test_a_forged_detach_cloud_logging_does_not_hold_writes_nothing(compute: Standin) -> None:
    _seed(compute)
    compute.admin.log_entries([_attach()])  # a real attach, but the detach handed in is not in Cloud Logging
    record = _act(_detach())
    assert record.outcome is Outcome.FAILED and "not confirmed in Cloud Logging" in record.reason
    assert _writes(compute) == [] and "securityPolicy" not in _live()


def test_a_delivered_entry_that_differs_from_cloud_loggings_copy_writes_nothing(compute: Standin) -> None:
    _seed(compute)
    held = _detach()
    held["protoPayload"]["authenticationInfo"]["principalEmail"] = "someone-else@example.com"
    compute.admin.log_entries([_attach(), held])
    record = _act(_detach())
    assert record.outcome is Outcome.FAILED and "does not match" in record.reason and _writes(compute) == []


def test_a_backend_with_a_policy_again_is_not_touched(compute: Standin) -> None:
    other = f"{LINK}projects/phi-prod/global/securityPolicies/new-waf"
    _seed(compute, securityPolicy=other)
    compute.admin.log_entries([_attach(), _detach()])
    record = _act(_detach())
    assert record.outcome is Outcome.ALREADY_COMPLIANT and _writes(compute) == []
    assert _live()["securityPolicy"] == other
    assert not compute.admin.requests(path="entries:list"), "a compliant backend needs no Cloud Logging lookup"


def test_no_earlier_attach_in_cloud_logging_means_no_guess(compute: Standin) -> None:
    _seed(compute)
    compute.admin.log_entries([_detach()])
    record = _act(_detach())
    assert record.outcome is Outcome.FAILED and "no earlier setSecurityPolicy" in record.reason
    assert _writes(compute) == []


@pytest.mark.parametrize("policy", [
    f"{LINK}projects/attacker-project/global/securityPolicies/allow-all",  # another project
    f"{LINK}projects/phi-prod/regions/us-east4/securityPolicies/phi-edge",  # another scope
    "https://evil.example/compute/v1/projects/phi-prod/global/securityPolicies/phi-edge",  # another host
    f"{LINK}projects/phi-prod/global/securityPolicies/phi-edge?x=1",
])
def test_an_earlier_policy_outside_the_backends_project_and_scope_is_not_attached(compute: Standin, policy: str) -> None:
    _seed(compute)
    compute.admin.log_entries([_attach(policy), _detach()])
    record = _act(_detach())
    assert record.outcome is Outcome.FAILED and "own project and scope" in record.reason
    assert policy not in record.reason and _writes(compute) == []


def test_dry_run_says_what_it_would_attach_and_writes_nothing(compute: Standin) -> None:
    _seed(compute)
    compute.admin.log_entries([_attach(), _detach()])
    record = _act(_detach(), Mode.DRY_RUN)
    assert record.outcome is Outcome.DRY_RUN and record.after["security_policy"] == EDGE
    assert _writes(compute) == [] and "securityPolicy" not in _live()


def test_rule_changes_inside_a_policy_stay_alert_only(compute: Standin) -> None:
    record = _act(load_json(RULE_FIXTURES / "armor_policy_detached" / "positive_rule_removed.json"))
    assert record.outcome is Outcome.ALERTED and "a human decides" in record.reason
    assert _writes(compute) == []


def test_the_shipped_policy_alerts_only(compute: Standin) -> None:
    from shared.pipeline import act

    _seed(compute)
    compute.admin.log_entries([_attach(), _detach()])
    f = RULE.evaluate(parse(_detach()), POLICY.settings(RULE.id).params)
    assert f is not None
    record = act(f, POLICY.settings(RULE.id), POLICY)
    assert POLICY.settings(RULE.id).mode is Mode.ALERT and record.outcome is Outcome.ALERTED
    assert _writes(compute) == []


def test_rampart_never_acts_on_its_own_changes(compute: Standin, monkeypatch: pytest.MonkeyPatch) -> None:
    """Its own attach is no finding; a detach by its own account is alerted, never acted on."""
    own = "rampart-act-run@phi-prod.iam.gserviceaccount.com"
    monkeypatch.setenv(principals.OWN_PRINCIPALS_ENV, own)
    principals.reset()
    try:
        _seed(compute)
        attach, detach = _attach(), _detach()
        for e in (attach, detach):
            e["protoPayload"]["authenticationInfo"]["principalEmail"] = own
        compute.admin.log_entries([attach, detach])
        pipeline = _pipeline("    mode: enforce\n    action: revert\n")
        assert pipeline.handle(parse(attach), only=RULE.id).findings == []
        (record,) = pipeline.handle(parse(detach), only=RULE.id).records
        assert record.outcome is Outcome.ALERTED and principals.IGNORED_VIOLATION in record.reason
        assert _writes(compute) == []
    finally:
        principals.reset()


def _pipeline(rule_yaml: str) -> Any:
    from shared.alerts.dedupe import MemoryStore
    from shared.pipeline import Pipeline

    loaded = parse_policy(f"version: 1\ndefault_mode: alert\nrules:\n  armor_policy_detached:\n{rule_yaml}")

    class Pinned:
        def current(self) -> Any:
            return loaded

    return Pipeline(Pinned(), alert=False, dedupe=MemoryStore())  # type: ignore[arg-type]


def test_the_pipeline_in_enforce_mode_reverts_a_delivered_detach(compute: Standin) -> None:
    _seed(compute)
    compute.admin.log_entries([_attach(), _detach()])
    (record,) = _pipeline("    mode: enforce\n    action: revert\n").handle(parse(_detach())).records
    assert record.outcome is Outcome.REMEDIATED and _live()["securityPolicy"] == EDGE and len(_writes(compute)) == 1


def test_enforce_without_action_revert_only_alerts(compute: Standin) -> None:
    _seed(compute)
    compute.admin.log_entries([_attach(), _detach()])
    (record,) = _pipeline("    mode: enforce\n").handle(parse(_detach())).records
    assert record.outcome is Outcome.ALERTED and _writes(compute) == []


def test_an_exempt_backend_is_left_detached(compute: Standin) -> None:
    _seed(compute)
    compute.admin.log_entries([_attach(), _detach()])
    pipeline = _pipeline("    mode: enforce\n    action: revert\n    exemptions:\n      - resources: ['*/backendServices/phi-api-*']\n"
                         "        owner: netops@example.com\n        reason: load test\n        expires: 2099-01-01\n")
    (record,) = pipeline.handle(parse(_detach())).records
    assert record.outcome is Outcome.EXEMPT and _writes(compute) == [] and "securityPolicy" not in _live()

"""Org policy guardrails restored to their declared baseline: the Org Policy entries of
tests/rules/org_policy_relaxed through `RULE.evaluate` and `run_remediation`, against the
stand-in's Org Policy v2 over REST, down to the live policy read back."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import functions
from shared.actions import ActionContext, run_remediation
from shared.event import parse
from shared.model import Action, ActionRecord, Mode, Outcome
from tests.helpers import RULE_FIXTURES, default_policy, load_json
from tests.support.fixtures_standin import Standin

pytestmark = pytest.mark.integration

RULE = functions.rule("org_policy_relaxed")
CMEK = {"rules": [{"values": {"deniedValues": ["run.googleapis.com", "cloudfunctions.googleapis.com"]}}]}
INGRESS = {"rules": [{"values": {"allowedValues": ["internal-and-cloud-load-balancing"]}}]}


def _act(fixture: str, mode: Mode = Mode.ENFORCE, **baseline: Any) -> ActionRecord:
    params = dataclasses.replace(default_policy().settings(RULE.id).params, baseline=baseline)
    f = RULE.evaluate(parse(load_json(RULE_FIXTURES / RULE.id / fixture)), params)
    assert f is not None
    return run_remediation(RULE.remediate, f, params, ActionContext(mode=mode, action=Action.RESTORE))


def _live(standin: Standin, name: str) -> dict[str, Any] | None:
    return next((p for p in standin.admin.state()["orgPolicies"] if p["name"] == name), None)


def test_a_deleted_guardrail_is_created_again_from_its_baseline(standin: Standin) -> None:
    standin.admin.seed({"projects": [{"name": "projects/phi-prod"}]})
    rec = _act("positive_v2_delete_restrict_non_cmek.json", **{"gcp.restrictNonCmekServices": CMEK})
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    live = _live(standin, "projects/phi-prod/policies/gcp.restrictNonCmekServices")
    assert live is not None and live["spec"]["rules"] == CMEK["rules"]
    again = _act("positive_v2_delete_restrict_non_cmek.json", **{"gcp.restrictNonCmekServices": CMEK})
    assert again.outcome is Outcome.ALREADY_COMPLIANT


def test_a_guardrail_of_a_project_named_policies_is_created_on_that_project(standin: Standin) -> None:
    """A project ID may be "policies": its policy's name is projects/policies/policies/C."""
    import json

    standin.admin.seed({"projects": [{"name": "projects/policies"}]})
    entry = json.loads(json.dumps(load_json(RULE_FIXTURES / RULE.id / "positive_v2_delete_restrict_non_cmek.json"))
                       .replace("projects/phi-prod/", "projects/policies/"))
    params = dataclasses.replace(default_policy().settings(RULE.id).params, baseline={"gcp.restrictNonCmekServices": CMEK})
    f = RULE.evaluate(parse(entry), params)
    assert f is not None and f.resource == "projects/policies/policies/gcp.restrictNonCmekServices"
    rec = run_remediation(RULE.remediate, f, params, ActionContext(mode=Mode.ENFORCE, action=Action.RESTORE))
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert [r["path"] for r in standin.admin.requests() if r["method"] == "POST"] == ["/v2/projects/policies/policies"]
    assert _live(standin, f.resource)["spec"]["rules"] == CMEK["rules"]  # type: ignore[index]
    assert rec.undo.startswith("gcloud org-policies reset gcp.restrictNonCmekServices --project=policies ")


def test_a_relaxed_guardrail_is_patched_back_with_its_etag(standin: Standin) -> None:
    name = "organizations/123456789012/policies/run.allowedIngress"
    standin.admin.seed({"orgPolicies": [{"name": name, "spec": {"rules": [{"allowAll": True}]}}]})
    rec = _act("positive_v2_update_allowed_ingress_allow_all.json", **{"run.allowedIngress": INGRESS})
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert _live(standin, name)["spec"]["rules"] == INGRESS["rules"]  # type: ignore[index]
    patch = [r for r in standin.admin.requests() if r["method"] == "PATCH"]
    assert len(patch) == 1 and '"etag"' in patch[0]["body"]


def test_without_a_baseline_nothing_is_written(standin: Standin) -> None:
    rec = _act("positive_v1_clear_domain_restriction.json")
    assert rec.outcome is Outcome.ALERTED and "no baseline" in rec.reason
    assert [r for r in standin.admin.requests() if r["method"] != "GET"] == []

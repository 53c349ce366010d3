"""IAM above the resource, end to end: real project SetIamPolicy entries (tests/rules, from the
corpus) through `RULE.evaluate` and `run_remediation`, with the real resourcemanager_v3 client
against the stand-in subprocess, down to the live project policy read back."""

from __future__ import annotations

import dataclasses
import importlib
import json
from typing import Any

import pytest

from shared import clients
from shared.actions import ActionContext, run_remediation
from shared.event import parse
from shared.model import Action, ActionRecord, Mode, Outcome
from tests.helpers import RULE_FIXTURES, default_policy, load_json
from tests.support.fixtures_standin import Standin

pytestmark = pytest.mark.integration

POLICY = default_policy()
AGENT = "serviceAccount:service-123456789@gs-project-accounts.iam.gserviceaccount.com"
EDR = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


def _act(rule_id: str, fixture: str, action: Action, **params: Any) -> ActionRecord:
    mod = importlib.import_module(f"functions.{rule_id}")
    p = dataclasses.replace(POLICY.settings(rule_id).params, **params)
    f = mod.RULE.evaluate(parse(load_json(RULE_FIXTURES / rule_id / fixture)), p)
    assert f is not None
    return run_remediation(mod.remediate, f, p, ActionContext(mode=Mode.ENFORCE, action=action))


def _bindings(name: str) -> list[tuple[str, list[str], str]]:
    pol = clients.projects().get_iam_policy(request={"resource": name, "options": {"requested_policy_version": 3}})
    return [(b.role, sorted(b.members), b.condition.expression) for b in pol.bindings]


def test_agent_regranted_only_under_a_condition_gets_its_unconditional_binding_back(standin: Standin) -> None:
    cond = {"title": "keep", "expression": 'request.time < timestamp("2000-01-01T00:00:00Z")'}
    standin.admin.seed({"projects": [{"name": "projects/1234"}],
                        "policies": {"projects/1234": {"version": 3, "bindings": [
                            {"role": EDR, "members": [AGENT], "condition": cond},
                            {"role": "roles/viewer", "members": ["user:test-user@example.com"]}]}}})
    rec = _act("iam_agent_binding_removed", "positive_readded_under_false_condition.json", Action.RESTORE)
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert sorted(_bindings("projects/1234")) == sorted([
        (EDR, [AGENT], cond["expression"]), ("roles/viewer", ["user:test-user@example.com"], ""), (EDR, [AGENT], ""),
    ])
    assert rec.undo.startswith("gcloud projects remove-iam-policy-binding 1234 --member=")
    again = _act("iam_agent_binding_removed", "positive_readded_under_false_condition.json", Action.RESTORE)
    assert again.outcome is Outcome.ALREADY_COMPLIANT


def test_outsiders_stripped_from_the_project_insiders_and_conditions_kept(standin: Standin) -> None:
    cond = {"title": "Acces temporaire Cloud Run", "expression": 'request.time < timestamp("2025-11-09T14:08:00Z")'}
    standin.admin.seed({"projects": [{"name": "projects/tp3partie1et2"}],
                        "policies": {"projects/tp3partie1et2": {"version": 3, "bindings": [
                            {"role": "roles/run.admin", "members": ["user:collaborateur0013@gmail.com"], "condition": cond},
                            {"role": "roles/owner", "members": ["user:prof@univ.example"]}]}}})
    rec = _act("iam_outsider_member", "positive_project_conditional_run_admin.json", Action.REVERT,
               trusted_domains=("univ.example",))
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert _bindings("projects/tp3partie1et2") == [("roles/owner", ["user:prof@univ.example"], "")]
    assert "--condition=" in rec.undo and "collaborateur0013@gmail.com" in rec.undo


@pytest.mark.parametrize("collection", ["jobs", "workerPools"])
def test_outsider_stripped_from_a_job_or_worker_pool_and_insiders_kept(standin: Standin, collection: str) -> None:
    job = f"projects/phi-prod/locations/us-east4/{collection}/etl"
    standin.admin.seed({collection: [{"name": job}], "policies": {job: {"bindings": [
        {"role": "roles/run.invoker", "members": ["user:contractor@partner.example", "user:ops@phi.example"]},
        {"role": "roles/run.developer", "members": ["user:contractor@partner.example"]}]}}})
    entry = load_json(RULE_FIXTURES / "iam_outsider_member" / "positive_job_outside_user.json")
    if collection == "workerPools":  # the same grant on a worker pool
        entry = json.loads(json.dumps(entry).replace("/jobs/etl", "/workerPools/etl"))
    mod = importlib.import_module("functions.iam_outsider_member")
    p = dataclasses.replace(POLICY.settings(mod.RULE.id).params, trusted_domains=("phi.example",))
    f = mod.RULE.evaluate(parse(entry), p)
    assert f is not None and f.resource == job
    rec = run_remediation(mod.remediate, f, p, ActionContext(mode=Mode.ENFORCE, action=Action.REVERT))
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    iam_client = clients.run_jobs() if collection == "jobs" else clients.run_worker_pools()
    pol = iam_client.get_iam_policy(request={"resource": job, "options": {"requested_policy_version": 3}})
    # Only the flagged grant went: the same outsider's other role is left to a later entry or the sweep.
    assert sorted((b.role, sorted(b.members)) for b in pol.bindings) == [
        ("roles/run.developer", ["user:contractor@partner.example"]), ("roles/run.invoker", ["user:ops@phi.example"])]
    group = "run jobs" if collection == "jobs" else "beta run worker-pools"
    assert rec.undo.startswith(f"gcloud {group} add-iam-policy-binding etl --region=us-east4 --project=phi-prod"
                               " --member=user:contractor@partner.example --role=roles/run.invoker")


def test_an_outsider_on_a_cloud_run_service_is_stripped_and_allusers_left_to_its_own_rule(standin: Standin) -> None:
    import importlib

    from shared.views.iam import from_live

    svc = "projects/demo-project/locations/us-central1/services/patient-api"
    standin.seed_example()
    standin.admin.seed({"policies": {svc: {"bindings": [
        {"role": "roles/run.invoker", "members": ["allUsers", "user:mallory@gmail.com", "user:doc@demo-project.example"]}]}}})
    mod = importlib.import_module("functions.iam_outsider_member")
    params = dataclasses.replace(POLICY.settings(mod.RULE.id).params, trusted_domains=("demo-project.example",))
    f = mod.check(from_live(svc, clients.run_services().get_iam_policy(request={"resource": svc})), params)
    assert f is not None and [g["member"] for g in f.observed["outsiders"]] == ["user:mallory@gmail.com"]
    rec = run_remediation(mod.remediate, f, params, ActionContext(mode=Mode.ENFORCE, action=Action.REVERT))
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    pol = clients.run_services().get_iam_policy(request={"resource": svc})
    assert [sorted(b.members) for b in pol.bindings] == [["allUsers", "user:doc@demo-project.example"]]
    assert rec.undo.startswith("gcloud run services add-iam-policy-binding patient-api --region=us-central1")

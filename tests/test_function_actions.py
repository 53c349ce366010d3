"""Cloud Run function remediation end to end: the corpus's real UpdateFunction entry (tests/rules)
through `RULE.evaluate` and `run_remediation(remediate, ...)`, over REST (as Rampart calls the
Cloud Functions API) against the stand-in subprocess, down to the live function and its Cloud Run service read back."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from shared import clients
from shared.actions import ActionContext, run_remediation
from shared.event import parse
from shared.model import Action, ActionRecord, Finding, Mode, Outcome
from tests.helpers import RULE_FIXTURES, load_json
from tests.support.fixtures_standin import Standin

pytestmark = pytest.mark.integration

FN = "projects/mybazaar-c4881/locations/us-central1/functions/loginWithPin"
SVC = "projects/mybazaar-c4881/locations/us-central1/services/loginwithpin"


def fns(method: str, path: str, **kw: Any) -> Any:
    from shared.actions import rest_call

    return rest_call(clients.functions_rest(), method, f"v2/{path}", 5.0, **kw)


def _finding(rule_id: str, fixture: str) -> tuple[Any, Finding, Any]:
    mod = importlib.import_module(f"functions.{rule_id}")
    params = mod.Params()
    f = mod.RULE.evaluate(parse(load_json(RULE_FIXTURES / rule_id / fixture)), params)
    assert f is not None and f.resource == FN
    return mod, f, params


def _act(rule_id: str, fixture: str, mode: Mode = Mode.ENFORCE) -> ActionRecord:
    mod, f, params = _finding(rule_id, fixture)
    return run_remediation(mod.remediate, f, params, ActionContext(mode=mode, action=Action.REVERT))


@pytest.fixture
def deployed(standin: Standin) -> Standin:
    """loginWithPin as the corpus entry shows it: deployed with the defaults (ingress ALLOW_ALL)."""
    standin.admin.seed({
        "services": [{"name": SVC, "ingress": "INGRESS_TRAFFIC_ALL"}],
        "functions": [{"name": FN, "serviceConfig": {"service": SVC, "ingressSettings": "ALLOW_ALL"},
                       "buildConfig": {"runtime": "nodejs22", "entryPoint": "loginWithPin"}}],
        "policies": {FN: {"bindings": [{"role": "roles/cloudfunctions.invoker", "members": ["allUsers", "user:weschen@mybazaar.my"]}]}},
    })
    return standin


def test_ingress_reverted_through_the_functions_api_with_a_one_field_mask(deployed: Standin) -> None:
    rec = _act("function_ingress_open", "positive_mybazaar_update_allow_all.json")
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert [(c.field, c.before, c.after) for c in rec.changes] == [("serviceConfig.ingressSettings", "ALLOW_ALL", "ALLOW_INTERNAL_AND_GCLB")]
    assert "--ingress-settings=all" in rec.undo
    fn = fns("GET", FN)
    assert fn["serviceConfig"]["ingressSettings"] == "ALLOW_INTERNAL_AND_GCLB"
    assert fn["buildConfig"]["entryPoint"] == "loginWithPin"  # nothing else touched
    svc = next(s for s in deployed.admin.state()["services"] if s["name"] == SVC)
    assert svc["ingress"] == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"  # the service follows its function
    patches = [r for r in deployed.admin.requests() if r["method"] == "PATCH"]
    assert len(patches) == 1 and "updateMask=serviceConfig.ingressSettings" in patches[0]["query"]
    # A redelivery finds the work done and writes nothing.
    again = _act("function_ingress_open", "positive_mybazaar_update_allow_all.json")
    assert again.outcome is Outcome.ALREADY_COMPLIANT
    assert len([r for r in deployed.admin.requests() if r["method"] == "PATCH"]) == 1


def test_ingress_dry_run_writes_nothing(deployed: Standin) -> None:
    rec = _act("function_ingress_open", "positive_mybazaar_update_allow_all.json", Mode.DRY_RUN)
    assert rec.outcome is Outcome.DRY_RUN and rec.changes[0].after == "ALLOW_INTERNAL_AND_GCLB"
    assert not [r for r in deployed.admin.requests() if r["method"] != "GET"]


def test_a_deleted_function_is_not_found(standin: Standin) -> None:
    rec = _act("function_ingress_open", "positive_mybazaar_update_allow_all.json")
    assert rec.outcome is Outcome.NOT_FOUND


def test_public_invoker_stripped_and_nothing_else(deployed: Standin) -> None:
    mod = importlib.import_module("functions.function_public_invoker")
    view = mod.POLICY.from_live(FN, fns("GET", f"{FN}:getIamPolicy"))
    f = mod.check(view, mod.Params())
    assert f is not None
    rec = run_remediation(mod.remediate, f, mod.Params(), ActionContext(mode=Mode.ENFORCE, action=Action.REVERT))
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    pol = fns("GET", f"{FN}:getIamPolicy")
    assert [b["members"] for b in pol["bindings"]] == [["user:weschen@mybazaar.my"]]
    assert rec.undo.startswith("gcloud functions add-iam-policy-binding loginWithPin --region=us-central1")

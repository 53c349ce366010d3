"""The Cloud Armor alert says whether the detached backend fronts Cloud Run: the enrichment
reads the backend service and its NEGs from the stand-in's Compute API (compute.v1.json shapes),
through Rampart's own REST session, and the pipeline puts the answer on the alert's record."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

import functions
from functions.armor_policy_detached import COMPUTE_ENDPOINT_ENV, MAX_NEGS
from shared import clients
from shared.event import parse
from shared.model import Action, Finding, Mode
from tests.helpers import RULE_FIXTURES, default_policy, load_json
from tests.support.fixtures_standin import Standin

POLICY = default_policy()
RULE = functions.rule("armor_policy_detached")
BACKEND = "projects/phi-prod/global/backendServices/phi-api-backend"  # the fixture's resource
LINK = "https://www.googleapis.com/compute/v1/"
RUN_NEG = "projects/phi-prod/regions/us-east4/networkEndpointGroups/phi-api-neg"
VM_NEG = "projects/phi-prod/zones/us-east4-a/networkEndpointGroups/vm-neg"


@pytest.fixture
def compute(standin: Standin, monkeypatch: pytest.MonkeyPatch) -> Standin:
    monkeypatch.setenv(COMPUTE_ENDPOINT_ENV, standin.url)
    clients.reset()
    return standin


def _finding(name: str = "positive_detached.json") -> Finding:
    f = RULE.evaluate(parse(load_json(RULE_FIXTURES / "armor_policy_detached" / name)), POLICY.settings(RULE.id).params)
    assert f is not None
    return f


def _enrich(f: Finding, timeout: float = 5.0) -> dict[str, Any]:
    from shared.actions import ActionContext

    assert RULE.enrich is not None
    return RULE.enrich(f, POLICY.settings(RULE.id).params, ActionContext(mode=Mode.ALERT, action=Action.ALERT,
                                                                         operation_timeout=timeout))


def _seed(standin: Standin, *groups: str, negs: list[dict[str, Any]] | None = None) -> None:
    standin.admin.seed({
        "networkEndpointGroups": negs if negs is not None else [
            {"name": RUN_NEG, "networkEndpointType": "SERVERLESS", "region": "us-east4", "cloudRun": {"service": "phi-api"}},
            {"name": VM_NEG, "networkEndpointType": "GCE_VM_IP_PORT", "zone": "us-east4-a"},
        ],
        "backendServices": [{"name": BACKEND, "backends": [{"group": g} for g in groups]}],
    })


def test_a_backend_that_fronts_a_cloud_run_serverless_neg_says_so(compute: Standin) -> None:
    _seed(compute, LINK + RUN_NEG, LINK + VM_NEG)
    facts = _enrich(_finding())
    assert facts == {"fronts_cloud_run": True, "cloud_run": [{"neg": RUN_NEG, "service": "phi-api", "url_mask": ""}],
                     "backends": 2, "negs": 2}
    reads = [r["path"] for r in compute.admin.requests(method="GET") if "/compute/v1/" in r["path"]]
    assert reads == [f"/compute/v1/{BACKEND}", f"/compute/v1/{RUN_NEG}", f"/compute/v1/{VM_NEG}"]


def test_a_backend_of_instance_groups_and_vm_negs_is_still_alerted_and_says_no(compute: Standin) -> None:
    _seed(compute, LINK + "projects/phi-prod/zones/us-east4-a/instanceGroups/web", LINK + VM_NEG)
    facts = _enrich(_finding())
    assert facts == {"fronts_cloud_run": False, "cloud_run": [], "backends": 2, "negs": 1}


def test_unreadable_backend_or_neg_answers_unknown_not_no(compute: Standin) -> None:
    facts = _enrich(_finding())  # nothing seeded: the backend service is not found
    assert facts["fronts_cloud_run"] is None and facts["read_error"].startswith("NotFound")
    _seed(compute, LINK + RUN_NEG, negs=[])
    facts = _enrich(_finding())
    assert facts["fronts_cloud_run"] is None and facts["read_errors"][0].startswith(f"{RUN_NEG}: NotFound")


def test_a_hostile_group_url_is_never_fetched_at_its_own_host(compute: Standin) -> None:
    """Only a NEG path is read, at Rampart's Compute endpoint: a group URL naming another host or
    something else entirely is counted and left alone."""
    _seed(compute, "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/default/token",
          "https://evil.example/compute/v1/" + RUN_NEG, "x" * 5000)
    facts = _enrich(_finding())
    assert facts["fronts_cloud_run"] is True and facts["backends"] == 3 and facts["negs"] == 1  # the path, at our endpoint


def test_the_number_of_negs_read_is_bounded(compute: Standin) -> None:
    negs = [f"projects/phi-prod/regions/r{i}/networkEndpointGroups/n" for i in range(MAX_NEGS + 3)]
    _seed(compute, *(LINK + n for n in negs),
          negs=[{"name": n, "networkEndpointType": "SERVERLESS", "cloudRun": {"service": f"s{i}"}} for i, n in enumerate(negs)])
    facts = _enrich(_finding())
    assert len(facts["cloud_run"]) == MAX_NEGS and facts["read_errors"] == ["3 more NEGs not read"]


def test_a_rule_change_reads_nothing(compute: Standin) -> None:
    assert _enrich(_finding("positive_rule_removed.json")) == {}
    assert not [r for r in compute.admin.requests() if "/compute/v1/" in r["path"]]


def test_the_alert_record_carries_the_answer_through_the_pipeline(compute: Standin) -> None:
    from shared.pipeline import act

    _seed(compute, LINK + RUN_NEG)
    settings = dataclasses.replace(POLICY.settings(RULE.id), mode=Mode.ALERT)
    record = act(_finding(), settings, POLICY)
    assert record.after["context"]["fronts_cloud_run"] is True
    assert record.after["context"]["cloud_run"][0]["service"] == "phi-api"

"""Rampart's own sink put back after tampering: the corpus-derived UpdateSink entry through
`RULE.evaluate` and `run_remediation`, against the stand-in's Logging v2 sinks over REST."""

from __future__ import annotations

import dataclasses

import pytest

import functions
from shared.actions import ActionContext, run_remediation
from shared.event import parse
from shared.model import Action, Mode, Outcome
from shared.plumbing_actions import expected_filter
from tests.helpers import RULE_FIXTURES, default_policy, load_json
from tests.support.fixtures_standin import Standin

pytestmark = pytest.mark.integration

SINK = "projects/sec-prod/sinks/rampart-audit"
DEST = "pubsub.googleapis.com/projects/sec-prod/topics/rampart-audit"
RULE = functions.rule("rampart_tamper")


def _act(standin: Standin, *, principal_is_deployer: bool = False, mode: Mode = Mode.ENFORCE):
    params = dataclasses.replace(default_policy().settings("rampart_tamper").params, sink_destination=DEST,
                                 deploy_identities=("user@domain.com",) if principal_is_deployer else ())
    f = RULE.evaluate(parse(load_json(RULE_FIXTURES / "rampart_tamper" / "positive_sink_filter_emptied.json")), params)
    assert f is not None and f.resource == SINK
    return run_remediation(RULE.remediate, f, params, ActionContext(mode=mode, action=Action.RESTORE))


@pytest.fixture
def tampered(standin: Standin) -> Standin:
    standin.admin.seed({"sinks": [{"name": SINK, "destination": "pubsub.googleapis.com/projects/evil/topics/x",
                                   "filter": 'protoPayload.methodName="nothing"', "description": "Rampart"}]})
    return standin


def _sink(standin: Standin) -> dict:
    return next(s for s in standin.admin.state()["sinks"] if s["name"] == "rampart-audit")


def test_filter_and_destination_put_back(tampered: Standin) -> None:
    rec = _act(tampered)
    assert rec.outcome is Outcome.REMEDIATED, rec.reason
    assert {c.field for c in rec.changes} == {"filter", "destination"}
    sink = _sink(tampered)
    assert sink["filter"] == expected_filter(SINK) and sink["destination"] == DEST
    assert sink["description"] == "Rampart"  # untouched: the mask named only what was put back
    assert _act(tampered).outcome is Outcome.ALREADY_COMPLIANT


def test_a_deploy_identitys_change_stands_but_is_alerted(tampered: Standin) -> None:
    rec = _act(tampered, principal_is_deployer=True)
    assert rec.outcome is Outcome.ALERTED and "deploy identity" in rec.reason
    assert _sink(tampered)["destination"].startswith("pubsub.googleapis.com/projects/evil")


def test_dry_run_writes_nothing(tampered: Standin) -> None:
    assert _act(tampered, mode=Mode.DRY_RUN).outcome is Outcome.DRY_RUN
    assert [r for r in tampered.admin.requests() if r["method"] == "PATCH"] == []

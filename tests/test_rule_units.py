"""Each rule's `check`, `remediate` and `enrich` on views and findings built in the test: whether
the rule fires on a given state, what its finding says, and what its remediation is asked to do.
Fast (no stand-in): the actions the rules hand over to are replaced by recorders here, and are
themselves tested against the stand-in in tests/test_run_actions.py and tests/test_kms_actions.py.
These close the survivors `make mutate` found in functions/* (bench/mutate_results.json)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from google.cloud import run_v2

from shared.actions import ActionContext
from shared.model import Action, Finding, Mode, Outcome
from shared.views.iam import Binding, Condition, PolicyView
from shared.views.kms import KeyVersionView
from shared.views.run import ServiceView

SVC = "projects/p/locations/us-central1/services/api"
KEY = "projects/p/locations/us-central1/keyRings/ring/cryptoKeys/key"
VERSION = f"{KEY}/cryptoKeyVersions/3"
OWN_SA = "api@p.iam.gserviceaccount.com"


def _service(**changes: Any) -> ServiceView:
    """A compliant service; `changes` make it not."""
    base = ServiceView(
        name=SVC, project="p", location="us-central1", ingress="INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
        invoker_iam_disabled=False, service_account=OWN_SA, vpc_connector="", vpc_egress="", has_vpc_access=False,
        encryption_key="",
    )
    return dataclasses.replace(base, **changes)


def _live(name: str = SVC, **fields: Any) -> run_v2.Service:
    """A live run_v2.Service as the client answers it; a compliant one unless `fields` say otherwise."""
    template = run_v2.RevisionTemplate(service_account=fields.pop("service_account", OWN_SA))
    return run_v2.Service(name=name, ingress=fields.pop("ingress", run_v2.IngressTraffic.INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER),
                          template=template, **fields)


def _ctx(action: Action) -> ActionContext:
    return ActionContext(mode=Mode.ENFORCE, action=action, clock=lambda: 1_764_547_200.0)


@pytest.fixture
def quarantined(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Finding, ActionContext, Any]]:
    """What quarantine was asked: (finding, ctx, violates), one per call."""
    from shared.actions import quarantine

    calls: list[tuple[Finding, ActionContext, Any]] = []

    def record(finding: Finding, ctx: ActionContext, *, violates: Any) -> str:
        calls.append((finding, ctx, violates))
        return "quarantined"

    monkeypatch.setattr(quarantine, "quarantine", record)
    return calls


# ---------------------------------------------------------------------------
# Cloud Run rules: what quarantine is asked to watch for on the live service.

# rule id → (params, a live service and policy that violate it, a live service and policy that do not)
_PUBLIC = {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}
_PRIVATE = {"bindings": [{"role": "roles/run.invoker", "members": ["user:a@example.com"]}]}
QUARANTINE_CASES: dict[str, tuple[dict[str, Any], tuple[Any, Any], tuple[Any, Any]]] = {
    "run_ingress_open": ({}, (_live(ingress=run_v2.IngressTraffic.INGRESS_TRAFFIC_ALL), {}), (_live(), {})),
    "run_invoker_iam_disabled": ({}, (_live(invoker_iam_disabled=True), {}), (_live(), {})),
    "run_public_invoker": ({}, (_live(), _PUBLIC), (_live(), _PRIVATE)),
    "run_default_service_account": ({}, (_live(service_account=""), {}), (_live(), {})),
    "run_unapproved_region": ({"approved_regions": ("us-central1",)},
                              (_live(SVC.replace("us-central1", "europe-west1")), {}), (_live(), {})),
}


@pytest.mark.parametrize("rule_id", sorted(QUARANTINE_CASES))
def test_quarantine_watches_the_live_service_with_the_rules_own_check(rule_id: str, quarantined: list) -> None:
    import functions

    rule = functions.rule(rule_id)
    params = rule.params(**QUARANTINE_CASES[rule_id][0])
    f = Finding(rule=rule_id, severity=rule.severity, title=rule.title, resource=SVC, resource_type="run.service",
                project="p", location="us-central1", principal="", action=Action.QUARANTINE, event_id="e",
                method="m", timestamp="t")
    ctx = _ctx(Action.QUARANTINE)
    assert rule.remediate(f, params, ctx) == "quarantined"
    ((finding, got_ctx, violates),) = quarantined
    assert finding is f and got_ctx is ctx
    _, bad, good = QUARANTINE_CASES[rule_id]
    assert violates(*bad) is True
    assert violates(*good) is False


@pytest.mark.parametrize("rule_id", sorted(QUARANTINE_CASES))
def test_an_action_the_rule_does_not_offer_fails_naming_the_finding(rule_id: str, quarantined: list) -> None:
    import functions

    rule = functions.rule(rule_id)
    f = Finding(rule=rule_id, severity=rule.severity, title=rule.title, resource=SVC, resource_type="run.service",
                project="p", location="us-central1", principal="", action=Action.RESTORE, event_id="e",
                method="m", timestamp="t")
    rec = rule.remediate(f, rule.params(), _ctx(Action.RESTORE))
    assert rec.outcome is Outcome.FAILED
    assert rec.reason.startswith(f"{rule_id}: expected action ") and rec.reason.endswith("found restore")
    assert rec.finding is f
    assert quarantined == []


# ---------------------------------------------------------------------------
# run_public_invoker


def test_run_public_invoker_finding_lists_every_public_grant_with_its_role() -> None:
    from functions import run_public_invoker as m

    view = PolicyView(SVC, "p", "us-central1", "run.service", (
        Binding("roles/run.invoker", ("allUsers", "user:a@example.com")),
        Binding("roles/run.developer", ("allAuthenticatedUsers",)),
    ))
    f = m.check(view, m.Params())
    assert f is not None and f.observed == {"public_members": [
        {"role": "roles/run.developer", "member": "allAuthenticatedUsers"},
        {"role": "roles/run.invoker", "member": "allUsers"},
    ]}
    f = m.check(view, m.Params(roles=("roles/run.invoker",)))
    assert f is not None and f.observed == {"public_members": [{"role": "roles/run.invoker", "member": "allUsers"}]}
    assert m.check(view, m.Params(roles=("roles/run.admin",))) is None
    assert m.check(dataclasses.replace(view, resource_type="kms.cryptoKey"), m.Params()) is None


# ---------------------------------------------------------------------------
# kms_public_member


def _key_policy(*bindings: Binding, resource_type: str = "kms.cryptoKey") -> PolicyView:
    return PolicyView(KEY, "p", "us-central1", resource_type, bindings)


def test_kms_public_member_titles_say_key_or_key_ring() -> None:
    from functions import kms_public_member as m

    f = m.check(_key_policy(Binding("roles/cloudkms.cryptoKeyDecrypter", ("allUsers",))), m.Params())
    assert f is not None and f.title == "Public or outside-domain member granted on a CMEK key (cryptoKey)"
    ring = m.check(_key_policy(Binding("roles/cloudkms.viewer", ("allAuthenticatedUsers",)), resource_type="kms.keyRing"),
                   m.Params())
    assert ring is not None and ring.title == "Public or outside-domain member granted on a CMEK key (keyRing)"


@pytest.mark.parametrize(("member", "flagged"), [
    ("allUsers", True),
    ("domain:example.com", False),
    ("domain:evil.example", True),
    ("user:bob@example.com", False),
    ("user:mallory@evil.example", True),
    ("group:ops@example.com", False),
    ("group:ops@evil.example", True),
    ("serviceAccount:ci@example.com", False),
    ("serviceAccount:ci@evil.example", True),
    # A deleted member holds no access (IAM keeps it as `deleted:...?uid=`); nothing to remove.
    ("deleted:user:mallory@evil.example?uid=123456789", False),
    # Kinds with no domain to judge (project convenience values) are left alone.
    ("projectViewer:p", False),
])
def test_kms_public_member_with_allowed_domains_flags_members_outside_them(member: str, flagged: bool) -> None:
    from functions import kms_public_member as m

    params = m.Params(allowed_domains=("example.com",), allowed_members=())
    f = m.check(_key_policy(Binding("roles/cloudkms.cryptoKeyEncrypterDecrypter", (member,))), params)
    if not flagged:
        assert f is None
        return
    assert f is not None
    assert f.observed == {"members": [{"role": "roles/cloudkms.cryptoKeyEncrypterDecrypter", "member": member}]}
    assert f.detail == m.Outsiders((("roles/cloudkms.cryptoKeyEncrypterDecrypter", member),))


def test_kms_public_member_remediation_removes_exactly_the_flagged_grants(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import kms_public_member as m
    from shared.actions import kms

    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(kms, "strip_members", lambda finding, ctx, **kw: asked.append(kw) or "stripped")
    params = m.Params(allowed_domains=("example.com",))
    f = m.check(_key_policy(Binding("roles/cloudkms.viewer", ("user:bob@example.com", "user:eve@evil.example"))), params)
    assert f is not None
    assert m.remediate(f, params, _ctx(Action.REVERT)) == "stripped"
    (kw,) = asked
    assert kw["pairs"] == [("roles/cloudkms.viewer", "user:eve@evil.example")]
    assert kw["still_bad"]("user:eve@evil.example") is True and kw["still_bad"]("user:bob@example.com") is False
    # A finding without the rule's detail (not made by its check) removes nothing.
    asked.clear()
    m.remediate(dataclasses.replace(f, detail=None), params, _ctx(Action.REVERT))
    assert asked[0]["pairs"] == []


# ---------------------------------------------------------------------------
# kms_version_destroy_scheduled


@pytest.mark.parametrize("fields", [
    {"keys": (), "owner": "sec-team", "reason": "crypto-shredding"},
    {"keys": ("*/cryptoKeys/tmp-*",), "owner": " ", "reason": "crypto-shredding"},
    {"keys": ("*/cryptoKeys/tmp-*",), "owner": "sec-team", "reason": ""},
])
def test_allow_destroy_needs_keys_an_owner_and_a_reason(fields: dict[str, Any]) -> None:
    from functions.kms_version_destroy_scheduled import AllowDestroy

    with pytest.raises(ValueError) as exc:
        AllowDestroy(**fields)
    assert str(exc.value) == "allow_destroy entries need keys (patterns), an owner and a reason"


def test_allow_destroy_with_all_three_is_accepted() -> None:
    from functions.kms_version_destroy_scheduled import AllowDestroy

    assert AllowDestroy(keys=("k",), owner="sec-team", reason="crypto-shredding").owner == "sec-team"


def _version_finding(rule_module: Any, state: str, destroy_time: str = "") -> Finding:
    view = KeyVersionView(name=VERSION, project="p", location="us-central1", key=KEY, version="3", state=state,
                          destroy_time=destroy_time)
    f = rule_module.check(view, rule_module.Params())
    assert f is not None
    return f


@pytest.fixture
def facts_asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    from shared.actions import kms

    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(kms, "version_facts", lambda finding, ctx, **kw: asked.append(kw) or {"asked": True})
    return asked


def test_destroy_enrichment_asks_for_the_destroy_time_and_dependents(facts_asked: list) -> None:
    from functions import kms_version_destroy_scheduled as m

    f = _version_finding(m, "DESTROY_SCHEDULED", "2026-12-31T00:00:00Z")
    assert m.enrich(f, m.Params(), _ctx(Action.RESTORE)) == {"asked": True}
    assert facts_asked[-1] == {"find_dependents": True, "max_services": 500, "destroy_time": "2026-12-31T00:00:00Z"}
    m.enrich(f, m.Params(find_dependents=False, max_services_scanned=7), _ctx(Action.RESTORE))
    assert facts_asked[-1] == {"find_dependents": False, "max_services": 7, "destroy_time": "2026-12-31T00:00:00Z"}
    # A finding without the view (not made by the check) has no destroy time to report.
    m.enrich(dataclasses.replace(f, detail=None), m.Params(), _ctx(Action.RESTORE))
    assert facts_asked[-1]["destroy_time"] == ""


# ---------------------------------------------------------------------------
# kms_version_disabled


def test_kms_version_disabled_finding_and_allow_disable() -> None:
    from functions import kms_version_disabled as m

    f = _version_finding(m, "DISABLED")
    assert f.observed == {"state": "DISABLED", "key": KEY, "version": "3"}
    retired = KeyVersionView(name=VERSION.replace("/key/", "/retired-key/"), project="p", location="us-central1",
                             key=KEY.replace("/key", "/retired-key"), version="3", state="DISABLED", destroy_time="")
    params = m.Params(allow_disable=("*/cryptoKeys/retired-*",))
    assert m.check(retired, params) is None
    f = m.check(dataclasses.replace(retired, key=KEY, name=VERSION), params)
    assert f is not None and f.resource == VERSION
    assert m.check(dataclasses.replace(retired, state="ENABLED", key=KEY), params) is None


# ---------------------------------------------------------------------------
# kms_agent_binding_removed

AGENT = "serviceAccount:service-123456789012@gcp-sa-financialservices.iam.gserviceaccount.com"
RUN_AGENT = "serviceAccount:service-123456789012@serverless-robot-prod.iam.gserviceaccount.com"
ENC = "roles/cloudkms.cryptoKeyEncrypterDecrypter"
FIXTURE_KEY = "projects/test-project/locations/us/keyRings/test-keyring/cryptoKeys/test-key"


def test_kms_agent_binding_removed_fires_only_on_the_role_it_guards() -> None:
    from functions import kms_agent_binding_removed as m

    kept = Binding(ENC, (AGENT,))
    # The agent lost another role (not encrypter/decrypter): not this rule's concern.
    other = PolicyView(KEY, "p", "us-central1", "kms.cryptoKey", (kept,), prior=(kept, Binding("roles/cloudkms.viewer", (RUN_AGENT,))))
    assert m.check(other, m.Params()) is None
    # A user lost the role while the agent kept it: nothing an agent lacks.
    user_left = PolicyView(KEY, "p", "us-central1", "kms.cryptoKey", (kept,),
                           prior=(Binding(ENC, (AGENT, "user:bob@example.com")),))
    assert m.check(user_left, m.Params()) is None
    # The agent lost it: named in the finding, for a key and for a key ring.
    lost = PolicyView(KEY, "p", "us-central1", "kms.cryptoKey", (), prior=(Binding(ENC, (RUN_AGENT, AGENT)),))
    f = m.check(lost, m.Params())
    assert f is not None
    assert f.observed == {"role": ENC, "missing_members": [AGENT, RUN_AGENT]}
    assert f.title == "Service agent lost encrypter/decrypter on a CMEK key (cryptoKey)"
    assert f.detail == m.Missing(ENC, (AGENT, RUN_AGENT))
    ring = m.check(dataclasses.replace(lost, resource_type="kms.keyRing"), m.Params())
    assert ring is not None and ring.title == "Service agent lost encrypter/decrypter on a CMEK key (keyRing)"


def test_kms_agent_binding_removed_a_conditional_prior_grant_is_not_expected_back() -> None:
    from functions import kms_agent_binding_removed as m

    cond = Condition("request.time < timestamp('2030-01-01T00:00:00Z')", "until 2030")
    view = PolicyView(KEY, "p", "us-central1", "kms.cryptoKey", (), prior=(Binding(ENC, (AGENT,), cond),))
    assert m.check(view, m.Params()) is None


def _agent_finding(event_id: str = "abc123def456") -> tuple[Finding, Any]:
    from functions import kms_agent_binding_removed as m
    from shared.event import parse
    from tests.helpers import RULE_FIXTURES, load_json

    event = parse(load_json(RULE_FIXTURES / "kms_agent_binding_removed" / "positive_delta_remove_agent.json"))
    f = m.RULE.evaluate(event, m.Params())
    assert f is not None and f.detail == m.Missing(ENC, (AGENT,))
    return dataclasses.replace(f, event_id=event_id), event


@pytest.fixture
def restores(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What restore_members was asked; it answers a record whose reason is "restored"."""
    from shared.actions import kms, record

    asked: list[dict[str, Any]] = []

    def restore(finding: Finding, ctx: ActionContext, **kw: Any) -> Any:
        asked.append(kw)
        return record(finding, ctx, Outcome.REMEDIATED, reason="restored")

    monkeypatch.setattr(kms, "restore_members", restore)
    return asked


def _held(monkeypatch: pytest.MonkeyPatch, fixture: str | None) -> None:
    """Cloud Logging holds this fixture under any insertId (None: it holds nothing)."""
    from shared import audit_confirm
    from shared.event import parse
    from tests.helpers import RULE_FIXTURES, load_json

    def lookup(project: str, insert_id: str, timestamp: str) -> Any:
        if fixture is None:
            raise audit_confirm.Unconfirmed(f"no Admin Activity entry {insert_id}")
        return parse(load_json(RULE_FIXTURES / "kms_agent_binding_removed" / fixture))

    monkeypatch.setattr(audit_confirm, "lookup", lookup)


def test_agent_restore_puts_back_a_confirmed_trusted_agent(monkeypatch: pytest.MonkeyPatch, restores: list) -> None:
    from functions import kms_agent_binding_removed as m

    _held(monkeypatch, "positive_delta_remove_agent.json")
    f, _ = _agent_finding()
    rec = m.remediate(f, m.Params(trusted_projects=("123456789012",)), _ctx(Action.RESTORE))
    assert restores == [{"role": ENC, "members": [AGENT]}]
    assert rec.reason == "restored"


def test_agent_restore_refuses_an_untrusted_project_unless_required(monkeypatch: pytest.MonkeyPatch, restores: list) -> None:
    from functions import kms_agent_binding_removed as m

    _held(monkeypatch, "positive_delta_remove_agent.json")
    f, _ = _agent_finding()
    rec = m.remediate(f, m.Params(trusted_projects=()), _ctx(Action.RESTORE))
    assert restores == []
    assert rec.outcome is Outcome.FAILED and rec.finding is f
    assert rec.reason == f"not restored: {AGENT}: its project 123456789012 is not in trusted_projects"
    # `required` names it for this key: it may always be put back.
    rec = m.remediate(f, m.Params(trusted_projects=(), required={FIXTURE_KEY: (AGENT,)}), _ctx(Action.RESTORE))
    assert restores == [{"role": ENC, "members": [AGENT]}]


def test_agent_restore_names_each_member_it_leaves_out(monkeypatch: pytest.MonkeyPatch, restores: list) -> None:
    from functions import kms_agent_binding_removed as m

    _held(monkeypatch, "positive_delta_remove_agent.json")
    f, _ = _agent_finding()
    # Two more members "missing" that Cloud Logging's entry does not show removed, sorted before
    # and after the one it does: each is refused, the confirmed one still put back.
    early = "serviceAccount:service-1@gcp-sa-aaa.iam.gserviceaccount.com"
    late = "serviceAccount:service-9@serverless-robot-prod.iam.gserviceaccount.com"
    f = dataclasses.replace(f, detail=m.Missing(ENC, (early, AGENT, late)))
    rec = m.remediate(f, m.Params(trusted_projects=("123456789012", "1", "9")), _ctx(Action.RESTORE))
    assert restores == [{"role": ENC, "members": [AGENT]}]
    assert rec.reason == (f"restored; not restored: {early}: Cloud Logging's entry does not show it removed; "
                          f"{late}: Cloud Logging's entry does not show it removed")


def test_agent_restore_refuses_when_logging_does_not_show_the_removal(monkeypatch: pytest.MonkeyPatch, restores: list) -> None:
    from functions import kms_agent_binding_removed as m

    f, _ = _agent_finding()
    _held(monkeypatch, "negative_grant.json")  # the held entry is a grant: nothing removed
    rec = m.remediate(f, m.Params(trusted_projects=("123456789012",)), _ctx(Action.RESTORE))
    assert restores == [] and rec.outcome is Outcome.FAILED
    assert rec.reason == f"not restored: {AGENT}: Cloud Logging's entry does not show it removed"
    _held(monkeypatch, None)
    rec = m.remediate(f, m.Params(trusted_projects=("123456789012",)), _ctx(Action.RESTORE))
    assert rec.reason == "not restored: the audit entry is not confirmed in Cloud Logging (no Admin Activity entry abc123def456)"
    # A sweep's finding has no entry to confirm.
    rec = m.remediate(dataclasses.replace(f, event_id=""), m.Params(trusted_projects=("123456789012",)), _ctx(Action.RESTORE))
    assert rec.reason == "not restored: no audit entry to confirm who removed them (found by a sweep): a human decides"
    assert restores == []


def test_agent_restore_without_the_rules_detail_restores_nobody(monkeypatch: pytest.MonkeyPatch, restores: list) -> None:
    from functions import kms_agent_binding_removed as m

    _held(monkeypatch, "positive_delta_remove_agent.json")
    f, _ = _agent_finding()
    rec = m.remediate(dataclasses.replace(f, detail=None), m.Params(trusted_projects=("123456789012",)), _ctx(Action.RESTORE))
    assert restores == [] and rec.outcome is Outcome.FAILED

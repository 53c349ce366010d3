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
from shared.views.run import EnvVar, ServiceView

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
    template = run_v2.RevisionTemplate(
        service_account=fields.pop("service_account", OWN_SA), encryption_key=fields.pop("encryption_key", ""),
        vpc_access=fields.pop("vpc_access", None), containers=[run_v2.Container(image="i", env=fields.pop("env", []))])
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
    "run_cmek_missing": ({}, (_live(), {}), (_live(encryption_key=f"{KEY}"), {})),
    "run_vpc_egress": ({"require_vpc_access_for": (SVC,)}, (_live(), {}),
                       (_live(vpc_access=run_v2.VpcAccess(connector="projects/p/locations/us-central1/connectors/c",
                                                          egress=run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY)), {})),
    "run_plaintext_secrets": ({}, (_live(env=[run_v2.EnvVar(name="DB_PASSWORD", value="hunter2")]), {}),
                              (_live(env=[run_v2.EnvVar(name="LOG_LEVEL", value="info")]), {})),
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
    # IAM appends ?uid=N to a recreated member (shared/members.py): the domain is before it.
    ("user:bob@example.com?uid=123456789", False),
    ("user:mallory@evil.example?uid=123456789", True),
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


# ---------------------------------------------------------------------------
# What each Cloud Run finding says (the alert shows `observed` as it is).


def test_run_invoker_iam_disabled_finding_says_the_check_is_off() -> None:
    from functions import run_invoker_iam_disabled

    f = run_invoker_iam_disabled.check(_service(invoker_iam_disabled=True), run_invoker_iam_disabled.Params())
    assert f is not None and f.observed == {"invoker_iam_disabled": True}
    assert run_invoker_iam_disabled.check(_service(), run_invoker_iam_disabled.Params()) is None


def test_run_findings_say_what_is_wrong_and_what_is_required() -> None:
    from functions import run_default_service_account, run_ingress_open, run_unapproved_region

    f = run_ingress_open.check(_service(ingress="INGRESS_TRAFFIC_ALL"), run_ingress_open.Params())
    assert f is not None and f.observed == {"ingress": "INGRESS_TRAFFIC_ALL", "required": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"}
    f = run_unapproved_region.check(_service(), run_unapproved_region.Params(approved_regions=("europe-west1", "europe-west4")))
    assert f is not None and f.observed == {"region": "us-central1", "approved_regions": ["europe-west1", "europe-west4"]}
    none_set = run_default_service_account.check(_service(service_account=""), run_default_service_account.Params())
    assert none_set is not None
    assert none_set.observed == {"service_account": "(none set: the default compute service account)"}
    compute = "123456789012-compute@developer.gserviceaccount.com"
    named = run_default_service_account.check(_service(service_account=compute), run_default_service_account.Params())
    assert named is not None and named.observed == {"service_account": compute}
    assert run_default_service_account.check(_service(), run_default_service_account.Params()) is None


# ---------------------------------------------------------------------------
# kms_version_destroy_scheduled: the finding, and whether the version is enabled after restore.


def test_destroy_finding_says_state_key_version_and_destroy_time() -> None:
    from functions import kms_version_destroy_scheduled as m

    f = _version_finding(m, "DESTROY_SCHEDULED", "2026-12-31T00:00:00Z")
    assert f.observed == {"state": "DESTROY_SCHEDULED", "key": KEY, "version": "3", "destroy_time": "2026-12-31T00:00:00Z"}
    assert _version_finding(m, "DESTROYED").observed == {"state": "DESTROYED", "key": KEY, "version": "3"}


@pytest.fixture
def restore_asked(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What restore_version was asked (reenable, why)."""
    from shared.actions import kms

    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(kms, "restore_version", lambda finding, ctx, **kw: asked.append(kw) or "restored")
    return asked


@pytest.fixture
def history_asked(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Cloud Logging's history of the version shows it ENABLED before; records what was asked."""
    from shared import audit_confirm, kms_trust

    asked: list[tuple[Any, ...]] = []
    monkeypatch.setattr(audit_confirm, "history", lambda project, resource, *, until: asked.append((project, resource, until)) or ["h"])

    def before(entries: Any, resource: str) -> tuple[str, str]:
        asked.append(("state_before_destroy", entries, resource))
        return "ENABLED", "entry e1 at 2026-11-30T00:00:00Z"

    monkeypatch.setattr(kms_trust, "state_before_destroy", before)
    return asked


def test_destroy_restore_reenables_when_logging_shows_it_enabled_before(restore_asked: list, history_asked: list) -> None:
    from functions import kms_version_destroy_scheduled as m

    f = _version_finding(m, "DESTROY_SCHEDULED")
    assert m.remediate(f, m.Params(), _ctx(Action.RESTORE)) == "restored"
    assert restore_asked == [{"reenable": True, "why": "re-enabled after restore: Cloud Logging shows it ENABLED before its "
                                                        "destruction (entry e1 at 2026-11-30T00:00:00Z)"}]
    # History up to now (the context's clock: 2025-12-01T00:00:00Z), of this version.
    assert history_asked == [("p", VERSION, "2025-12-01T00:00:00Z"), ("state_before_destroy", ["h"], VERSION)]


@pytest.mark.parametrize(("params", "detail", "why"), [
    ({"reenable_after_restore": False}, True, "left DISABLED after restore (reenable_after_restore is false)"),
    ({"allow_disable": ("*/cryptoKeys/key",)}, True,
     "left DISABLED after restore: kms_version_disabled.allow_disable names its key"),
    # A finding without the view: the key is the version's name up to /cryptoKeyVersions/.
    ({"allow_disable": ("*/cryptoKeys/key",)}, False,
     "left DISABLED after restore: kms_version_disabled.allow_disable names its key"),
])
def test_destroy_restore_leaves_it_disabled_when_told_to(params: dict, detail: bool, why: str, restore_asked: list,
                                                         history_asked: list) -> None:
    from functions import kms_version_destroy_scheduled as m

    f = _version_finding(m, "DESTROY_SCHEDULED")
    if not detail:
        f = dataclasses.replace(f, detail=None)
    m.remediate(f, m.Params(**params), _ctx(Action.RESTORE))
    assert restore_asked == [{"reenable": False, "why": why}]
    assert history_asked == []  # no need to read Cloud Logging


def test_destroy_restore_leaves_it_disabled_without_history_showing_it_enabled(
        monkeypatch: pytest.MonkeyPatch, restore_asked: list, history_asked: list) -> None:
    from functions import kms_version_destroy_scheduled as m
    from shared import audit_confirm, kms_trust

    f = _version_finding(m, "DESTROY_SCHEDULED")
    monkeypatch.setattr(kms_trust, "state_before_destroy", lambda entries, resource: ("DISABLED", "entry e0"))
    m.remediate(f, m.Params(), _ctx(Action.RESTORE))

    def unreadable(project: str, resource: str, *, until: str) -> Any:
        raise audit_confirm.Unconfirmed("logging.logEntries.list denied")

    monkeypatch.setattr(audit_confirm, "history", unreadable)
    m.remediate(f, m.Params(), _ctx(Action.RESTORE))
    assert restore_asked == [
        {"reenable": False, "why": "left DISABLED after restore: Cloud Logging does not show it ENABLED before (entry e0)"},
        {"reenable": False, "why": "left DISABLED after restore: its history cannot be read (logging.logEntries.list denied)"},
    ]


# ---------------------------------------------------------------------------
# kms_rotation, kms_unapproved_location (alert-only: the finding is all the user gets)


def _key(rotation: int | None, *, purpose: str = "ENCRYPT_DECRYPT", known: tuple[str, ...] = ("purpose", "rotation_period")) -> Any:
    from shared.views.kms import KeyView

    return KeyView(name=KEY, project="p", location="us-central1", purpose=purpose, rotation_period_seconds=rotation,
                   next_rotation_time="", known=frozenset(known))


def test_kms_rotation_flags_a_period_over_the_maximum_in_days() -> None:
    from functions import kms_rotation as m

    # 90 days 18 hours (7840800s) against the default 90 days: shown to one decimal.
    f = m.check(_key(7_840_800), m.Params())
    assert f is not None and f.observed == {"rotation_period_days": 90.8, "max_rotation_days": 90}
    # One second over is over; exactly the maximum is not.
    assert m.check(_key(90 * 86400 + 1), m.Params()) is not None
    assert m.check(_key(90 * 86400), m.Params()) is None
    # Rotation removed.
    f = m.check(_key(None), m.Params(max_rotation_days=30))
    assert f is not None and f.observed == {"rotation_period_days": None, "max_rotation_days": 30}


def test_kms_rotation_judges_only_symmetric_keys_and_stated_periods() -> None:
    from functions import kms_rotation as m

    # Asymmetric keys do not rotate automatically: nothing to flag.
    assert m.check(_key(None, purpose="ASYMMETRIC_SIGN"), m.Params()) is None
    # The purpose unknown (an update whose mask leaves it out): judged as a symmetric key.
    assert m.check(_key(None, purpose="", known=("rotation_period",)), m.Params()) is not None
    # The period unknown: nothing said about rotation.
    assert m.check(_key(None, known=("purpose",)), m.Params()) is None


def test_kms_unapproved_location_finding() -> None:
    from functions import kms_unapproved_location as m
    from shared.views.kms import KeyRingView

    ring = KeyRingView(name="projects/p/locations/europe-west1/keyRings/r", project="p", location="europe-west1")
    f = m.check(ring, m.Params(approved_regions=("us-central1", "us-east1")))
    assert f is not None and f.observed == {"location": "europe-west1", "approved_regions": ["us-central1", "us-east1"]}
    assert f.resource == ring.name
    assert m.check(ring, m.Params(approved_regions=("europe-west1",))) is None


# ---------------------------------------------------------------------------
# function_public_invoker

FN = "projects/p/locations/us-central1/functions/fn"


@pytest.fixture
def policy_edits(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What iam.edit_policy was asked: the edit and the undo verb."""
    from shared.actions import iam

    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(iam, "edit_policy", lambda finding, ctx, edit, **kw: asked.append({"edit": edit, **kw}) or "edited")
    return asked


def test_function_public_invoker_flags_public_members_on_the_roles_named() -> None:
    from functions import function_public_invoker as m

    view = PolicyView(FN, "p", "us-central1", "", (
        Binding("roles/cloudfunctions.invoker", ("allUsers",)),
        Binding("roles/cloudfunctions.viewer", ("allAuthenticatedUsers", "user:a@example.com")),
    ))
    f = m.check(view, m.Params(roles=("roles/cloudfunctions.invoker",)))
    assert f is not None and f.observed == {"public_members": [{"role": "roles/cloudfunctions.invoker", "member": "allUsers"}]}
    f = m.check(view, m.Params())
    assert f is not None and len(f.observed["public_members"]) == 2
    assert m.check(view, m.Params(roles=("roles/cloudfunctions.admin",))) is None
    assert m.check(dataclasses.replace(view, name=SVC), m.Params()) is None


def test_function_public_invoker_removes_only_the_flagged_public_grants(policy_edits: list) -> None:
    from functions import function_public_invoker as m

    view = PolicyView(FN, "p", "us-central1", "", (
        Binding("roles/cloudfunctions.invoker", ("allUsers",)),
        Binding("roles/cloudfunctions.viewer", ("allAuthenticatedUsers",)),
    ))
    params = m.Params(roles=("roles/cloudfunctions.invoker",))
    f = m.check(view, params)
    assert f is not None
    assert m.remediate(f, params, _ctx(Action.REVERT)) == "edited"
    live = {"bindings": [{"role": "roles/cloudfunctions.invoker", "members": ["allUsers", "user:a@example.com"]},
                         {"role": "roles/cloudfunctions.viewer", "members": ["allAuthenticatedUsers"]}]}
    new, _, dropped = policy_edits[0]["edit"](live)
    assert [(g.role, g.member) for g in dropped] == [("roles/cloudfunctions.invoker", "allUsers")]
    assert new["bindings"] == [{"role": "roles/cloudfunctions.invoker", "members": ["user:a@example.com"]},
                               {"role": "roles/cloudfunctions.viewer", "members": ["allAuthenticatedUsers"]}]
    assert policy_edits[0]["undo_verb"] == "add"
    # A finding that lists no public members removes nothing.
    m.remediate(dataclasses.replace(f, observed={}), params, _ctx(Action.REVERT))
    assert policy_edits[1]["edit"](live)[2] == []


# ---------------------------------------------------------------------------
# The function rules: the Run rule's judgement, reported as a finding on the function.


def _function(**changes: Any) -> Any:
    from shared.views.functions import FunctionView

    base = FunctionView(name=FN, project="p", location="us-central1", ingress="ALLOW_INTERNAL_AND_GCLB",
                        service_account=OWN_SA, vpc_connector="", vpc_egress="", encryption_key=f"{KEY}", env=(),
                        run_service="projects/p/locations/us-central1/services/fn")
    return dataclasses.replace(base, **changes)


FUNCTION_CASES: dict[str, tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = {
    # rule id → (params, what makes the function violate it, the finding's observed)
    "function_ingress_open": ({}, {"ingress": "ALLOW_ALL"}, {"ingress": "ALLOW_ALL", "required": "ALLOW_INTERNAL_AND_GCLB"}),
    "function_default_service_account": ({}, {"service_account": ""},
                                         {"service_account": "(none set: the default compute service account)"}),
    "function_unapproved_region": ({"approved_regions": ("us-central1",)},
                                   {"location": "europe-west1", "name": FN.replace("us-central1", "europe-west1")},
                                   {"region": "europe-west1", "approved_regions": ["us-central1"]}),
    "function_cmek_missing": ({}, {"encryption_key": ""},
                              {"encryption_key": "(none: Google default encryption)", "required": "a Cloud KMS key"}),
    "function_vpc_egress": ({}, {"has_vpc_access": True, "vpc_egress": "ALL_TRAFFIC", "vpc_connector": "c"},
                            {"vpc_egress": "ALL_TRAFFIC", "required": ["PRIVATE_RANGES_ONLY"], "connector": "c"}),
    "function_plaintext_secrets": ({}, {"env": (EnvVar("fn", "DB_PASSWORD", "hunter2"),)},
                                   {"plaintext_env": [{"container": "fn", "name": "DB_PASSWORD", "matched": "name"}],
                                    "required": "Secret Manager references (--set-secrets)"}),
}


@pytest.mark.parametrize("rule_id", sorted(FUNCTION_CASES))
def test_function_rules_report_on_the_function(rule_id: str) -> None:
    import functions

    rule = functions.rule(rule_id)
    params_fields, violation, observed = FUNCTION_CASES[rule_id]
    params = rule.params(**params_fields)
    assert rule.check(_function(), params) is None
    view = _function(**violation)
    f = rule.check(view, params)
    assert f is not None
    assert (f.rule, f.title, f.resource, f.resource_type, f.project, f.location) == (
        rule_id, rule.title, view.name, "functions.function", "p", view.location)
    assert f.observed == observed


# ---------------------------------------------------------------------------
# kms_key_weakened


def _posture(**changes: Any) -> Any:
    """A key that weakens nothing; `changes` weaken it."""
    from shared.views.keyposture import KeyPostureView

    base = KeyPostureView(name=KEY, project="p", location="us-central1", as_of="2026-01-01T00:00:00Z",
                          rotation_period_seconds=90 * 86400, next_rotation_time="2026-03-01T00:00:00Z",
                          destroy_scheduled_seconds=30 * 86400, protection_level="SOFTWARE", primary=VERSION,
                          primary_protection_level="SOFTWARE", primary_imported=False,
                          known=frozenset({"rotation", "destroy_scheduled", "protection_level", "primary"}))
    return dataclasses.replace(base, **changes)


def test_kms_key_weakened_names_every_weakening_in_its_finding() -> None:
    from functions import kms_key_weakened as m

    assert m.check(_posture(), m.Params()) is None
    view = _posture(
        # A 30.05-day period whose next rotation is put 100.05 days out (Panther's time format for the change).
        rotation_period_seconds=2_596_320, as_of="2026-01-01 00:00:00.000000000", next_rotation_time="2026-04-11T01:13:00Z",
        destroy_scheduled_seconds=101_520,  # 1.175 days
        protection_level="SOFTWARE", primary_imported=True)
    f = m.check(view, m.Params(min_protection_level="HSM"))
    assert f is not None
    assert f.observed == {"problems": {
        "next_rotation_deferred": {"next_rotation_time": "2026-04-11T01:13:00Z", "days_ahead": 100.1,
                                   "rotation_period_days": 30.1},
        "destroy_scheduled_too_short": {"days": 1.18, "minimum_days": 30},
        "protection_level_below_minimum": {"protection_level": "SOFTWARE", "minimum": "HSM"},
        "primary_not_kms_generated": {"primary": VERSION, "protection_level": "SOFTWARE", "imported": True},
    }}
    assert f.title == ("CMEK key protections weakened: destroy_scheduled_too_short, next_rotation_deferred, "
                       "primary_not_kms_generated, protection_level_below_minimum")


@pytest.mark.parametrize(("changes", "flagged"), [
    # The next rotation: the period plus 7 days' grace is the limit, to the second.
    ({"next_rotation_time": "2026-04-08T00:00:00Z"}, False),  # 97 days: at the limit
    ({"next_rotation_time": "2026-04-08T00:00:01Z"}, True),
    ({"next_rotation_time": "2026-04-01T01:00:00Z"}, False),  # 90 days and an hour: within the grace
    ({"next_rotation_time": "2026-04-08T00:00:01Z", "as_of": ""}, False),  # when it changed unknown
    ({"next_rotation_time": "2027-01-01T00:00:00Z", "known": frozenset({"primary"})}, False),  # rotation not stated
    ({"next_rotation_time": "2027-01-01T00:00:00Z", "rotation_period_seconds": None}, False),
    # The destroy delay: at least 30 days, to the second.
    ({"destroy_scheduled_seconds": 30 * 86400}, False),
    ({"destroy_scheduled_seconds": 30 * 86400 + 1}, False),
    ({"destroy_scheduled_seconds": 30 * 86400 - 1}, True),
    # A protection level Rampart does not know ranks below any minimum.
    ({"protection_level": "UNKNOWN_9"}, True),
    # An external primary, either kind.
    ({"primary_protection_level": "EXTERNAL_VPC"}, True),
    ({"primary_protection_level": "EXTERNAL"}, True),
    ({"primary_imported": True, "known": frozenset({"rotation"})}, False),  # the primary not stated
])
def test_kms_key_weakened_limits(changes: dict[str, Any], flagged: bool) -> None:
    from functions import kms_key_weakened as m

    assert (m.check(_posture(**changes), m.Params()) is not None) is flagged


def test_kms_key_weakened_an_unknown_minimum_asks_for_software() -> None:
    from functions import kms_key_weakened as m

    assert m.check(_posture(protection_level="SOFTWARE"), m.Params(min_protection_level="FIPS_LEVEL_9")) is None


# ---------------------------------------------------------------------------
# iam_deny_policy

_PUBLIC_ALL = "principalSet://goog/public:all"
_DECRYPT = "cloudkms.googleapis.com/cryptoKeyVersions.useToDecrypt"


def _deny(*rules: Any) -> Any:
    from shared.views.denypolicy import DenyPolicyView

    return DenyPolicyView("policies/x/denypolicies/d", "cloudresourcemanager.googleapis.com/projects/p", rules)


def test_iam_deny_policy_finding_names_each_rule_what_it_denies_and_to_whom() -> None:
    from functions import iam_deny_policy as m
    from shared.views.denypolicy import DenyRule

    everyone = DenyRule((_PUBLIC_ALL,), (), ("cloudkms.googleapis.com/cryptoKeyVersions.*", "run.googleapis.com/services.update"),
                        (), False)
    harmless = DenyRule(("principal://iam.googleapis.com/projects/-/serviceAccounts/ci@p.iam.gserviceaccount.com",), (),
                        ("run.googleapis.com/services.delete",), (), False)
    f = m.check(_deny(harmless, everyone), m.Params())
    assert f is not None
    assert f.observed == {"attachment": "cloudresourcemanager.googleapis.com/projects/p", "problems": [
        {"rule": 1, "denies": "kms_to_service_agents", "principals": [_PUBLIC_ALL], "permissions": list(m.KMS_CRYPTO)},
        # Everyone includes Rampart: a deny on public:all of a permission Rampart needs blinds it.
        {"rule": 1, "denies": "rampart", "principals": [_PUBLIC_ALL], "permissions": [
            "run.googleapis.com/services.update", "cloudkms.googleapis.com/cryptoKeyVersions.get",
            "cloudkms.googleapis.com/cryptoKeyVersions.update", "cloudkms.googleapis.com/cryptoKeyVersions.restore"]},
    ]}
    assert m.check(_deny(harmless), m.Params()) is None


def test_iam_deny_policy_exception_permissions_are_not_denied() -> None:
    from functions import iam_deny_policy as m
    from shared.views.denypolicy import DenyRule

    rule = DenyRule((_PUBLIC_ALL,), (), ("cloudkms.googleapis.com/cryptoKeyVersions.use*",),
                    ("cloudkms.googleapis.com/cryptoKeyVersions.use*",), False)
    assert m.check(_deny(rule), m.Params()) is None
    partly = dataclasses.replace(rule, exception_permissions=("cloudkms.googleapis.com/cryptoKeyVersions.useToEncrypt*",))
    f = m.check(_deny(partly), m.Params())
    assert f is not None and f.observed["problems"] == [{
        "rule": 0, "denies": "kms_to_service_agents", "principals": [_PUBLIC_ALL],
        "permissions": [_DECRYPT, "cloudkms.googleapis.com/cryptoKeyVersions.useToDecryptViaDelegation"]}]


# ---------------------------------------------------------------------------
# run_workload_noncompliant: the service rules' judgements on a job's or worker pool's template


def _workload(resource_type: str = "run.job", location: str = "us-central1", **template: Any) -> Any:
    from shared.views.run import Template, WorkloadView

    collection = "jobs/j" if resource_type == "run.job" else "workerPools/w"
    base = Template(service_account=OWN_SA, vpc_connector="", vpc_egress="", has_vpc_access=False,
                    encryption_key=f"projects/p/locations/{location}/keyRings/ring/cryptoKeys/key", env=())
    return WorkloadView(f"projects/p/locations/{location}/{collection}", "p", location, resource_type,
                        dataclasses.replace(base, **template))


def test_run_workload_noncompliant_reports_every_failed_judgement() -> None:
    from functions import run_workload_noncompliant as m

    params = m.Params(approved_regions=("us-central1",))
    assert m.check(_workload(), params) is None
    bad = _workload(location="europe-west1", service_account="", encryption_key="", has_vpc_access=True,
                    vpc_egress="ALL_TRAFFIC", vpc_connector="c", env=(EnvVar("app", "API_KEY", "AIza-not-a-real-key"),))
    f = m.check(bad, params)
    assert f is not None
    assert f.observed == {"problems": {
        "default_service_account": {"service_account": "(none set: the default compute service account)"},
        "unapproved_region": {"region": "europe-west1", "approved_regions": ["us-central1"]},
        "cmek_missing": {"encryption_key": "(none: Google default encryption)", "required": "a Cloud KMS key"},
        "plaintext_secrets": {"plaintext_env": [{"container": "app", "name": "API_KEY", "matched": "name"}],
                              "required": "Secret Manager references (--set-secrets)"},
        "vpc_egress": {"vpc_egress": "ALL_TRAFFIC", "required": ["PRIVATE_RANGES_ONLY"], "connector": "c"},
    }}
    assert f.title == "Cloud Run job: cmek_missing, default_service_account, plaintext_secrets, unapproved_region, vpc_egress"
    assert f.resource == bad.name and f.resource_type == "run.job"
    pool = m.check(_workload("run.workerPool", service_account=""), params)
    assert pool is not None and pool.title == "Cloud Run worker pool: default_service_account"


def test_run_workload_noncompliant_passes_its_params_to_each_judgement() -> None:
    from functions import run_workload_noncompliant as m

    # CMEK not required; a key in another location allowed; all-traffic egress allowed.
    relaxed = m.Params(approved_regions=("us-central1",), allowed_egress=("ALL_TRAFFIC",), require_cmek=False,
                       require_same_location=False)
    assert m.check(_workload(encryption_key="", has_vpc_access=True, vpc_egress="ALL_TRAFFIC"), relaxed) is None
    elsewhere = _workload(encryption_key="projects/p/locations/europe-west1/keyRings/r/cryptoKeys/k")
    assert m.check(elsewhere, relaxed) is None
    f = m.check(elsewhere, m.Params(approved_regions=("us-central1",)))
    assert f is not None and f.observed == {"problems": {"cmek_missing": {
        "encryption_key": "projects/p/locations/europe-west1/keyRings/r/cryptoKeys/k", "key_location": "europe-west1",
        "service_location": "us-central1"}}}


# ---------------------------------------------------------------------------
# run_traffic_revision


def test_run_traffic_revision_names_the_pinned_revisions() -> None:
    from functions import run_traffic_revision as m
    from shared.views.run import Traffic

    view = _service(traffic=(Traffic("", 80, True), Traffic("api-00001-abc", 20, False, "old"), Traffic("api-canary-1", 0, False, "c")))
    f = m.check(view, m.Params(ignore_revisions=("api-canary-*",)))
    assert f is not None
    assert f.observed == {"serving_revisions": [{"revision": "api-00001-abc", "percent": 20, "tag": "old"}]}
    assert m.check(view, m.Params(ignore_revisions=("api-*",))) is None


def _revision(**template: Any) -> run_v2.Revision:
    """A live revision that fails none of the service rules, unless `template` says otherwise."""
    fields: dict[str, Any] = {
        "service_account": OWN_SA, "encryption_key": KEY,
        "vpc_access": run_v2.VpcAccess(connector="projects/p/locations/us-central1/connectors/c",
                                       egress=run_v2.VpcAccess.VpcEgress.PRIVATE_RANGES_ONLY),
        "containers": [run_v2.Container(image="i", env=[run_v2.EnvVar(name="LOG_LEVEL", value="info")])],
    }
    return run_v2.Revision(name=f"{SVC}/revisions/api-00001-abc", **(fields | template))


def test_judge_revision_lists_the_service_rules_a_live_revision_fails() -> None:
    from functions.run_traffic_revision import judge_revision

    assert judge_revision(SVC, _revision()) == []
    bad = _revision(service_account="", encryption_key="",
                    containers=[run_v2.Container(image="i", env=[run_v2.EnvVar(name="DB_PASSWORD", value="hunter2")])],
                    vpc_access=run_v2.VpcAccess(connector="c", egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC))
    assert judge_revision(SVC, bad) == ["run_default_service_account", "run_cmek_missing", "run_vpc_egress", "run_plaintext_secrets"]
    # Its REST JSON, as well as the client's object.
    as_json = type(bad).to_dict(bad, use_integers_for_enums=False, preserving_proto_field_name=False)
    assert judge_revision(SVC, as_json) == ["run_default_service_account", "run_cmek_missing", "run_vpc_egress", "run_plaintext_secrets"]


def test_run_traffic_revision_enrichment_reads_each_pinned_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    from google.api_core import exceptions as gexc

    from functions import run_traffic_revision as m
    from shared import clients

    asked: list[dict[str, Any]] = []

    class Revisions:
        def get_revision(self, **kw: Any) -> run_v2.Revision:
            asked.append(kw)
            if kw["name"].endswith("/gone"):
                raise gexc.NotFound("revision gone")
            return _revision(service_account="")

    monkeypatch.setattr(clients, "run_revisions", Revisions)
    f = Finding(rule="run_traffic_revision", severity=m.RULE.severity, title="t", resource=SVC, resource_type="run.service",
                project="p", location="us-central1", principal="", action=Action.ALERT, event_id="e", method="m", timestamp="t",
                observed={"serving_revisions": [{"revision": "api-00001-abc", "percent": 20, "tag": ""},
                                                {"revision": "gone", "percent": 80, "tag": ""}]})
    assert m.enrich(f, m.Params(), _ctx(Action.ALERT)) == {"revisions": {
        "api-00001-abc": {"fails": ["run_default_service_account"]},
        "gone": {"read_error": "NotFound: revision gone"},
    }}
    # One bounded read each (30 s at most with the default 60 s operation timeout), no client retry.
    assert asked == [{"name": f"{SVC}/revisions/api-00001-abc", "retry": None, "timeout": 30.0},
                     {"name": f"{SVC}/revisions/gone", "retry": None, "timeout": 30.0}]
    assert m.enrich(dataclasses.replace(f, observed={}), m.Params(), _ctx(Action.ALERT)) == {"revisions": {}}


def test_a_revision_reads_the_same_whatever_its_dict_form() -> None:
    """Why judge_revision's to_dict options do not matter (bench/mutate.py EQUIVALENT): the view reads
    enum numbers and snake_case fields as well as names and camelCase."""
    from shared.views.run import from_live

    failing = _revision(service_account="", vpc_access=run_v2.VpcAccess(connector="c", egress=run_v2.VpcAccess.VpcEgress.ALL_TRAFFIC))
    for rev in (_revision(), failing):
        views = [from_live({"name": SVC, "template": type(rev).to_dict(rev, use_integers_for_enums=ints,
                                                                        preserving_proto_field_name=snake)})
                 for ints in (False, True) for snake in (False, True)]
        assert all(v == views[0] for v in views), views


# ---------------------------------------------------------------------------
# armor_policy_detached

BACKEND = "projects/p/global/backendServices/web"


def _armor(**changes: Any) -> Any:
    from shared.views.armor import ArmorView

    base = ArmorView(name=BACKEND, project="p", location="global", target="backendService", detached=False,
                     attached_policy="", weakened_rules=(), change="backendServices.setSecurityPolicy")
    return dataclasses.replace(base, **changes)


def test_armor_findings_say_what_was_detached_or_weakened() -> None:
    from functions import armor_policy_detached as m

    f = m.check(_armor(detached=True), m.Params())
    assert f is not None and f.observed == {"change": "backendServices.setSecurityPolicy", "security_policy": "(none)"}
    assert f.title == m.RULE.title
    policy = "projects/p/global/securityPolicies/edge"
    f = m.check(_armor(name=policy, target="securityPolicy", weakened_rules=("1000", "2000"),
                       change="securityPolicies.patchRule"), m.Params())
    assert f is not None and f.observed == {"change": "securityPolicies.patchRule", "rules": ["1000", "2000"]}
    assert f.title == "Cloud Armor rules removed or weakened"
    assert m.check(_armor(detached=True), m.Params(ignore=("*/backendServices/web",))) is None
    assert m.check(_armor(), m.Params()) is None


def test_armor_reads_compute_at_googles_endpoint_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import armor_policy_detached as m
    from shared import clients

    monkeypatch.setattr(clients, "rest", lambda env, default: (env, default))
    assert m.compute_rest() == ("RAMPART_COMPUTE_ENDPOINT", "https://compute.googleapis.com")


class _Clock:
    """time.monotonic for the enrichment: answers `times` in turn, then the last one forever."""

    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def monotonic(self) -> float:
        return self.times.pop(0) if len(self.times) > 1 else self.times[0]


def _neg(n: int) -> str:
    return f"projects/p/regions/us-central1/networkEndpointGroups/neg-{n}"


@pytest.fixture
def compute(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The Compute API the enrichment reads: path → answer (an exception is raised); calls recorded."""
    from functions import armor_policy_detached as m
    from shared import actions

    api: dict[str, Any] = {"answers": {}, "calls": []}

    def call(session: Any, method: str, path: str, timeout: float) -> Any:
        api["calls"].append((method, path, timeout))
        answer = api["answers"][path]
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(m, "compute_rest", lambda: ("session", "https://compute.example"))
    monkeypatch.setattr(actions, "rest_call", call)
    return api


def _backend_finding() -> Finding:
    from functions import armor_policy_detached as m

    f = m.check(_armor(detached=True), m.Params())
    assert f is not None
    return f


def test_armor_enrichment_names_the_cloud_run_services_behind_the_backend(compute: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import armor_policy_detached as m

    monkeypatch.setattr(m, "time", _Clock(0.0))
    url = "https://www.googleapis.com/compute/v1/"
    compute["answers"] = {
        f"compute/v1/{BACKEND}": {"backends": [{"group": url + _neg(1)}, {"group": url + _neg(2)}, {"group": url + _neg(3)},
                                               {"group": url + "projects/p/zones/z/instanceGroups/vm"}]},
        f"compute/v1/{_neg(1)}": RuntimeError("connection reset"),
        f"compute/v1/{_neg(2)}": {"networkEndpointType": "SERVERLESS", "cloudRun": {"service": "x" * 400, "urlMask": "/api/*"}},
        f"compute/v1/{_neg(3)}": {"networkEndpointType": "GCE_VM_IP_PORT", "cloudRun": {"service": "not-serverless"}},
    }
    out = m.enrich(_backend_finding(), m.Params(), _ctx(Action.ALERT))
    assert out == {"fronts_cloud_run": True, "cloud_run": [{"neg": _neg(2), "service": "x" * 300, "url_mask": "/api/*"}],
                   "backends": 4, "negs": 3, "read_errors": [f"{_neg(1)}: RuntimeError: connection reset"]}
    assert compute["calls"] == [("GET", f"compute/v1/{BACKEND}", 30.0), ("GET", f"compute/v1/{_neg(1)}", 30.0),
                                ("GET", f"compute/v1/{_neg(2)}", 30.0), ("GET", f"compute/v1/{_neg(3)}", 30.0)]


def test_armor_enrichment_reads_within_one_time_budget(compute: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import armor_policy_detached as m

    # The budget is 30 s from the start (0): the first NEG has half a second left, the others none.
    monkeypatch.setattr(m, "time", _Clock(0.0, 29.5, 30.0))
    url = "https://www.googleapis.com/compute/v1/"
    compute["answers"] = {f"compute/v1/{BACKEND}": {"backends": [{"group": url + _neg(n)} for n in (1, 2, 3)]},
                          f"compute/v1/{_neg(1)}": {"networkEndpointType": "SERVERLESS", "cloudRun": {"service": "api"}}}
    out = m.enrich(_backend_finding(), m.Params(), _ctx(Action.ALERT))
    assert out == {"fronts_cloud_run": True, "cloud_run": [{"neg": _neg(1), "service": "api", "url_mask": ""}],
                   "backends": 3, "negs": 3, "read_errors": [f"{_neg(2)}: not read (time budget spent)",
                                                             f"{_neg(3)}: not read (time budget spent)"]}
    assert compute["calls"][1] == ("GET", f"compute/v1/{_neg(1)}", 0.5)


@pytest.mark.parametrize(("count", "unread"), [(10, []), (11, ["1 more NEGs not read"])])
def test_armor_enrichment_reads_at_most_ten_negs(count: int, unread: list, compute: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import armor_policy_detached as m

    monkeypatch.setattr(m, "time", _Clock(0.0))
    url = "https://www.googleapis.com/compute/v1/"
    compute["answers"] = {f"compute/v1/{BACKEND}": {"backends": [{"group": url + _neg(n)} for n in range(count)]},
                          **{f"compute/v1/{_neg(n)}": {"networkEndpointType": "GCE_VM_IP_PORT"} for n in range(count)}}
    out = m.enrich(_backend_finding(), m.Params(), _ctx(Action.ALERT))
    assert out.get("read_errors", []) == unread
    assert len(compute["calls"]) == 1 + 10
    assert out["fronts_cloud_run"] is (None if unread else False)


def test_armor_enrichment_without_the_backend_reports_why(compute: dict) -> None:
    from functions import armor_policy_detached as m

    compute["answers"] = {f"compute/v1/{BACKEND}": RuntimeError("403 compute.backendServices.get denied")}
    assert m.enrich(_backend_finding(), m.Params(), _ctx(Action.ALERT)) == {
        "fronts_cloud_run": None, "read_error": "RuntimeError: 403 compute.backendServices.get denied"}
    assert compute["calls"] == [("GET", f"compute/v1/{BACKEND}", 30.0)]
    rule_change = m.check(_armor(name="projects/p/global/securityPolicies/edge", target="securityPolicy",
                                 weakened_rules=("1000",)), m.Params())
    assert rule_change is not None and m.enrich(rule_change, m.Params(), _ctx(Action.ALERT)) == {}


# ---------------------------------------------------------------------------
# rampart_tamper


def _plumbing(**changes: Any) -> Any:
    from shared.views.plumbing import PlumbingView

    base = PlumbingView(name="projects/p/subscriptions/rampart-push", project="p", kind="subscription",
                        change="UpdateSubscription", deleted=False, fields=("pushConfig",), filter=None, destination=None,
                        push_endpoint=None)
    return dataclasses.replace(base, **changes)


def test_rampart_tamper_says_what_changed_on_ramparts_resources() -> None:
    from functions import rampart_tamper as m

    f = m.check(_plumbing(fields=tuple(f"f{n}" for n in range(25)), push_endpoint="https://evil.example/" + "x" * 300), m.Params())
    assert f is not None
    assert f.observed == {"kind": "subscription", "change": "UpdateSubscription", "deleted": False,
                          "fields": [f"f{n}" for n in range(20)], "push_endpoint": ("https://evil.example/" + "x" * 300)[:200]}
    assert f.title == "Rampart's own plumbing changed: subscription UpdateSubscription"
    sink = m.check(_plumbing(name="projects/p/sinks/rampart-audit", kind="sink", change="UpdateSink", fields=("destination",),
                             destination="storage.googleapis.com/" + "b" * 300), m.Params())
    assert sink is not None and sink.observed["destination"] == ("storage.googleapis.com/" + "b" * 300)[:200]
    # Not Rampart's, or a kind of resource Rampart does not own.
    assert m.check(_plumbing(name="projects/p/subscriptions/billing-push"), m.Params()) is None
    assert m.check(_plumbing(kind="bucket", name="projects/p/buckets/rampart-logs"), m.Params()) is None


def test_rampart_tamper_flags_only_grants_taken_from_ramparts_service_accounts() -> None:
    from functions import rampart_tamper as m

    sa = "serviceAccount:rampart-runtime@p.iam.gserviceaccount.com"
    view = _plumbing(name="projects/p", kind="iamPolicy", change="SetIamPolicy", removed=(
        ("roles/run.admin", sa), ("roles/run.admin", "serviceAccount:ci@p.iam.gserviceaccount.com"),
        ("roles/viewer", "user:rampart-ops@example.com")))
    f = m.check(view, m.Params())
    assert f is not None
    assert f.observed == {"kind": "iamPolicy", "change": "SetIamPolicy", "lost_grants": [{"role": "roles/run.admin", "member": sa}]}
    assert f.title == "Rampart's own plumbing changed: Rampart's service account lost a role"
    assert m.check(dataclasses.replace(view, removed=view.removed[1:]), m.Params()) is None


def test_rampart_tamper_restores_only_a_changed_sink_not_by_a_deploy_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import rampart_tamper as m
    from shared import plumbing_actions

    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(plumbing_actions, "restore_sink", lambda finding, ctx, **kw: asked.append(kw) or "restored")
    params = m.Params(deploy_identities=("deployer@*",), sink_destination="pubsub.googleapis.com/projects/p/topics/rampart-audit")
    sink = m.check(_plumbing(name="projects/p/sinks/rampart-audit", kind="sink", change="UpdateSink", fields=("filter",)), params)
    assert sink is not None
    ctx = _ctx(Action.RESTORE)
    assert m.remediate(dataclasses.replace(sink, principal="mallory@p.example"), params, ctx) == "restored"
    assert asked == [{"destination": "pubsub.googleapis.com/projects/p/topics/rampart-audit"}]
    for f, reason in [
        (dataclasses.replace(sink, principal="deployer@p.iam.gserviceaccount.com"), "changed by a deploy identity: not restored"),
        (dataclasses.replace(sink, observed=sink.observed | {"deleted": True}), "no automatic fix for this change: a human decides"),
        (m.check(_plumbing(), params), "no automatic fix for this change: a human decides"),
    ]:
        assert f is not None
        rec = m.remediate(f, params, ctx)
        assert (rec.finding, rec.mode, rec.outcome, rec.reason) == (f, Mode.ENFORCE, Outcome.ALERTED, reason)
    assert len(asked) == 1


# ---------------------------------------------------------------------------
# iam_outsider_member

_OUT = "user:mallory@evil.example"


def _project_policy(*bindings: Binding, name: str = "projects/demo-project") -> PolicyView:
    return PolicyView(name, "demo-project", "", "", bindings)


def test_iam_outsider_member_finding_says_who_why_and_where() -> None:
    from functions import iam_outsider_member as m

    params = m.Params(trusted_domains=("example.com",), trusted_projects=("partner-proj",))
    view = _project_policy(Binding("roles/viewer", ("user:bob@example.com", _OUT,
                                                    "serviceAccount:etl@partner-proj.iam.gserviceaccount.com",
                                                    "serviceAccount:own@demo-project.iam.gserviceaccount.com")))
    f = m.check(view, params)
    assert f is not None
    assert f.observed == {"outsiders": [{"role": "roles/viewer", "member": _OUT, "reason": "untrusted_domain"}], "scope": "project"}
    assert f.title == "Role granted to a member outside the organization (project)"
    # A folder's policy trusts no project's service accounts, whatever project the view names.
    folder = m.check(_project_policy(Binding("roles/viewer", ("serviceAccount:own@demo-project.iam.gserviceaccount.com",)),
                                     name="folders/123"), params)
    assert folder is not None and folder.observed["outsiders"][0]["reason"] == "untrusted_project"


def test_iam_outsider_member_roles_and_allowed_members() -> None:
    from functions import iam_outsider_member as m

    view = _project_policy(Binding("roles/browser", (_OUT,)),
                           Binding("roles/editor", ("user:bob@example.com", "user:partner@vendor.example", _OUT)))
    params = m.Params(trusted_domains=("example.com",), roles=("roles/editor",), allowed_members=("user:partner@*",))
    f = m.check(view, params)
    assert f is not None
    assert f.observed["outsiders"] == [{"role": "roles/editor", "member": _OUT, "reason": "untrusted_domain"}]


def test_iam_outsider_member_judges_at_most_1500_principals() -> None:
    from functions import iam_outsider_member as m

    members = tuple(f"user:u{n}@evil.example" for n in range(1501))
    f = m.check(_project_policy(Binding("roles/viewer", members), Binding("roles/editor", members[:2])), m.Params())
    assert f is not None
    found = f.observed["outsiders"]
    assert len(found) == 1500 + 2 and {g["member"] for g in found} == set(members[:1500])


@pytest.mark.parametrize("name", ["organizations/456", "folders/123"])
def test_iam_outsider_member_alerts_where_it_cannot_fix(name: str, policy_edits: list) -> None:
    from functions import iam_outsider_member as m

    f = m.check(_project_policy(Binding("roles/viewer", (_OUT,)), name=name), m.Params())
    assert f is not None
    rec = m.remediate(f, m.Params(), _ctx(Action.REVERT))
    scope = "organization" if name.startswith("organizations/") else "folder"
    assert (rec.finding, rec.outcome, rec.reason) == (f, Outcome.ALERTED, f"no automatic fix for a {scope}'s policy: a human decides")
    assert policy_edits == []


@pytest.mark.parametrize("name", ["projects/p", "projects/p/locations/us-central1/services/s",
                                  "projects/p/locations/us-central1/jobs/j", "projects/p/locations/us-central1/workerPools/w",
                                  "projects/p/locations/us-central1/functions/f",
                                  "projects/p/locations/us-central1/keyRings/r", "projects/p/locations/us-central1/keyRings/r/cryptoKeys/k"])
def test_iam_outsider_member_edits_the_policy_of_every_resource_it_can_fix(name: str, policy_edits: list) -> None:
    from functions import iam_outsider_member as m

    f = m.check(_project_policy(Binding("roles/viewer", (_OUT,)), name=name), m.Params())
    assert f is not None
    assert m.remediate(f, m.Params(), _ctx(Action.REVERT)) == "edited"
    assert len(policy_edits) == 1


def test_iam_outsider_member_removes_what_is_still_outside(policy_edits: list) -> None:
    from functions import iam_outsider_member as m

    params = m.Params(trusted_domains=("example.com",), allowed_members=("user:partner@*",))
    f = m.check(_project_policy(Binding("roles/viewer", (_OUT,))), params)
    assert f is not None
    own = "serviceAccount:own@demo-project.iam.gserviceaccount.com"
    # Flagged then, but inside now: the project's own service account, an allowed partner.
    f = dataclasses.replace(f, observed={"outsiders": [{"role": "roles/viewer", "member": x}
                                                       for x in (_OUT, own, "user:partner@vendor.example")]})
    assert m.remediate(f, params, _ctx(Action.REVERT)) == "edited"
    live = {"bindings": [{"role": "roles/viewer", "members": [_OUT, own, "user:partner@vendor.example", "user:bob@example.com"]}]}
    new, _, dropped = policy_edits[0]["edit"](live)
    assert [(g.role, g.member) for g in dropped] == [("roles/viewer", _OUT)]
    assert new["bindings"] == [{"role": "roles/viewer", "members": [own, "user:partner@vendor.example", "user:bob@example.com"]}]
    assert policy_edits[0]["undo_verb"] == "add"
    m.remediate(dataclasses.replace(f, observed={}), params, _ctx(Action.REVERT))
    assert policy_edits[1]["edit"](live)[2] == []


# ---------------------------------------------------------------------------
# org_policy_relaxed


def _org(**changes: Any) -> Any:
    from shared.views.orgpolicy import OrgPolicyView

    base = OrgPolicyView("projects/p/policies/gcp.resourceLocations", "projects/p", "gcp.resourceLocations", (), None, False)
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(("changes", "how"), [
    ({"deleted": True}, ["deleted"]),
    ({"reset": True}, ["reset to the constraint's default"]),
    ({"rules": ("allow_all",)}, ["allows all values"]),
    ({"rules": ("not_enforced",)}, ["not enforced"]),
    ({"rules": ("conditional",)}, ["enforced only under a condition"]),
    ({"inherit_from_parent": False}, ["stops inheriting and sets nothing"]),
    ({"rules": ("values",), "written": True}, ["allowed values changed"]),
    # Several at once, in this order.
    ({"deleted": True, "reset": True, "inherit_from_parent": False},
     ["deleted", "reset to the constraint's default", "stops inheriting and sets nothing"]),
])
def test_org_policy_relaxed_says_how(changes: dict[str, Any], how: list[str]) -> None:
    from functions import org_policy_relaxed as m
    from shared.views.orgpolicy import PolicyRule

    rules = {"allow_all": PolicyRule(allow_all=True), "not_enforced": PolicyRule(enforce=False),
             "conditional": PolicyRule(enforce=True, condition="resource.matchTag('env', 'dev')"),
             "values": PolicyRule(allowed_values=("in:us-locations", "in:eu-locations"))}
    if "rules" in changes:
        changes = changes | {"rules": tuple(rules[r] for r in changes["rules"])}
    view = _org(**changes)
    f = m.check(view, m.Params())
    assert f is not None
    assert f.observed == {"constraint": "gcp.resourceLocations", "parent": "projects/p", "how": how,
                          "allowed_values": list(view.allowed_values)}
    assert f.title == "Organization policy guardrail relaxed or deleted: gcp.resourceLocations"


def test_org_policy_relaxed_stopping_inheritance_while_setting_something_is_no_finding() -> None:
    from functions import org_policy_relaxed as m
    from shared.views.orgpolicy import PolicyRule

    for rule in (PolicyRule(deny_all=True), PolicyRule(enforce=True), PolicyRule(denied_values=("in:cn-locations",))):
        assert m.check(_org(inherit_from_parent=False, rules=(rule,)), m.Params()) is None, rule
    assert m.check(_org(inherit_from_parent=True), m.Params()) is None
    # A constraint not watched.
    assert m.check(_org(constraint="compute.vmExternalIpAccess", deleted=True), m.Params()) is None


def test_org_policy_relaxed_a_state_is_judged_against_the_baseline() -> None:
    from functions import org_policy_relaxed as m
    from shared.views.orgpolicy import PolicyRule

    us = {"rules": [{"values": {"allowedValues": ["in:us-locations"]}}]}
    params = m.Params(baseline={"gcp.resourceLocations": us})
    state = _org(rules=(PolicyRule(allowed_values=("in:us-locations",)),))
    assert m.check(state, params) is None  # the baseline itself
    assert m.check(state, m.Params()) is None  # no baseline: a state with values is only a state
    wider = _org(rules=(PolicyRule(allowed_values=("in:us-locations", "in:asia-locations")),))
    f = m.check(wider, params)
    assert f is not None and f.observed["how"] == ["allowed values differ from the baseline"]
    assert f.observed["allowed_values"] == ["in:us-locations", "in:asia-locations"]
    many = _org(rules=(PolicyRule(allowed_values=tuple(f"in:l{n}" for n in range(25))),), written=True)
    f = m.check(many, params)
    assert f is not None and f.observed["allowed_values"] == [f"in:l{n}" for n in range(20)]


def test_org_policy_relaxed_restores_only_a_declared_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    from functions import org_policy_relaxed as m
    from shared import guardrail_actions

    asked: list[dict[str, Any]] = []
    monkeypatch.setattr(guardrail_actions, "restore_policy", lambda finding, ctx, **kw: asked.append(kw) or "restored")
    spec = {"rules": [{"values": {"allowedValues": ["in:us-locations"]}}]}
    f = m.check(_org(deleted=True), m.Params())
    assert f is not None
    assert m.remediate(f, m.Params(baseline={"gcp.resourceLocations": spec}), _ctx(Action.RESTORE)) == "restored"
    assert asked == [{"baseline": spec}]
    rec = m.remediate(f, m.Params(), _ctx(Action.RESTORE))
    assert (rec.finding, rec.outcome, rec.reason) == (
        f, Outcome.ALERTED, "no baseline for gcp.resourceLocations: what to restore is not certain")


# ---------------------------------------------------------------------------
# iam_agent_binding_removed (the role above the key: project, folder, organization)


def test_iam_agent_binding_removed_finding() -> None:
    from functions import iam_agent_binding_removed as m

    cond = Condition("request.time < timestamp('2030-01-01T00:00:00Z')", "until 2030")
    view = PolicyView("projects/demo-project", "demo-project", "", "", (Binding(ENC, (AGENT,), cond),),
                      prior=(Binding(ENC, (AGENT, RUN_AGENT)), Binding("roles/viewer", ("serviceAccount:service-1@gcp-sa-x.iam.gserviceaccount.com",)),
                             Binding(ENC, ("user:bob@example.com",))))
    f = m.check(view, m.Params())
    assert f is not None
    assert f.observed == {"role": ENC, "missing_members": [AGENT, RUN_AGENT], "scope": "project",
                          "regranted_only_under_a_condition": [AGENT]}
    assert f.title == "Service agent lost encrypter/decrypter above the key (project)"
    assert (f.resource_type, f.project, f.location) == ("project", "demo-project", "global")
    # Still held unconditionally: nothing missing. Not a project, folder or organization: not this rule's.
    assert m.check(dataclasses.replace(view, bindings=(Binding(ENC, (AGENT, RUN_AGENT)),)), m.Params()) is None
    assert m.check(dataclasses.replace(view, name=KEY), m.Params()) is None
    # A conditional grant before is not expected back.
    assert m.check(dataclasses.replace(view, bindings=(), prior=(Binding(ENC, (AGENT,), cond),)), m.Params()) is None


def test_iam_agent_binding_removed_required_members_on_a_whole_policy() -> None:
    from functions import iam_agent_binding_removed as m

    folder = PolicyView("folders/123", "", "", "", (Binding("roles/viewer", (AGENT,)),))
    params = m.Params(required={"folders/123": (AGENT,)})
    f = m.check(folder, params)
    assert f is not None and f.observed == {"role": ENC, "missing_members": [AGENT], "scope": "folder"}
    assert (f.project, f.location) == ("folders/123", "global")
    # An abridged policy (an entry's copy) says nothing about who is required.
    assert m.check(dataclasses.replace(folder, complete=False), params) is None
    assert m.check(folder, m.Params(required={"folders/999": (AGENT,)})) is None


def test_iam_agent_binding_removed_restores_on_a_project_and_alerts_above(policy_edits: list) -> None:
    from functions import iam_agent_binding_removed as m

    view = PolicyView("projects/demo-project", "demo-project", "", "", (), prior=(Binding(ENC, (AGENT,)),))
    f = m.check(view, m.Params())
    assert f is not None
    assert m.remediate(f, m.Params(), _ctx(Action.RESTORE)) == "edited"
    _, _, added = policy_edits[0]["edit"]({"bindings": [{"role": "roles/viewer", "members": ["user:bob@example.com"]}]})
    assert [(g.role, g.member) for g in added] == [(ENC, AGENT)]
    assert policy_edits[0]["undo_verb"] == "remove"
    folder = dataclasses.replace(f, resource="folders/123")
    rec = m.remediate(folder, m.Params(), _ctx(Action.RESTORE))
    assert (rec.finding, rec.outcome, rec.reason) == (folder, Outcome.ALERTED, "no automatic fix above a project: a human decides")
    assert len(policy_edits) == 1


# ---------------------------------------------------------------------------
# run_vpc_egress, run_plaintext_secrets: the rest of what their findings say


def test_run_vpc_egress_requires_vpc_access_only_where_named() -> None:
    from functions import run_vpc_egress as m

    params = m.Params(require_vpc_access_for=("projects/*/locations/*/services/api",))
    f = m.check(_service(), params)
    assert f is not None
    assert f.observed == {"vpc_access": "none", "required": "a VPC connector or Direct VPC egress, private-ranges-only"}
    assert m.check(_service(name=SVC.replace("/api", "/web")), params) is None
    assert m.check(_service(), m.Params()) is None


def test_run_plaintext_secrets_by_name_or_by_value_never_the_value() -> None:
    from functions import run_plaintext_secrets as m

    env = (EnvVar("app", "PASSWORD_MIN_LENGTH", "12"), EnvVar("app", "DB_PASSWORD", "hunter2"),
           EnvVar("app", "STRIPE", "-----BEGIN RSA PRIVATE KEY-----\nMIIE"), EnvVar("app", "LOG_LEVEL", "info"),
           EnvVar("side", "API_TOKEN", None))  # a Secret Manager reference: no plain value
    f = m.check(_service(env=env), m.Params(ignore_names=("PASSWORD_MIN_LENGTH",)))
    assert f is not None
    assert f.observed == {"plaintext_env": [{"container": "app", "name": "DB_PASSWORD", "matched": "name"},
                                            {"container": "app", "name": "STRIPE", "matched": "value"}],
                          "required": "Secret Manager references (--set-secrets)"}
    assert "hunter2" not in repr(f.to_dict()) and "BEGIN" not in repr(f.to_dict())
    # Without value patterns only names count; without name patterns only values.
    f = m.check(_service(env=env), m.Params(ignore_names=("PASSWORD_MIN_LENGTH",), value_patterns=()))
    assert f is not None and [v["name"] for v in f.observed["plaintext_env"]] == ["DB_PASSWORD"]
    f = m.check(_service(env=env), m.Params(name_patterns=()))
    assert f is not None and [v["name"] for v in f.observed["plaintext_env"]] == ["STRIPE"]
    assert m.check(_service(env=(EnvVar("app", "LOG_LEVEL", "info"),)), m.Params()) is None


# ---------------------------------------------------------------------------
# functions/__init__.py: the rule table


def test_rule_loads_each_rule_once_and_names_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    import functions
    from functions import run_ingress_open

    monkeypatch.setattr(functions, "_loaded", {})
    assert functions.rule("run_ingress_open") is run_ingress_open.RULE
    assert functions._loaded == {"run_ingress_open": run_ingress_open.RULE}
    with pytest.raises(KeyError) as exc:
        functions.rule("run_ingress_closed")
    assert exc.value.args[0] == f"unknown rule 'run_ingress_closed'; expected one of: {', '.join(functions.RULE_IDS)}"


def test_all_rules_and_the_rules_of_an_asset_type() -> None:
    import functions

    assert [r.id for r in functions.all_rules()] == list(functions.RULE_IDS)
    run_rules = {r.id for r in functions.rules_for_asset("run.googleapis.com/Service")}
    assert {"run_ingress_open", "run_invoker_iam_disabled", "run_traffic_revision"} <= run_rules
    assert not any(i.startswith("kms_") for i in run_rules)
    assert functions.rules_for_asset("example.googleapis.com/Nothing") == ()


def test_iam_agent_binding_removed_restores_the_role_and_members_its_finding_names(policy_edits: list) -> None:
    from functions import iam_agent_binding_removed as m

    view = PolicyView("projects/demo-project", "demo-project", "", "", (), prior=(Binding("roles/cloudkms.cryptoKeyDecrypter", (AGENT,)),))
    f = m.check(view, m.Params(role="roles/cloudkms.cryptoKeyDecrypter"))
    assert f is not None
    m.remediate(f, m.Params(), _ctx(Action.RESTORE))  # the policy's role since changed: the finding's is put back
    _, _, added = policy_edits[0]["edit"]({"bindings": []})
    assert [(g.role, g.member) for g in added] == [("roles/cloudkms.cryptoKeyDecrypter", AGENT)]
    m.remediate(dataclasses.replace(f, observed={"role": ENC}), m.Params(), _ctx(Action.RESTORE))
    assert policy_edits[1]["edit"]({"bindings": []})[2] == []


@pytest.mark.parametrize("name", [FN, KEY, "projects/p/locations/us-central1/keyRings/ring"])
def test_iam_outsider_member_fixes_functions_keys_and_key_rings(name: str, policy_edits: list) -> None:
    from functions import iam_outsider_member as m

    f = m.check(_project_policy(Binding("roles/viewer", (_OUT,)), name=name), m.Params())
    assert f is not None
    assert m.remediate(f, m.Params(), _ctx(Action.REVERT)) == "edited"
    assert [(g.role, g.member) for g in policy_edits[0]["edit"]({"bindings": [{"role": "roles/viewer", "members": [_OUT]}]})[2]] == [
        ("roles/viewer", _OUT)]


def test_iam_outsider_member_an_organization_trusts_no_projects_accounts() -> None:
    from functions import iam_outsider_member as m

    f = m.check(_project_policy(Binding("roles/viewer", ("serviceAccount:own@demo-project.iam.gserviceaccount.com",)),
                                name="organizations/456"), m.Params())
    assert f is not None and f.observed["outsiders"][0]["reason"] == "untrusted_project"


def test_rampart_tamper_triggers_are_service_and_method_pairs() -> None:
    from functions import rampart_tamper as m

    assert m._m("pubsub.googleapis.com", "DeleteTopic", "UpdateTopic") == (
        ("pubsub.googleapis.com", "DeleteTopic"), ("pubsub.googleapis.com", "UpdateTopic"))

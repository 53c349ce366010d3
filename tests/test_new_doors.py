"""The judgements behind issue 13's rules, on views built by hand: the cases a fixture cannot
show under the shipped policy (a minimum that is off by default, an exception that saves a deny
policy) and the adapters' odd inputs."""

from __future__ import annotations

import dataclasses

import functions
from shared.event import parse, skip_reason
from shared.views.denypolicy import DenyPolicyView, DenyRule
from shared.views.iam import Binding, Condition, PolicyView
from shared.views.keyposture import KeyPostureView
from shared.views.orgpolicy import OrgPolicyView, PolicyRule
from tests.helpers import RULE_FIXTURES, default_policy, load_json
from tests.support.fixtures_standin import Standin

POLICY = default_policy()


def _params(rule_id: str, **kw: object) -> object:
    return dataclasses.replace(POLICY.settings(rule_id).params, **kw)


def _key(**kw: object) -> KeyPostureView:
    base = dict(name="projects/p/locations/us-east4/keyRings/r/cryptoKeys/k", project="p", location="us-east4",
                as_of="2026-11-30T10:00:00Z", rotation_period_seconds=7776000, next_rotation_time="2027-01-01T00:00:00Z",
                destroy_scheduled_seconds=None, protection_level="SOFTWARE", primary="", primary_protection_level="",
                primary_imported=False, known=frozenset({"rotation", "destroy_scheduled", "protection_level", "primary"}))
    base.update(kw)
    return KeyPostureView(**base)  # type: ignore[arg-type]


def test_protection_level_minimum_is_off_by_default_and_bites_when_set() -> None:
    rule = functions.rule("kms_key_weakened")
    assert rule.check(_key(), _params("kms_key_weakened")) is None
    f = rule.check(_key(), _params("kms_key_weakened", min_protection_level="HSM"))
    assert f is not None and "protection_level_below_minimum" in f.observed["problems"]
    assert rule.check(_key(protection_level="HSM"), _params("kms_key_weakened", min_protection_level="HSM")) is None


def test_an_imported_primary_is_flagged_and_an_update_that_does_not_state_the_field_is_not() -> None:
    rule = functions.rule("kms_key_weakened")
    imported = _key(primary="projects/p/locations/us-east4/keyRings/r/cryptoKeys/k/cryptoKeyVersions/2", primary_imported=True,
                    primary_protection_level="HSM")
    assert rule.check(imported, _params("kms_key_weakened")) is not None
    assert rule.check(imported, _params("kms_key_weakened", forbid_imported_primary=False)) is None
    unstated = _key(destroy_scheduled_seconds=3600, known=frozenset({"rotation"}))
    assert rule.check(unstated, _params("kms_key_weakened")) is None


def test_deny_policy_that_excepts_service_agents_is_no_finding() -> None:
    rule = functions.rule("iam_deny_policy")
    crypto = ("cloudkms.googleapis.com/cryptoKeyVersions.useToDecrypt",)
    base = DenyRule(("principalSet://goog/public:all",), (), crypto, (), False)
    view = DenyPolicyView("policies/x/denypolicies/d", "cloudresourcemanager.googleapis.com/projects/p", (base,))
    assert rule.check(view, _params("iam_deny_policy")) is not None
    excepted = dataclasses.replace(base, exception_principals=(
        "principal://iam.googleapis.com/projects/-/serviceAccounts/service-1@gcp-sa-ekms.iam.gserviceaccount.com",))
    assert rule.check(dataclasses.replace(view, rules=(excepted,)), _params("iam_deny_policy")) is None
    wildcard = DenyRule(("principal://iam.googleapis.com/projects/-/serviceAccounts/rampart-runtime@sec.iam.gserviceaccount.com",),
                        (), ("run.googleapis.com/*",), (), False)
    f = rule.check(dataclasses.replace(view, rules=(wildcard,)), _params("iam_deny_policy"))
    assert f is not None and f.observed["problems"][0]["denies"] == "rampart"


def test_outsider_under_a_condition_is_still_an_outsider_and_says_the_condition() -> None:
    rule = functions.rule("iam_outsider_member")
    view = PolicyView("projects/p", "p", "", "", (
        Binding("roles/run.admin", ("user:x@gmail.com",), Condition("request.time < timestamp('2030-01-01T00:00:00Z')", "temp")),
        Binding("roles/viewer", ("user:a@example.com", "serviceAccount:service-1@gcp-sa-logging.iam.gserviceaccount.com")),
    ))
    f = rule.check(view, _params("iam_outsider_member", trusted_domains=("example.com",)))
    assert f is not None
    assert f.observed["outsiders"] == [{"role": "roles/run.admin", "member": "user:x@gmail.com",
                                        "reason": "consumer_account", "condition": "temp"}]
    assert f.resource_type == "project" and f.location == "global"


def test_org_policy_relaxations_and_a_tightening() -> None:
    rule = functions.rule("org_policy_relaxed")
    base = OrgPolicyView("projects/p/policies/gcp.resourceLocations", "projects/p", "gcp.resourceLocations", (), None, False)
    assert rule.check(base, _params("org_policy_relaxed")) is None
    assert rule.check(dataclasses.replace(base, rules=(PolicyRule(deny_all=True),)), _params("org_policy_relaxed")) is None
    assert rule.check(dataclasses.replace(base, rules=(PolicyRule(enforce=True),)), _params("org_policy_relaxed")) is None
    for change in ({"deleted": True}, {"reset": True}, {"rules": (PolicyRule(allow_all=True),)},
                   {"rules": (PolicyRule(enforce=False),)}, {"rules": (PolicyRule(enforce=True, condition="x"),)},
                   {"rules": (PolicyRule(allowed_values=("in:us-locations", "in:eu-locations")),), "written": True},
                   {"inherit_from_parent": False}):
        assert rule.check(dataclasses.replace(base, **change), _params("org_policy_relaxed")) is not None, change
    # A state with values (a sweep's record, a live read) is not a change: a finding only where the
    # values are not the declared baseline.
    state = dataclasses.replace(base, rules=(PolicyRule(allowed_values=("in:us-locations",)),))
    assert rule.check(state, _params("org_policy_relaxed")) is None
    us = {"rules": [{"values": {"allowedValues": ["in:us-locations"]}}]}
    eu = {"rules": [{"values": {"allowedValues": ["in:eu-locations"]}}]}
    assert rule.check(state, _params("org_policy_relaxed", baseline={"gcp.resourceLocations": us})) is None
    f = rule.check(state, _params("org_policy_relaxed", baseline={"gcp.resourceLocations": eu}))
    assert f is not None and f.observed["how"] == ["allowed values differ from the baseline"]


def test_compute_first_entries_are_judged_and_their_last_entries_are_not() -> None:
    first = parse(load_json(RULE_FIXTURES / "armor_policy_detached" / "positive_detached.json"))
    assert skip_reason(first) is None
    raw = load_json(RULE_FIXTURES / "armor_policy_detached" / "negative_attached.json")
    raw["operation"] = {"id": "operation-x", "producer": "compute.googleapis.com", "last": True}
    raw["protoPayload"]["request"] = {"@type": "type.googleapis.com/compute.backendServices.setSecurityPolicy"}
    last = parse(raw)
    assert functions.rule("armor_policy_detached").evaluate(last, _params("armor_policy_detached")) is None


def test_traffic_enrichment_reads_the_serving_revisions_live(standin: Standin) -> None:
    from shared.actions import ActionContext
    from shared.model import Action, Mode

    svc = "projects/phi-prod/locations/us-east4/services/phi-api"
    standin.admin.seed({
        "services": [{"name": svc, "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "template": {
            "serviceAccount": "phi-app-sa@phi-prod.iam.gserviceaccount.com",
            "encryptionKey": "projects/phi-prod/locations/us-east4/keyRings/phi/cryptoKeys/run",
            "containers": [{"image": "us-docker.pkg.dev/phi-prod/app/api:8"}]}}],
        "revisions": [{"name": f"{svc}/revisions/phi-api-00007-old", "containers": [{"image": "us-docker.pkg.dev/phi-prod/app/api:7"}],
                       "serviceAccount": "123456789012-compute@developer.gserviceaccount.com"}],
    })
    rule = functions.rule("run_traffic_revision")
    f = rule.evaluate(parse(load_json(RULE_FIXTURES / "run_traffic_revision" / "positive_v2_all_traffic_to_an_old_revision.json")),
                      _params("run_traffic_revision"))
    assert f is not None and f.resource == svc
    facts = rule.enrich(f, _params("run_traffic_revision"), ActionContext(mode=Mode.ALERT, action=Action.ALERT))
    assert facts["revisions"]["phi-api-00007-old"]["fails"] == ["run_default_service_account", "run_cmek_missing"]


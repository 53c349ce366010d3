"""Every rule's action requests reach a writer that holds its writes (--functions split).

Each writer's subscription filters on `attributes.product` ("run" or "kms", tests/test_deploy.py),
so a request whose product is neither is discarded by Pub/Sub: a finding to act on that nothing
acts on or reports. Before this test, rules outside run_* and kms_* (org_policy_relaxed,
iam_agent_binding_removed, function_*, rampart_tamper, armor_policy_detached) had products of
their own.

One rule's writes span both writers: iam_outsider_member strips outsiders from Cloud Run,
functions, projects and KMS keys alike. Its requests about a key ring or key go to act-kms (the only
writer with Cloud KMS writes, conditioned to KMS resources), the others to act-run. Until that
routing, a revert on a key went to act-run, was refused and recorded FAILED."""

from __future__ import annotations

import pytest

import functions
from shared.model import Action
from shared.permissions import identity_permissions
from shared.split import PRODUCTS, product

_READS = (".get", ".getIamPolicy", ".list")
KEY = "projects/p/locations/us-east4/keyRings/r/cryptoKeys/k"
OTHERS = ("projects/p/locations/us-east4/services/s", "projects/p/locations/us-east4/functions/f", "projects/p",
          "folders/123", "organizations/456")


@pytest.mark.parametrize("rule_id", functions.RULE_IDS)
def test_each_rules_requests_go_to_a_writer_that_holds_its_writes(rule_id: str) -> None:
    rule = functions.rule(rule_id)
    writer_of = {v: k for k, v in PRODUCTS.items()}
    for action in rule.actions:
        if action is Action.ALERT:
            continue
        perms = [*rule.permissions.get(action.value, ()), *rule.permissions.get("alert", ())]
        writes = {p for p in perms if not p.endswith(_READS)}
        on_kms = {p for p in writes if p.startswith("cloudkms.")}
        # A KMS rule's every request goes to act-kms, so all its writes must be Cloud KMS ones.
        needs = [(KEY, on_kms)] + [(other, writes - on_kms) for other in OTHERS]
        if rule_id.startswith("kms_"):
            needs = [(r, writes) for r, _ in needs]
        for resource, needed in needs:
            held = set(identity_permissions(perms)[writer_of[product(rule_id, resource)]])
            assert needed <= held, (rule_id, action.value, resource, needed - held)


@pytest.mark.parametrize(("rule_id", "resource", "expected"), [
    ("iam_outsider_member", KEY, "kms"),
    ("iam_outsider_member", "projects/p/locations/us-east4/keyRings/r", "kms"),
    ("iam_outsider_member", "projects/p/locations/us-east4/services/s", "run"),
    ("iam_outsider_member", "projects/p", "run"),
    ("kms_version_disabled", f"{KEY}/cryptoKeyVersions/1", "kms"),
    ("kms_public_member", KEY, "kms"),
    ("run_ingress_open", "projects/p/locations/us-east4/services/s", "run"),
    ("armor_policy_detached", "projects/p/global/backendServices/b", "run"),
    # a name that only looks like a key somewhere inside is not one
    ("iam_outsider_member", f"projects/p/locations/us-east4/services/{KEY}", "run"),
])
def test_the_product_of_a_request(rule_id: str, resource: str, expected: str) -> None:
    assert product(rule_id, resource) == expected

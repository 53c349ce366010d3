"""Every rule's action requests reach a writer that holds its writes (--functions split).

Each writer's subscription filters on `attributes.product` ("run" or "kms", tests/test_deploy.py),
so a request whose product is neither is discarded by Pub/Sub: a finding to act on that nothing
acts on or reports. Before this test, rules outside run_* and kms_* (org_policy_relaxed,
iam_agent_binding_removed, function_*, rampart_tamper, armor_policy_detached) had products of
their own.

One rule's writes span both writers: iam_outsider_member's revert strips outsiders from Cloud
Run, functions, projects and KMS keys alike. Its requests go to act-run, which holds no Cloud KMS
write (the KMS writer's role is conditioned to KMS resources): on a key the revert is refused
and recorded FAILED (alerted), not lost. Routing it by resource is left to do; KNOWN_SPLIT says
so exactly, so the test fails if that changes either way."""

from __future__ import annotations

import pytest

import functions
from shared.model import Action
from shared.permissions import identity_permissions
from shared.split import PRODUCTS, product

_READS = (".get", ".getIamPolicy", ".list")
KNOWN_SPLIT = {"iam_outsider_member"}


@pytest.mark.parametrize("rule_id", functions.RULE_IDS)
def test_each_rules_requests_go_to_a_writer_that_holds_its_writes(rule_id: str) -> None:
    rule = functions.rule(rule_id)
    writer = {v: k for k, v in PRODUCTS.items()}[product(rule_id)]
    for action in rule.actions:
        if action is Action.ALERT:
            continue
        perms = [*rule.permissions.get(action.value, ()), *rule.permissions.get("alert", ())]
        missing = {p for p in perms if not p.endswith(_READS)} - set(identity_permissions(perms)[writer])
        if rule_id in KNOWN_SPLIT:
            assert missing and all(p.startswith("cloudkms.") for p in missing), (rule_id, missing)
        else:
            assert missing == set(), (rule_id, action.value, writer)

"""The sweep identity's IAM permissions: what `infra/sweep.sh` puts in its custom role.

Asset search at the scope; the enabled rules' reads (their actions re-read live state even in
dry-run, and a record without data is read in full); their writes only when `sweep.max_mode` is
`enforce`. Reads are told from writes by the permission's verb.
"""

from __future__ import annotations

from shared.model import Mode

ASSET_SEARCH = ("cloudasset.assets.searchAllIamPolicies", "cloudasset.assets.searchAllResources")
# What a record read in full needs (shard.read_in_full), whatever the rules' actions.
FULL_READS = ("cloudfunctions.functions.get", "cloudkms.cryptoKeyVersions.get", "cloudkms.cryptoKeys.get",
              "cloudkms.keyRings.get", "orgpolicy.policy.get", "run.jobs.get", "run.services.get", "run.workerPools.get")
_READ_VERBS = ("get", "list", "getIamPolicy")


def is_read(permission: str) -> bool:
    verb = permission.rsplit(".", 1)[-1]
    return verb in _READ_VERBS or verb.startswith("search")


def sweep_permissions(rule_permissions: list[str], max_mode: Mode) -> list[str]:
    """Sorted permissions of the sweep's role, from the enabled rules' action permissions."""
    kept = rule_permissions if max_mode is Mode.ENFORCE else [p for p in rule_permissions if is_read(p)]
    return sorted({*ASSET_SEARCH, *FULL_READS, *kept})

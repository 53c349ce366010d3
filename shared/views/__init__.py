"""Typed, read-only views of the resources rules judge, one module per kind of resource.

Rules never see where a view came from. Each module holds the view dataclasses and one small
adapter per source, and all the raw-dict digging:

- `from_entry(event, name)`: what an audit entry says the resource is now (its request or
  response body; for an IAM policy also the prior policy, rebuilt from the entry's delta);
- `from_live(obj)`: a live API read (a google-cloud client object, or its REST JSON);
- `from_asset(record)`: a Cloud Asset Inventory record (a `SearchAllResources` /
  `SearchAllIamPolicies` result, or an asset feed's `asset`).

`Kind` ties a kind of view to its adapters and to the Cloud Asset Inventory asset types it
covers, so the rules of a kind, the pipeline and a sweep all build views the same way.

Modules and their kinds: `run` (SERVICE, with the revisions serving traffic; JOB; WORKER_POOL),
`functions` (FUNCTION: a Cloud Run function, Cloud Functions v2 API), `kms` (KEY_RING, KEY,
KEY_VERSION), `iam` (POLICY: an IAM policy with its conditions, on any resource), `orgpolicy`
(ORG_POLICY), `names` (resource names of every source).
And for the doors of issue 13: `workload` (job or worker pool, one kind for both), `traffic`
(traffic targets with tags), `scope` (which resource a policy is on, projects and folders
included), `keyposture` (a key's rotation, destroy delay, protection level and primary),
`guardrail` (what a write did to an org policy: deletions and v1 writes included),
`denypolicy`, `armor` (Cloud Armor writes) and `plumbing` (writes to Rampart's own resources).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from shared.event import AuditEvent

V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class Kind(Generic[V]):
    """One kind of view and how each source makes one. An adapter returns None when its
    input does not describe a resource of this kind (a request with no body, another asset type)."""

    name: str  # e.g. "run.service", "kms.cryptoKeyVersion", "iam.policy"
    asset_types: tuple[str, ...]  # Cloud Asset Inventory types whose records make this view
    locate: Callable[[AuditEvent], str | None]  # the canonical name of the resource an entry concerns
    from_entry: Callable[[AuditEvent, str], V | None]
    from_live: Callable[..., V | None]  # (client object or REST JSON); an IAM policy also takes its resource name
    from_asset: Callable[[Any], V | None]

"""The seed format: load a seed file, apply one to the store (all or nothing), dump the state in it.

Each registered API's collections are seed keys, applied in registration order (so parents come
before children); IAM `policies` come last, as they need their resources; `caller` first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from infra.local.standin import iam
from infra.local.standin.core import Api, ApiError, Collection, Json, bad, clone
from infra.local.standin.store import POLICIES, Store


def load_seed(path: str | Path) -> Json:
    """Read a seed file, saying which file is wrong when it is not a JSON object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"seed {path}: expected a readable JSON file, found error {e}") from e
    if not isinstance(data, dict):
        raise TypeError(f"seed {path}: expected a JSON object, found {type(data).__name__}")
    return data


def collections(apis: Iterable[Api]) -> list[Collection]:
    return [c for api in apis for c in api.collections]


def seed(store: Store, apis: Iterable[Api], data: Json) -> Json:
    """Upsert resources from the seed format; all or nothing."""
    kinds = collections(apis)
    allowed = {c.key for c in kinds} | {POLICIES, "caller"}
    unknown = set(data) - allowed
    if unknown:
        bad(f"seed: unknown key(s) {sorted(unknown)}; expected some of {sorted(allowed)}")
    with store.lock:
        snap = store.snapshot()
        try:
            return _seed(store, kinds, data)
        except ApiError:
            store.restore(snap)
            raise
        except (KeyError, TypeError, AttributeError, ValueError) as e:
            store.restore(snap)
            bad(f"seed: malformed entry ({type(e).__name__}: {e})")


def _seed(store: Store, kinds: list[Collection], data: Json) -> Json:
    if "caller" in data:
        store.caller = str(data["caller"])
    for kind in kinds:
        items = data.get(kind.key) or []
        if not isinstance(items, list):
            bad(f"seed.{kind.key}: expected a list, found {type(items).__name__}")
        for i, item in enumerate(items):
            if not isinstance(item, dict) or not kind.name_re.match(str(item.get("name", ""))):
                bad(f"seed.{kind.key}[{i}].name: expected a name matching {kind.name_re.pattern}, found "
                    f"{item.get('name') if isinstance(item, dict) else item!r}")
            kind.seed(store, i, clone(item))
    policies = data.get(POLICIES) or {}
    if not isinstance(policies, dict):
        bad(f"seed.policies: expected an object keyed by resource name, found {type(policies).__name__}")
    for resource, policy in policies.items():
        if not store.resource_exists(resource):
            bad(f"seed.policies[{resource!r}]: no such resource in the state; seed it first")
        p = iam.normalize_policy(policy)
        p.setdefault("etag", iam.policy_etag(store))
        iam.put_policy(store, resource, p)
    return {k: len(data.get(k) or []) for k in (*(c.key for c in kinds), POLICIES)}


def state(store: Store, apis: Iterable[Api]) -> Json:
    """Everything, in the seed format."""
    with store.lock:
        out: Json = {c.key: [c.view(store, n) for n in list(store.tables[c.key])] for c in collections(apis)}
        out[POLICIES] = store.tables[POLICIES]
        out["caller"] = store.caller
        return clone(out)

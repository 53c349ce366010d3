"""Organization Policy API v2 (orgpolicy.googleapis.com): policies on projects, folders and
organizations, as far as a guardrail restore needs them.

Checked against the discovery document `orgpolicy.v2.json`: every route names its discovery method id.

    GET|PATCH|DELETE /v2/{projects|folders|organizations}/X/policies/C   (PATCH: updateMask; etag checked)
    POST /v2/{projects|folders|organizations}/X/policies                  (409 ALREADY_EXISTS if present)
Each write gives the policy and its spec a new etag and the spec an updateTime.
"""

from __future__ import annotations

import base64
import re

from infra.local.standin.core import (
    SEG,
    Api,
    ApiError,
    Collection,
    Json,
    Response,
    Route,
    bad,
    clone,
    json_response,
    merge_patch,
    not_found,
)
from infra.local.standin.store import Store

POLICIES_V2 = "orgPolicies"
NAME_RE = re.compile(rf"^((?:projects|folders|organizations)/{SEG})/policies/({SEG})$")


def _table(store: Store) -> dict[str, Json]:
    return store.tables[POLICIES_V2]


def _stamp(store: Store, policy: Json) -> Json:
    etag = base64.b64encode(store.seq().to_bytes(6, "big")).decode()
    policy["etag"] = etag
    if isinstance(policy.get("spec"), dict):
        policy["spec"]["etag"] = etag
        policy["spec"]["updateTime"] = store.now()
    return policy


def _validate(policy: Json) -> None:
    spec = policy.get("spec")
    if spec is not None and not isinstance(spec, dict):
        bad(f"policy.spec: expected an object, found {type(spec).__name__}")
    for i, rule in enumerate((spec or {}).get("rules") or []):
        if not isinstance(rule, dict):
            bad(f"policy.spec.rules[{i}]: expected an object")
        kinds = [k for k in ("values", "allowAll", "denyAll", "enforce") if k in rule]
        if len(kinds) > 1:
            bad(f"policy.spec.rules[{i}]: expected one of values, allowAll, denyAll, enforce; found {kinds}")


def get_policy(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    found = _table(store).get(path["name"])
    if found is None:
        not_found(path["name"])
    return json_response(200, found)


def create_policy(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = body.get("name", "")
    m = NAME_RE.match(str(name))
    if not m or m.group(1) != path["parent"]:
        bad(f"policy.name: expected {path['parent']}/policies/CONSTRAINT, found {name!r}")
    if name in _table(store):
        raise ApiError(409, f"Policy {name} already exists", "ALREADY_EXISTS")
    new = {k: clone(v) for k, v in body.items() if k != "etag"}
    _validate(new)
    _table(store)[name] = _stamp(store, new)
    return json_response(200, new)


def patch_policy(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = path["name"]
    old = _table(store).get(name)
    if old is None:
        not_found(name)
    if body.get("etag") and body["etag"] != old.get("etag"):
        raise ApiError(409, f"Policy {name} changed since it was read (etag {body['etag']}, now {old.get('etag')})", "ABORTED")
    new = clone(old)
    for field in (params.get("updateMask") or "spec").split(","):
        field = field.strip()
        if field in ("spec", "dryRunSpec", "policy.spec", "policy.dry_run_spec"):
            key = "spec" if field.endswith("spec") and "dry" not in field.lower() else "dryRunSpec"
            if key in body:
                new[key] = clone(body[key])
            else:
                new.pop(key, None)
    _validate(new)
    _table(store)[name] = _stamp(store, new)
    return json_response(200, new)


def delete_policy(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    if _table(store).pop(path["name"], None) is None:
        not_found(path["name"])
    return json_response(200, {})


def _seed(store: Store, index: int, policy: Json) -> None:
    _validate(policy)
    _table(store)[policy["name"]] = _stamp(store, policy)


def _patch(store: Store, name: str, change: Json, actor: str) -> None:
    _table(store)[name] = _stamp(store, merge_patch(clone(_table(store)[name]), change))


def _routes(kind: str) -> tuple[Route, ...]:
    one = f"/v2/{{name={kind}/*/policies/*}}"
    return (
        Route("GET", one, f"orgpolicy.{kind}.policies.get", get_policy),
        Route("PATCH", one, f"orgpolicy.{kind}.policies.patch", patch_policy),
        Route("DELETE", one, f"orgpolicy.{kind}.policies.delete", delete_policy),
        Route("POST", f"/v2/{{parent={kind}/*}}/policies", f"orgpolicy.{kind}.policies.create", create_policy),
    )


API = Api(
    name="orgpolicy_v2",
    discovery="orgpolicy.v2.json",
    routes=tuple(r for kind in ("projects", "folders", "organizations") for r in _routes(kind)),
    collections=(Collection(POLICIES_V2, NAME_RE, seed=_seed, view=lambda store, name: _table(store)[name], patch=_patch,
                            delete=lambda store, name: _table(store).pop(name, None) and None),),
)

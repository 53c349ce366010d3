"""IAM policies (google.iam.v1), shared by every API whose resources carry one.

Each API's discovery document defines its own `getIamPolicy` / `setIamPolicy` / `testIamPermissions`
methods and `Policy` schema; `routes()` builds them for a resource pattern with that API's method ids.
"""

from __future__ import annotations

import base64
import binascii
import re

from infra.local.standin.core import (
    ApiError,
    Handler,
    Json,
    Response,
    Route,
    bad,
    clone,
    json_response,
    mask_paths,
    normalize_enums,
    not_found,
    seq,
)
from infra.local.standin.store import POLICIES, Store

IAM_LOG_TYPE = seq("LOG_TYPE_UNSPECIFIED", "ADMIN_READ", "DATA_WRITE", "DATA_READ")
IAM_POLICY_ENUMS: dict[str, dict[int, str]] = {"auditConfigs.auditLogConfigs.logType": IAM_LOG_TYPE}
MEMBER_PREFIXES = ("user:", "serviceAccount:", "group:", "domain:", "principal://", "principalSet://",
                   "deleted:", "projectOwner:", "projectEditor:", "projectViewer:")
MEMBER_EXACT = frozenset({"allUsers", "allAuthenticatedUsers"})
EMPTY_POLICY_ETAG = "ACAB"  # what IAM returns for a resource that never had a policy


def policy_etag(store: Store) -> str:
    # IAM etags are bytes, base64 on the wire; these start "BwY" like real ones.
    return base64.b64encode(b"\x07\x06" + store.seq().to_bytes(6, "big")).decode()


def policy(store: Store, resource: str) -> Json:
    return store.tables[POLICIES].get(resource) or {"version": 1, "etag": EMPTY_POLICY_ETAG}


def put_policy(store: Store, resource: str, new: Json) -> None:
    store.tables[POLICIES][resource] = new


def normalize_policy(raw: object) -> Json:
    """Validate a Policy the way IAM does and return it with enums as names and empty parts dropped."""
    if not isinstance(raw, dict):
        bad(f"policy: expected an object, found {type(raw).__name__}")
    pol: Json = clone(raw)
    normalize_enums(pol, IAM_POLICY_ENUMS)
    version = pol.get("version", 1)
    if version not in (0, 1, 3):
        bad(f"policy.version: expected 1 or 3, found {version!r}")
    bindings = []
    for i, b in enumerate(pol.get("bindings") or []):
        role = b.get("role") if isinstance(b, dict) else None
        if not isinstance(role, str) or not re.match(r"^(roles/|projects/[^/]+/roles/|organizations/[^/]+/roles/)", role):
            bad(f"policy.bindings[{i}].role: expected roles/NAME or a custom role name, found {role!r}")
        members: list[str] = []
        for m in b.get("members") or []:
            if not isinstance(m, str) or not (m in MEMBER_EXACT or m.startswith(MEMBER_PREFIXES)):
                bad(f"policy.bindings[{i}].members: invalid member {m!r}: expected user:, "
                    "serviceAccount:, group:, domain:, principal://, allUsers or allAuthenticatedUsers")
            if m not in members:
                members.append(m)
        if not members:
            continue  # IAM drops bindings that lose their last member
        nb: Json = {"role": role, "members": members}
        if b.get("condition"):
            if version != 3:
                bad(f"policy.bindings[{i}] has a condition: conditional role bindings need policy "
                    f"version 3, found version {version}")
            nb["condition"] = b["condition"]
        bindings.append(nb)
    out: Json = {"version": version or 1}
    if bindings:
        out["bindings"] = bindings
    if pol.get("auditConfigs"):
        out["auditConfigs"] = pol["auditConfigs"]
    if "etag" in pol:
        etag = pol["etag"]
        try:
            base64.b64decode(etag, validate=True)
        except (binascii.Error, TypeError, ValueError):
            bad(f"policy.etag: expected base64, found {etag!r}")
        out["etag"] = etag
    return out


# ---------------------------------------------------------------------------------------------
# Handlers
# ---------------------------------------------------------------------------------------------

def _require(store: Store, resource: str) -> None:
    if not store.resource_exists(resource):
        not_found(resource)


def get_policy(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    resource = path["resource"]
    _require(store, resource)
    requested = params.get("options.requestedPolicyVersion", "0") or "0"
    if requested not in ("0", "1", "3"):
        bad(f"options.requestedPolicyVersion: expected 0, 1 or 3, found {requested!r}")
    return json_response(200, policy(store, resource))


def set_policy(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    resource = path["resource"]
    _require(store, resource)
    unknown = set(body) - {"policy", "updateMask"}
    if unknown:
        bad(f"Invalid JSON payload received. Unknown name(s) {sorted(unknown)}")
    pol = normalize_policy(body.get("policy"))
    current = policy(store, resource)
    if pol.get("etag") and pol["etag"] != current["etag"]:
        raise ApiError(409, "There were concurrent policy changes. Please retry the whole "
                            "read-modify-write with exponential backoff.", "ABORTED")
    mask = mask_paths(body.get("updateMask")) or ["bindings", "etag"]
    new = {k: v for k, v in current.items() if k != "etag"}
    for field_name in mask:
        if field_name == "etag":
            continue
        if field_name not in ("bindings", "auditConfigs", "version"):
            bad(f"updateMask: expected paths among bindings, etag, auditConfigs, version; "
                f"found {field_name!r}")
        if field_name in pol:
            new[field_name] = pol[field_name]
        else:
            new.pop(field_name, None)
    if "bindings" in mask:
        new["version"] = pol.get("version", 1)
    new["etag"] = policy_etag(store)
    put_policy(store, resource, new)
    return json_response(200, new)


def check_permissions(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    _require(store, path["resource"])
    perms = body.get("permissions") or []
    return json_response(200, {"permissions": perms} if perms else {})


def routes(version: str, resource: str, method_prefix: str) -> tuple[Route, ...]:
    """The three IAM methods on `resource` (a path template such as `projects/*/locations/*/services/*`)
    under the API `version` prefix, with discovery ids `<method_prefix>.getIamPolicy` etc."""
    table: tuple[tuple[str, str, Handler], ...] = (
        ("GET", "getIamPolicy", get_policy),
        ("POST", "setIamPolicy", set_policy),
        ("POST", "testIamPermissions", check_permissions),
    )
    return tuple(Route(verb, f"/{version}/{{resource={resource}}}:{name}", f"{method_prefix}.{name}", fn)
                 for verb, name, fn in table)

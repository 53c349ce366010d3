"""Cloud Resource Manager API v3 (cloudresourcemanager.googleapis.com): projects, folders and
organizations, as far as their IAM policies go.

Checked against the discovery document `cloudresourcemanager.v3.json`: every route names its
discovery method id. Unlike Run and KMS, `getIamPolicy` is a POST here (its options travel in
the body).

    GET  /v3/projects/P            POST /v3/projects/P:getIamPolicy|:setIamPolicy
    GET  /v3/folders/F             POST /v3/folders/F:getIamPolicy|:setIamPolicy
    GET  /v3/organizations/O       POST /v3/organizations/O:getIamPolicy|:setIamPolicy
IAM behaves as for every other API (iam.py): etags, conditions need version 3, stale etag -> 409.
"""

from __future__ import annotations

import re

from infra.local.standin import iam
from infra.local.standin.core import (
    SEG,
    Api,
    Collection,
    Handler,
    Json,
    Response,
    Route,
    clone,
    json_response,
    merge_patch,
    not_found,
)
from infra.local.standin.store import Store

KINDS = ("projects", "folders", "organizations")


def _collection(kind: str) -> Collection:
    name_re = re.compile(rf"^{kind}/{SEG}$")

    def seed(store: Store, index: int, entry: Json) -> None:
        entry.setdefault("state", "ACTIVE")
        store.tables[kind][entry["name"]] = entry

    def view(store: Store, name: str) -> Json:
        return store.tables[kind][name]

    def patch(store: Store, name: str, change: Json, actor: str) -> None:
        store.tables[kind][name] = merge_patch(clone(store.tables[kind][name]), change)

    return Collection(kind, name_re, seed=seed, view=view, patch=patch)


def _get(kind: str) -> Handler:
    def get(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        found = store.tables[kind].get(path["name"])
        if found is None:
            not_found(path["name"])
        return json_response(200, found)

    return get


def _get_policy(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    requested = str((body.get("options") or {}).get("requestedPolicyVersion", 0))
    return iam.get_policy(store, path, {"options.requestedPolicyVersion": requested}, {})


def _routes(kind: str) -> tuple[Route, ...]:
    return (
        Route("GET", f"/v3/{{name={kind}/*}}", f"cloudresourcemanager.{kind}.get", _get(kind)),
        Route("POST", f"/v3/{{resource={kind}/*}}:getIamPolicy", f"cloudresourcemanager.{kind}.getIamPolicy", _get_policy),
        Route("POST", f"/v3/{{resource={kind}/*}}:setIamPolicy", f"cloudresourcemanager.{kind}.setIamPolicy", iam.set_policy),
    )


API = Api(
    name="cloudresourcemanager_v3",
    discovery="cloudresourcemanager.v3.json",
    routes=tuple(r for kind in KINDS for r in _routes(kind)),
    collections=tuple(_collection(kind) for kind in KINDS),
)

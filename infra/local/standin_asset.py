"""The stand-in's Cloud Asset Inventory API v1: `searchAllResources` and `searchAllIamPolicies`
(REST, JSON), answered from the resources the stand-in already holds.

Checked against Google's discovery document `cloudasset.v1.json` (shipped in
google-api-python-client's discovery_cache; tests/test_standin_asset.py compares every field this
module returns, and the query parameters it reads, with the document's schemas).

    GET /v1/{scope}:searchAllResources?assetTypes=...&pageSize=&pageToken=&readMask=&query=&orderBy=
    GET /v1/{scope}:searchAllIamPolicies?assetTypes=...&pageSize=&pageToken=&query=&orderBy=

`scope` is projects/P (id or number), folders/N or organizations/N. A project's number, folders
and organization come from the seed's `projects` list (`[{"name": "projects/P", "number": "123",
"folders": ["folders/1"], "organization": "organizations/9"}]`); a project not in it has a number derived from
its id and no folder or organization. Fidelity choices:
  * Page size is capped at 500 (as documented); 0 or absent means 100. Results are ordered by
    name; the page token is an opaque offset, as stable as the state between pages.
  * `versionedResources` is returned only when `readMask` asks for it (or `*`), as documented; each
    holds the resource as the stand-in's own API returns it (Run v2 Service, KMS v1 objects), with
    `version` "v2" or "v1".
  * `updateTime` is the resource's own updateTime where it has one (Run services); KMS objects have
    none, so their records carry `createTime` only.
  * `query` and `orderBy` are accepted only empty (the sweep sends neither); anything else is 400,
    so a caller relying on a filter the stand-in ignores finds out.
  * Only resources that have an IAM policy with bindings appear in searchAllIamPolicies.
  * A 403 on one scope (part of an organization the caller cannot search) is a fault:
    POST /_standin/faults {"path": "folders/7:search", "status": 403}.
"""

from __future__ import annotations

import base64
import re
import zlib
from collections.abc import Callable, Iterable
from typing import Any

Json = dict[str, Any]

DISCOVERY_DOCUMENT = "cloudasset.v1.json"
RUN_SERVICE = "run.googleapis.com/Service"
KEY_RING = "cloudkms.googleapis.com/KeyRing"
CRYPTO_KEY = "cloudkms.googleapis.com/CryptoKey"
KEY_VERSION = "cloudkms.googleapis.com/CryptoKeyVersion"
ASSET_TYPES = (RUN_SERVICE, KEY_RING, CRYPTO_KEY, KEY_VERSION)
MAX_PAGE = 500
DEFAULT_PAGE = 100
_SCOPE = r"(?P<scope>(?:projects|folders|organizations)/[^/:]+)"
# Fields returned when readMask is empty (the discovery document's readMask description lists them).
DEFAULT_FIELDS = frozenset({
    "name", "assetType", "project", "folders", "organization", "displayName", "description", "location",
    "labels", "tags", "effectiveTags", "networkTags", "kmsKeys", "createTime", "updateTime", "state",
    "additionalAttributes", "parentFullResourceName", "parentAssetType",
})


class AssetError(Exception):
    """An error the routes answer in google.rpc shape (the stand-in maps it to its ApiError)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def routes(app: Any) -> list[tuple[str, str, Callable[..., Any]]]:
    """(verb, path regex, handler) for the stand-in's route table; handlers take (path, params, body)."""
    api = AssetApi(app)
    return [
        ("GET", rf"/v1/{_SCOPE}:searchAllResources", api.search_resources),
        ("GET", rf"/v1/{_SCOPE}:searchAllIamPolicies", api.search_iam),
    ]


def project_info(projects: dict[str, Json], project: str) -> Json:
    """Number, folders and organization of `project` (seeded, or derived from its id)."""
    info = projects.get(project) or {}
    return {
        "number": str(info.get("number") or 100000000000 + zlib.crc32(project.encode()) % 900000000000),
        "folders": [str(f) for f in info.get("folders") or []],
        "organization": str(info.get("organization") or ""),
    }


PROJECT_RE = re.compile(r"^projects/[a-z][-a-z0-9]{4,28}[a-z0-9]$")


def seed_projects(projects: dict[str, Json], data: Any) -> int:
    """Store the seed's `projects` entries (where each project sits, for scopes); returns how many."""
    if data is None:
        return 0
    if not isinstance(data, list):
        raise ValueError(f"seed.projects: expected a list, found {type(data).__name__}")
    for i, info in enumerate(data):
        if not isinstance(info, dict) or not PROJECT_RE.match(str(info.get("name", ""))):
            raise ValueError(f"seed.projects[{i}].name: expected projects/PROJECT_ID")
        unknown = set(info) - {"name", "number", "folders", "organization"}
        if unknown:
            raise ValueError(f"seed.projects[{i}]: unknown key(s) {sorted(unknown)}; expected name, number, "
                             "folders, organization")
        folders = info.get("folders") or []
        if not isinstance(folders, list) or not all(isinstance(f, str) and re.match(r"^folders/\d+$", f) for f in folders):
            raise ValueError(f"seed.projects[{i}].folders: expected a list of folders/N")
        org = info.get("organization") or ""
        if org and not (isinstance(org, str) and re.match(r"^organizations/\d+$", org)):
            raise ValueError(f"seed.projects[{i}].organization: expected organizations/N")
        number = str(info.get("number") or "")
        if number and not number.isdigit():
            raise ValueError(f"seed.projects[{i}].number: expected digits")
        projects[info["name"].split("/", 1)[1]] = {"number": number, "folders": list(folders), "organization": org}
    return len(data)


class AssetApi:
    """The two search methods over the stand-in's store (called with the store's lock held)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    # -- scope and paging ---------------------------------------------------------------------

    def _in_scope(self, scope: str, project: str) -> bool:
        info = project_info(self.app.store.projects, project)
        kind, _, ident = scope.partition("/")
        if kind == "projects":
            return ident in (project, info["number"])
        if kind == "folders":
            return scope in info["folders"]
        return scope == info["organization"]

    @staticmethod
    def _page(params: dict[str, str], total: int) -> tuple[int, int]:
        raw_size, raw_token = params.get("pageSize") or "0", params.get("pageToken") or ""
        try:
            size = int(raw_size)
        except ValueError:
            raise AssetError(400, f"pageSize: expected an integer, found {raw_size!r}") from None
        size = DEFAULT_PAGE if size <= 0 else min(size, MAX_PAGE)
        start = 0
        if raw_token:
            try:
                start = int(base64.urlsafe_b64decode(raw_token.encode()).decode())
            except (ValueError, UnicodeDecodeError):
                raise AssetError(400, f"pageToken: not a token this API returned: {raw_token[:40]!r}") from None
            if not 0 <= start <= total:
                raise AssetError(400, "pageToken: out of range (the results changed since it was issued)")
        return start, size

    @staticmethod
    def _token(end: int, total: int) -> str | None:
        return base64.urlsafe_b64encode(str(end).encode()).decode() if end < total else None

    @staticmethod
    def _asset_types(params: dict[str, str]) -> tuple[str, ...]:
        raw = params.get("assetTypes") or ""
        wanted = tuple(t for t in raw.split(",") if t)
        return wanted or ASSET_TYPES

    @staticmethod
    def _no_query(params: dict[str, str]) -> None:
        for key in ("query", "orderBy"):
            if params.get(key):
                raise AssetError(400, f"{key}: the stand-in supports only an empty {key}, found {params[key][:80]!r}")

    # -- searchAllResources -------------------------------------------------------------------

    def _resources(self, types: tuple[str, ...]) -> Iterable[tuple[str, str, Json, str]]:
        """(asset type, API name, resource JSON, API version) of every resource of `types`."""
        s = self.app.store
        if RUN_SERVICE in types:
            for name, svc in s.services.items():
                yield RUN_SERVICE, name, svc, "v2"
        if KEY_RING in types:
            for name, ring in s.key_rings.items():
                yield KEY_RING, name, ring, "v1"
        if CRYPTO_KEY in types:
            for name in s.crypto_keys:
                yield CRYPTO_KEY, name, s.key_view(name), "v1"
        if KEY_VERSION in types:
            for name in s.versions:
                yield KEY_VERSION, name, s.settle(name), "v1"

    def search_resources(self, path: dict[str, str], params: dict[str, str], body: Json) -> Json:
        scope = path["scope"]
        self._no_query(params)
        types = self._asset_types(params)
        mask = {f.strip() for f in (params.get("readMask") or "").split(",") if f.strip()}
        fields = DEFAULT_FIELDS | {"versionedResources"} if "*" in mask else (mask or DEFAULT_FIELDS)
        unknown = fields - DEFAULT_FIELDS - {"versionedResources"}
        if unknown:
            raise AssetError(400, f"readMask: unknown or unsupported field(s) {sorted(unknown)}")
        rows = sorted((name, kind, res, version) for kind, name, res, version in self._resources(types)
                      if self._in_scope(scope, name.split("/", 2)[1]))
        start, size = self._page(params, len(rows))
        out: list[Json] = []
        for name, kind, res, version in rows[start:start + size]:
            out.append(self._result(kind, name, res, version, fields))
        resp: Json = {"results": out} if out else {}
        token = self._token(start + size, len(rows))
        if token:
            resp["nextPageToken"] = token
        return resp

    def _result(self, kind: str, name: str, res: Json, version: str, fields: set[str] | frozenset[str]) -> Json:
        service = kind.split("/", 1)[0]
        project = name.split("/", 2)[1]
        info = project_info(self.app.store.projects, project)
        parent, parent_type = _parent(kind, name)
        location = name.split("/")[3]
        full: Json = {
            "name": f"//{service}/{name}",
            "assetType": kind,
            "project": f"projects/{info['number']}",
            "folders": info["folders"],
            "organization": info["organization"],
            "displayName": name.rsplit("/", 1)[1],
            "description": res.get("description", ""),
            "location": location,
            "labels": dict(res.get("labels") or {}),
            "createTime": res.get("createTime", ""),
            "updateTime": res.get("updateTime", ""),
            "state": _state(kind, res),
            "parentFullResourceName": parent,
            "parentAssetType": parent_type,
            "versionedResources": [{"version": version, "resource": res}],
        }
        if kind == RUN_SERVICE and (res.get("template") or {}).get("encryptionKey"):
            full["kmsKeys"] = [res["template"]["encryptionKey"]]
        # Empty values are left out, as proto3 JSON does.
        return {k: v for k, v in full.items() if k in fields and v not in ("", [], {}, None)}

    # -- searchAllIamPolicies -----------------------------------------------------------------

    def search_iam(self, path: dict[str, str], params: dict[str, str], body: Json) -> Json:
        scope = path["scope"]
        self._no_query(params)
        types = self._asset_types(params)
        s = self.app.store
        rows: list[tuple[str, str, Json]] = []
        for resource, policy in s.policies.items():
            if not policy.get("bindings"):
                continue
            kind = _kind_of(s, resource)
            if kind is None or kind not in types or not self._in_scope(scope, resource.split("/", 2)[1]):
                continue
            rows.append((resource, kind, policy))
        rows.sort(key=lambda r: r[0])
        start, size = self._page(params, len(rows))
        out = []
        for resource, kind, policy in rows[start:start + size]:
            info = project_info(s.projects, resource.split("/", 2)[1])
            entry: Json = {
                "resource": f"//{kind.split('/', 1)[0]}/{resource}",
                "assetType": kind,
                "project": f"projects/{info['number']}",
                "folders": info["folders"],
                "organization": info["organization"],
                "policy": {k: policy[k] for k in ("version", "bindings", "etag", "auditConfigs") if k in policy},
            }
            out.append({k: v for k, v in entry.items() if v not in ("", [], None)})
        resp: Json = {"results": out} if out else {}
        token = self._token(start + size, len(rows))
        if token:
            resp["nextPageToken"] = token
        return resp


def _kind_of(store: Any, name: str) -> str | None:
    if name in store.services:
        return RUN_SERVICE
    if name in store.key_rings:
        return KEY_RING
    if name in store.crypto_keys:
        return CRYPTO_KEY
    if name in store.versions:
        return KEY_VERSION
    return None


def _parent(kind: str, name: str) -> tuple[str, str]:
    if kind in (RUN_SERVICE, KEY_RING):
        return f"//cloudresourcemanager.googleapis.com/projects/{name.split('/', 2)[1]}", \
            "cloudresourcemanager.googleapis.com/Project"
    parent = name.rsplit("/", 2)[0]
    return f"//cloudkms.googleapis.com/{parent}", KEY_RING if kind == CRYPTO_KEY else CRYPTO_KEY


def _state(kind: str, res: Json) -> str:
    if kind == KEY_VERSION:
        return str(res.get("state") or "")
    if kind == RUN_SERVICE:
        cond = res.get("terminalCondition") or {}
        return "ACTIVE" if cond.get("state") == "CONDITION_SUCCEEDED" else str(cond.get("state") or "")
    return ""


"""Compute Engine API v1 (compute.googleapis.com), as far as the Cloud Armor rule uses it: a
backend service (global or regional) and the network endpoint groups behind it, to say whether
it fronts Cloud Run through a serverless NEG, and setSecurityPolicy, to attach a policy again.

Checked against the discovery document `compute.v1.json` (servicePath `compute/v1/`): every
route names its discovery method id.

    GET /compute/v1/projects/P/global/backendServices/B            compute.backendServices.get
    GET /compute/v1/projects/P/regions/R/backendServices/B         compute.regionBackendServices.get
    GET /compute/v1/projects/P/regions/R/networkEndpointGroups/N   compute.regionNetworkEndpointGroups.get
    GET /compute/v1/projects/P/zones/Z/networkEndpointGroups/N     compute.networkEndpointGroups.get
    POST /compute/v1/projects/P/global/backendServices/B/setSecurityPolicy
                                                                   compute.backendServices.setSecurityPolicy
    POST /compute/v1/projects/P/regions/R/backendServices/B/setSecurityPolicy
                                                                   compute.regionBackendServices.setSecurityPolicy

Seed entries are named by their path (`projects/P/global/backendServices/B`); a GET answers the
Compute shape: `name` the short name, `selfLink` the full URL (BackendService,
NetworkEndpointGroup schemas), `backends[].group` full NEG URLs as the seed gives them, and a
`fingerprint` (BackendService: "a hash of the contents"), which moves whenever the stored
backend changes.

setSecurityPolicy takes a SecurityPolicyReference `{securityPolicy}` (a policy URL or
`projects/P/{global|regions/R}/securityPolicies/S` path; empty or absent detaches) and answers a
compute Operation (`compute#operation`, `operationType` "setSecurityPolicy", `targetLink` the
backend's URL). The stand-in applies it at once, so the Operation it returns is already DONE;
the real API may answer RUNNING first. A policy in a scope other than the backend's (a regional
policy on a global backend) is refused 400, as is a malformed reference; whether the policy
exists is not checked (the stand-in keeps no security policies).
"""

from __future__ import annotations

import base64
import json
import re
import zlib
from collections.abc import Callable

from infra.local.standin.core import (
    SEG,
    Api,
    Collection,
    Handler,
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

BACKENDS = "backendServices"
NEGS = "networkEndpointGroups"
SELF_LINK = "https://www.googleapis.com/compute/v1/"
BACKEND_RE = re.compile(rf"^projects/{SEG}/(?:global|regions/{SEG})/backendServices/{SEG}$")
NEG_RE = re.compile(rf"^projects/{SEG}/(?:regions|zones)/{SEG}/networkEndpointGroups/{SEG}$")
NEG_TYPES = ("GCE_VM_IP", "GCE_VM_IP_PORT", "GCE_VM_IP_PORTMAP", "INTERNET_FQDN_PORT", "INTERNET_IP_PORT",
             "NON_GCP_PRIVATE_IP_PORT", "PRIVATE_SERVICE_CONNECT", "SERVERLESS")


def _answer(stored: Json) -> Json:
    out = clone(stored)
    path = out["name"]
    out["name"] = path.rsplit("/", 1)[-1]
    out["selfLink"] = SELF_LINK + path
    out.setdefault("id", str(zlib.crc32(path.encode())))
    if "backendServices" in path:
        digest = zlib.crc32(json.dumps(stored, sort_keys=True).encode()).to_bytes(4, "big")
        out["fingerprint"] = base64.b64encode(digest * 2).decode()
    return out


POLICY_RE = re.compile(rf"^(?:{re.escape(SELF_LINK)})?projects/({SEG})/(global|regions/{SEG})/securityPolicies/({SEG})$")


def _set_security_policy(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    scope = f"regions/{path['region']}" if "region" in path else "global"
    name = f"projects/{path['project']}/{scope}/backendServices/{path['backendService']}"
    found = store.tables[BACKENDS].get(name)
    if found is None:
        not_found(name)
    ref = body.get("securityPolicy") or ""
    if not isinstance(ref, str):
        bad("securityPolicy: expected a string")
    if ref:
        m = POLICY_RE.match(ref)
        if m is None:
            bad("securityPolicy: expected a security policy URL or projects/P/{global|regions/R}/securityPolicies/S")
        if m.group(2) != scope:
            bad(f"securityPolicy: a {m.group(2)} policy cannot be attached to a {scope} backend service")
        found["securityPolicy"] = f"{SELF_LINK}projects/{m.group(1)}/{m.group(2)}/securityPolicies/{m.group(3)}"
    else:
        found.pop("securityPolicy", None)
    n = store.seq()
    op_name = f"operation-{n}-setsecuritypolicy"
    op: Json = {
        "kind": "compute#operation", "id": str(1000 + n), "name": op_name, "operationType": "setSecurityPolicy",
        "targetLink": SELF_LINK + name, "targetId": _answer(found)["id"], "status": "DONE", "progress": 100,
        "user": "rampart@stand-in", "insertTime": store.now(), "startTime": store.now(), "endTime": store.now(),
        "selfLink": f"{SELF_LINK}projects/{path['project']}/{scope}/operations/{op_name}",
    }
    if "region" in path:
        op["region"] = f"{SELF_LINK}projects/{path['project']}/{scope}"
    return json_response(200, op)


def _getter(table: str, leaf: str, var: str) -> Handler:
    def get(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
        scope = f"regions/{path['region']}" if "region" in path else f"zones/{path['zone']}" if "zone" in path else "global"
        name = f"projects/{path['project']}/{scope}/{leaf}/{path[var]}"
        found = store.tables[table].get(name)
        if found is None:
            not_found(name)
        return json_response(200, _answer(found))

    return get


def _seed_backend(store: Store, index: int, entry: Json) -> None:
    backends = entry.get("backends", [])
    if not isinstance(backends, list) or not all(isinstance(b, dict) and isinstance(b.get("group", ""), str) for b in backends):
        bad(f"seed.backendServices[{index}].backends: expected a list of {{group: URL}}")
    entry.setdefault("kind", "compute#backendService")
    store.tables[BACKENDS][entry["name"]] = entry


def _seed_neg(store: Store, index: int, entry: Json) -> None:
    kind = entry.get("networkEndpointType", "GCE_VM_IP_PORT")
    if kind not in NEG_TYPES:
        bad(f"seed.networkEndpointGroups[{index}].networkEndpointType: expected one of {NEG_TYPES}, found {kind!r}")
    entry["networkEndpointType"] = kind
    entry.setdefault("kind", "compute#networkEndpointGroup")
    store.tables[NEGS][entry["name"]] = entry


def _collection(key: str, name_re: re.Pattern[str], seed: Callable[[Store, int, Json], None]) -> Collection:
    def patch(store: Store, name: str, change: Json, actor: str) -> None:
        store.tables[key][name] = merge_patch(clone(store.tables[key][name]), change)

    return Collection(key, name_re, seed=seed, view=lambda store, name: clone(store.tables[key][name]), patch=patch,
                      delete=lambda store, name: store.tables[key].pop(name, None) and None)


_P = "/compute/v1/projects/{project=*}"
API = Api(
    name="compute_v1",
    discovery="compute.v1.json",
    routes=(
        Route("GET", f"{_P}/global/backendServices/{{backendService=*}}", "compute.backendServices.get",
              _getter(BACKENDS, "backendServices", "backendService")),
        Route("GET", f"{_P}/regions/{{region=*}}/backendServices/{{backendService=*}}", "compute.regionBackendServices.get",
              _getter(BACKENDS, "backendServices", "backendService")),
        Route("GET", f"{_P}/regions/{{region=*}}/networkEndpointGroups/{{networkEndpointGroup=*}}",
              "compute.regionNetworkEndpointGroups.get", _getter(NEGS, "networkEndpointGroups", "networkEndpointGroup")),
        Route("GET", f"{_P}/zones/{{zone=*}}/networkEndpointGroups/{{networkEndpointGroup=*}}",
              "compute.networkEndpointGroups.get", _getter(NEGS, "networkEndpointGroups", "networkEndpointGroup")),
        Route("POST", f"{_P}/global/backendServices/{{backendService=*}}/setSecurityPolicy",
              "compute.backendServices.setSecurityPolicy", _set_security_policy),
        Route("POST", f"{_P}/regions/{{region=*}}/backendServices/{{backendService=*}}/setSecurityPolicy",
              "compute.regionBackendServices.setSecurityPolicy", _set_security_policy),
    ),
    collections=(_collection(BACKENDS, BACKEND_RE, _seed_backend), _collection(NEGS, NEG_RE, _seed_neg)),
)

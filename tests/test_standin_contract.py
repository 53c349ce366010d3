"""Every route the stand-in serves is checked against the discovery document its API module names
(google-api-python-client ships Google's discovery documents): same verb, same path."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import googleapiclient
import pytest

from infra.local.standin.apis import APIS
from infra.local.standin.core import Route

DOCUMENTS = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents"


@cache
def _methods(document: str) -> dict[str, dict[str, Any]]:
    doc = json.loads((DOCUMENTS / document).read_text())
    out: dict[str, dict[str, Any]] = {}

    def walk(resources: dict[str, Any]) -> None:
        for res in resources.values():
            for m in res.get("methods", {}).values():
                out[m["id"]] = m
            walk(res.get("resources", {}))

    walk(doc.get("resources", {}))
    return out


CASES = [(api.discovery, r) for api in APIS for r in api.routes]


@pytest.mark.parametrize(("document", "route"), CASES, ids=[f"{d}:{r.discovery_id}" for d, r in CASES])
def test_route_matches_its_discovery_method(document: str, route: Route) -> None:
    method = _methods(document).get(route.discovery_id)
    assert method is not None, f"{route.discovery_id} is not a method of {document}"
    assert method["httpMethod"] == route.method, route
    assert (method.get("flatPath") or method["path"]) == route.flat_path(), route

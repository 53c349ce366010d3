"""Cloud Logging API v2 (logging.googleapis.com), log sinks only: what a tamper restore needs.

Checked against the discovery document `logging.v2.json`: every route names its discovery method id.

    GET|PATCH /v2/projects/P/sinks/S   (also under folders/F and organizations/O; PATCH: updateMask)
A sink's `writerIdentity`, `createTime` and `updateTime` are output only; a PATCH without
updateMask replaces `filter`, `destination`, `exclusions`, `disabled` and `description`
(the documented default mask) and 400s without a destination, as the API does.
"""

from __future__ import annotations

import re
import zlib

from infra.local.standin.core import (
    SEG,
    Api,
    Collection,
    Json,
    Response,
    Route,
    bad,
    clone,
    json_response,
    mask_paths,
    merge_patch,
    not_found,
)
from infra.local.standin.store import Store

SINKS = "sinks"
SINK_RE = re.compile(rf"^(?:projects|folders|organizations)/{SEG}/sinks/{SEG}$")
OUTPUT_ONLY = frozenset({"name", "writerIdentity", "createTime", "updateTime", "resourceName"})
DEFAULT_MASK = ("filter", "destination", "exclusions", "disabled", "description")


def _sink(store: Store, name: str) -> Json:
    sink = store.tables[SINKS].get(name)
    if sink is None:
        not_found(name)
    return sink


def _fill(store: Store, name: str, sink: Json) -> Json:
    sink["name"] = name.rsplit("/", 1)[1]
    sink.setdefault("writerIdentity", f"serviceAccount:service-{zlib.crc32(name.encode()):012d}@gcp-sa-logging.iam.gserviceaccount.com")
    sink.setdefault("createTime", store.now())
    sink["updateTime"] = store.now()
    return sink


def get_sink(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    return json_response(200, _sink(store, path["sinkName"]))


def patch_sink(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    name = path["sinkName"]
    new = clone(_sink(store, name))
    for field in mask_paths(params.get("updateMask")) or DEFAULT_MASK:
        if field in OUTPUT_ONLY:
            continue
        if field in body:
            new[field] = clone(body[field])
        else:
            new.pop(field, None)
    if not new.get("destination"):
        bad("sink.destination: a sink needs a destination")
    store.tables[SINKS][name] = _fill(store, name, new)
    return json_response(200, new)


def _seed(store: Store, index: int, sink: Json) -> None:
    name = sink["name"]
    store.tables[SINKS][name] = _fill(store, name, {k: v for k, v in sink.items() if k != "name"})


def _patch(store: Store, name: str, change: Json, actor: str) -> None:
    store.tables[SINKS][name] = _fill(store, name, merge_patch(clone(store.tables[SINKS][name]), change))


def _routes(parent: str) -> tuple[Route, ...]:
    return (
        Route("GET", f"/v2/{{sinkName={parent}/*/sinks/*}}", f"logging.{parent}.sinks.get", get_sink),
        Route("PATCH", f"/v2/{{sinkName={parent}/*/sinks/*}}", f"logging.{parent}.sinks.patch", patch_sink),
    )


API = Api(
    name="logging_v2",
    discovery="logging.v2.json",
    routes=tuple(r for parent in ("projects", "folders", "organizations") for r in _routes(parent)),
    collections=(Collection(SINKS, SINK_RE, seed=_seed, view=lambda store, name: store.tables[SINKS][name], patch=_patch),),
)

"""Long-running operations (google.longrunning.Operation), for APIs whose writes answer one.

An API module records a done Operation with `answer()`; the `pending_polls` fault makes a recorded
operation read `done: false` a few more times (`pend()`), as a real rollout does.
"""

from __future__ import annotations

import json
import uuid

from infra.local.standin.core import Json, Response, json_response, not_found
from infra.local.standin.store import Store


def answer(store: Store, parent: str, type_url: str, resource: Json, record: bool = True) -> Response:
    """A done Operation under `parent` whose `metadata` and `response` are the typed resource."""
    op_name = f"{parent}/operations/{uuid.uuid4()}"
    typed = {"@type": type_url, **resource}
    op = {"name": op_name, "metadata": typed, "done": True, "response": typed}
    if record:
        store.record_operation(op_name, op)
    return json_response(200, op)


def get(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    op = store.operations.get(path["name"])
    if op is None:
        not_found(path["name"])
    left = store.pending_ops.get(path["name"], 0)
    if left > 0:
        store.pending_ops[path["name"]] = left - 1
        return json_response(200, {"name": op["name"], "metadata": op["metadata"], "done": False})
    return json_response(200, op)


def delete(store: Store, path: dict[str, str], params: dict[str, str], body: Json) -> Response:
    if store.operations.pop(path["name"], None) is None:
        not_found(path["name"])
    return json_response(200, {})


def pend(store: Store, resp: Response, polls: int) -> Response:
    """A `pending_polls` fault: answer a write's operation as not done yet."""
    op = json.loads(resp.body)
    name = op.get("name", "") if isinstance(op, dict) else ""
    with store.lock:
        if "/operations/" not in name or name not in store.operations:
            return resp  # not a recorded long-running operation (validateOnly, KMS): unchanged
        store.pending_ops[name] = polls
    return json_response(200, {"name": name, "metadata": op["metadata"], "done": False})

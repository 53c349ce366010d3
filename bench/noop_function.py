"""A function that does nothing: the baseline of what push delivery itself costs.

Served by functions-framework exactly like main.py (same server, same CloudEvent conversion)
behind its own push subscription on the same Pub/Sub emulator. It logs one line per delivery
with the message id and when it arrived and finished; a message whose data is
`{"sleep_ms": N}` holds the request that long (to see how many pushes the emulator keeps in
flight).
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from typing import Any

import functions_framework

_lock = threading.Lock()


@functions_framework.cloud_event
def noop(cloud_event: Any) -> None:
    arrived = time.time()
    sleep_ms = 0
    try:
        body = json.loads(base64.b64decode(cloud_event.data["message"]["data"]))
        sleep_ms = int(body.get("sleep_ms", 0)) if isinstance(body, dict) else 0
    except (KeyError, TypeError, ValueError):
        pass
    if sleep_ms:
        time.sleep(sleep_ms / 1000)
    line = json.dumps({"message": "bench.noop", "id": cloud_event["id"], "arrived": arrived, "done": time.time()})
    with _lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

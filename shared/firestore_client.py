"""Rampart's Firestore clients: built on first use, with a channel that reconnects fast.

Three stores use Firestore: alert dedupe (shared/alerts/dedupe.py), quarantine records
(shared/quarantine_store.py) and sweep progress (shared/sweep/progress.py). Each builds its client
with `Lazy`, so the import of google.cloud.firestore stays off the cold path until a store is used,
and each gets the same channel:

- grpc's reconnect backoff grows to 120 s by default, and it is shared by every channel to the
  same target in a process: a store back for a minute was still "unreachable" from here, also to
  a new client. Ours reconnects at least every RECONNECT_MAX_MS, on a subchannel of its own.
- tests/test_dedupe_store_down.py stops a Firestore emulator under two stores for 15 s and fails
  if a store that is back is not used again at once.
"""

from __future__ import annotations

import threading
from typing import Any

RECONNECT_MAX_MS = 1000


def fast_reconnect_client(project: str | None, database: str) -> Any:
    """A firestore.Client whose gRPC channel reconnects within RECONNECT_MAX_MS of the store coming
    back, with its own subchannel (not the process-wide one other clients' backoff would hold).

    google-cloud-firestore has no public setting for channel options: this overrides the two
    places its Client makes the channel (`_emulator_channel`, and the transport's `create_channel`
    for the real service), as of google-cloud-firestore 2.x."""
    import grpc
    from google.cloud import firestore
    from google.cloud.firestore_v1 import base_client
    from google.cloud.firestore_v1.services.firestore import client as gapic
    from google.cloud.firestore_v1.services.firestore.transports import grpc as gapic_grpc

    options = [("grpc.initial_reconnect_backoff_ms", RECONNECT_MAX_MS // 4),
               ("grpc.min_reconnect_backoff_ms", RECONNECT_MAX_MS // 4),
               ("grpc.max_reconnect_backoff_ms", RECONNECT_MAX_MS),
               ("grpc.use_local_subchannel_pool", 1)]

    class Transport(gapic_grpc.FirestoreGrpcTransport):
        @classmethod
        def create_channel(cls, *args: Any, **kwargs: Any) -> Any:
            kwargs["options"] = [*kwargs.get("options", ()), *options]
            return super().create_channel(*args, **kwargs)

    class Client(firestore.Client):
        @property
        def _firestore_api(self) -> Any:
            return self._firestore_api_helper(Transport, gapic.FirestoreClient, gapic)

        def _emulator_channel(self, transport: Any) -> Any:
            # As the library does (an insecure channel, a placeholder bearer token), plus the options.
            return grpc.insecure_channel(self._emulator_host, options=[
                ("Authorization", "Bearer owner"), *base_client._GRPC_MSG_SIZE_OPTIONS, *options])

    return Client(project=project, database=database)


class Lazy:
    """The client given, or one fast_reconnect_client built on the first call (once, under a lock)."""

    def __init__(self, project: str | None, database: str, client: Any = None) -> None:
        self.project = project
        self.database = database
        self._client = client
        self._lock = threading.Lock()

    def __call__(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = fast_reconnect_client(self.project, self.database)
            return self._client


def bounded(seconds: float) -> dict[str, Any]:
    """Call options that bound a Firestore call to about `seconds` in all: google-cloud-firestore's
    own retry of an unreachable store runs for 60 s whatever `timeout` says (measured: a record
    save with timeout=2 raised RetryError after 46 s with the emulator stopped)."""
    from google.api_core.retry import Retry

    return {"retry": Retry(initial=0.1, maximum=1.0, multiplier=2.0, timeout=seconds), "timeout": seconds}

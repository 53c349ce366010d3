"""Quarantine records: the exact prior state a quarantine changed, kept where only Rampart writes.

A record on the service itself (an annotation) can be edited by anyone holding
`run.services.update` (roles/run.developer), and `release` then restored whatever it said: an
outside `run.admin`, `allUsers`, open ingress. So the record lives in Rampart's Firestore
database, keyed by the service and a quarantine id, written once (`create`, never overwritten);
the service carries only `<quarantine id>:<digest>` (`marker`). `release` refuses unless the id,
the record and the digest all match (`load`).

IAM: Rampart's writer identity needs datastore.entities.create/get on its own database only;
nobody else should hold write access to it (README, Threat model).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from shared import firestore_client

DEFAULT_COLLECTION = "rampart_quarantine"
_MARKER = re.compile(r"^(?P<qid>q[0-9a-f]{16}):(?P<digest>[0-9a-f]{64})$")


class RecordError(Exception):
    """No usable record: `reason` says what is missing or does not match (no payload echoed)."""


@dataclass(frozen=True)
class Stored:
    service: str
    qid: str
    digest: str
    record: dict[str, Any]

    @property
    def marker(self) -> str:
        return f"{self.qid}:{self.digest}"


def canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def digest(service: str, qid: str, record: dict[str, Any]) -> str:
    """sha256 over the service, the quarantine id and the record: a record moved to another
    service or id does not match either."""
    return hashlib.sha256(f"{service}\0{qid}\0{canonical(record)}".encode()).hexdigest()


def parse_marker(value: Any) -> tuple[str, str] | None:
    """(quarantine id, digest) from a service's marker, or None if it is not one Rampart writes."""
    m = _MARKER.match(value) if isinstance(value, str) else None
    return (m["qid"], m["digest"]) if m else None


def _doc_id(service: str, qid: str) -> str:
    return hashlib.sha256(f"{service}\0{qid}".encode()).hexdigest()


class MemoryRecords:
    """One process's records (tests, replay); the same contract as FirestoreRecords."""

    def __init__(self) -> None:
        self._docs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _create(self, doc_id: str, doc: dict[str, Any]) -> None:
        with self._lock:
            if doc_id in self._docs:
                raise RecordError("a record with this quarantine id already exists")
            self._docs[doc_id] = dict(doc)

    def _get(self, doc_id: str) -> dict[str, Any] | None:
        with self._lock:
            doc = self._docs.get(doc_id)
            return dict(doc) if doc else None

    def save(self, service: str, record: dict[str, Any], qid: str | None = None) -> Stored:
        return save(self, service, record, qid)

    def load(self, service: str, marker: Any) -> Stored:
        return load(self, service, marker)


class FirestoreRecords(MemoryRecords):
    """Records in a Firestore collection (the client is built on first use)."""

    def __init__(self, collection: str = DEFAULT_COLLECTION, *, project: str | None = None,
                 database: str = "(default)", client: Any = None, timeout: float = 10.0) -> None:
        self.collection, self.project, self.database, self.timeout = collection, project, database, timeout
        self.client = firestore_client.Lazy(project, database, client)

    def _create(self, doc_id: str, doc: dict[str, Any]) -> None:
        from google.api_core import exceptions as gexc

        try:
            self.client().collection(self.collection).document(doc_id).create(doc, **firestore_client.bounded(self.timeout))
        except gexc.AlreadyExists:
            raise RecordError("a record with this quarantine id already exists") from None

    def _get(self, doc_id: str) -> dict[str, Any] | None:
        snap = self.client().collection(self.collection).document(doc_id).get(**firestore_client.bounded(self.timeout))
        return snap.to_dict() if snap.exists else None


def new_qid() -> str:
    return "q" + secrets.token_hex(8)


def marker_for(service: str, qid: str, record: dict[str, Any]) -> str:
    """What the service carries for `record` saved under `qid`."""
    return f"{qid}:{digest(service, qid, record)}"


_default: Any = None
_default_lock = threading.Lock()


def default() -> Any:
    """The process's record store: Firestore (RAMPART_RECORDS_PROJECT or GOOGLE_CLOUD_PROJECT,
    RAMPART_RECORDS_DATABASE or "(default)", collection rampart_quarantine), or what `set_default`
    pinned (tests)."""
    global _default
    with _default_lock:
        if _default is None:
            import os

            _default = FirestoreRecords(
                os.environ.get("RAMPART_RECORDS_COLLECTION") or DEFAULT_COLLECTION,
                project=os.environ.get("RAMPART_RECORDS_PROJECT") or os.environ.get("GOOGLE_CLOUD_PROJECT") or None,
                database=os.environ.get("RAMPART_RECORDS_DATABASE") or "(default)",
            )
        return _default


def set_default(store: Any) -> None:
    global _default
    with _default_lock:
        _default = store


def save(store: Any, service: str, record: dict[str, Any], qid: str | None = None) -> Stored:
    """Write `record` once under `qid` (a new one if None); the returned `marker` goes on the service."""
    qid = qid or new_qid()
    d = digest(service, qid, record)
    store._create(_doc_id(service, qid), {"service": service, "qid": qid, "digest": d,
                                          "record": canonical(record), "created": time.time()})
    return Stored(service, qid, d, record)


def load(store: Any, service: str, marker: Any) -> Stored:
    """The record `marker` points to, checked; RecordError saying what is wrong otherwise."""
    parsed = parse_marker(marker)
    if parsed is None:
        raise RecordError("the service carries no Rampart quarantine id and digest (missing or not Rampart's format)")
    qid, want = parsed
    doc = store._get(_doc_id(service, qid))
    if doc is None:
        raise RecordError(f"Rampart holds no quarantine record {qid} for this service")
    try:
        record = json.loads(doc["record"])
    except (KeyError, TypeError, ValueError):
        raise RecordError(f"quarantine record {qid} is unreadable") from None
    if doc.get("service") != service or doc.get("qid") != qid or not isinstance(record, dict):
        raise RecordError(f"quarantine record {qid} belongs to another service")
    if digest(service, qid, record) != want or doc.get("digest") != want:
        raise RecordError(f"quarantine record {qid} does not match the digest on the service")
    return Stored(service, qid, want, record)

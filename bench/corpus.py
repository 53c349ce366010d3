"""The event mix the per-event benchmark runs over, built from real audit-log entries.

Irrelevant: every entry of tests/data/corpus/events that no rule triggers on (admin activity
from many services: IAM, Compute, BigQuery, Storage, ...), plus the corpus's failed calls.
Relevant: the corpus's Cloud Run / KMS entries that a rule triggers on, and the rules'
positive and negative fixtures in tests/rules/ (real-shaped, derived from the corpus).

Each entry is wrapped the way it reaches the `rampart` function: a log sink publishes the
compact LogEntry JSON, the push subscription POSTs `{"message": {"data": base64, ...},
"subscription": ...}`, and functions-framework hands the function a CloudEvent
`google.cloud.pubsub.topic.v1.messagePublished` whose `data` is `{"message": {...}}`.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT

CORPUS = ROOT / "tests" / "data" / "corpus" / "events"
RULE_FIXTURES = ROOT / "tests" / "rules"
TOPIC = "projects/demo-project/topics/rampart-audit-logs"


@dataclass(frozen=True)
class Mix:
    irrelevant: list[dict[str, Any]]  # LogEntry dicts
    relevant: list[dict[str, Any]]
    services: dict[str, int]  # serviceName -> count among the irrelevant entries


def _entries(path: Path) -> list[Any]:
    from shared.event import BadInput, iter_documents, unwrap

    out = []
    doc_text = path.read_text(errors="replace")
    for doc in iter_documents(doc_text):
        if isinstance(doc, BadInput):
            continue
        if isinstance(doc, dict) and "headers" in doc and "body" in doc:  # a binary-mode request, reconstructed
            doc = doc["body"]
        try:
            out.append(dict(unwrap(doc)))
        except BadInput:
            continue
    return out


def load_mix() -> Mix:
    """Split the corpus and the rule fixtures into irrelevant and relevant LogEntries."""
    from shared.event import BadInput, from_entry
    from shared.pipeline import triage

    irrelevant: list[dict[str, Any]] = []
    relevant: list[dict[str, Any]] = []
    services: dict[str, int] = {}
    sources = sorted(CORPUS.rglob("*.json")) + sorted(RULE_FIXTURES.glob("*/*.json"))  # not sources/: no entries there
    for path in sources:
        for entry in _entries(path):
            entry.pop("_source", None)
            try:
                event = from_entry(entry)
            except BadInput:
                continue
            if isinstance(triage(event), str):
                if path.is_relative_to(CORPUS):  # fixtures are about rules: keep them out of the noise
                    irrelevant.append(entry)
                    services[event.service] = services.get(event.service, 0) + 1
            else:
                relevant.append(entry)
    if not irrelevant or not relevant:
        raise RuntimeError(f"expected audit entries in {CORPUS} and {RULE_FIXTURES}; found {len(irrelevant)} irrelevant, {len(relevant)} relevant")
    return Mix(irrelevant, relevant, dict(sorted(services.items(), key=lambda kv: -kv[1])))


def push_body(entry: dict[str, Any] | bytes, message_id: str, publish_time: str = "2026-11-23T09:00:00.000Z") -> dict[str, Any]:
    """The HTTP body a Pub/Sub push subscription POSTs for one log-sink message."""
    raw = entry if isinstance(entry, bytes) else json.dumps(entry, separators=(",", ":")).encode()
    return {
        "message": {
            "attributes": {"logging.googleapis.com/timestamp": publish_time},
            "data": base64.b64encode(raw).decode(),
            "messageId": message_id,
            "publishTime": publish_time,
        },
        "subscription": "projects/demo-project/subscriptions/rampart-push-0",
    }


def cloud_event(body: dict[str, Any]) -> Any:
    """The CloudEvent functions-framework builds from a push body (event_conversion, 3.10)."""
    from cloudevents.http import CloudEvent

    msg = body["message"]
    data = {
        "message": {
            "@type": "type.googleapis.com/google.pubsub.v1.PubsubMessage",
            "data": msg["data"],
            "attributes": msg.get("attributes", {}),
            "messageId": msg["messageId"],
            "publishTime": msg["publishTime"],
        }
    }
    attrs = {
        "id": msg["messageId"],
        "time": msg["publishTime"],
        "specversion": "1.0",
        "datacontenttype": "application/json",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": f"//pubsub.googleapis.com/{TOPIC}",
    }
    return CloudEvent(attrs, data)


def cloud_events(entries: list[dict[str, Any]], prefix: str) -> list[Any]:
    return [cloud_event(push_body(e, f"{prefix}{i}")) for i, e in enumerate(entries)]

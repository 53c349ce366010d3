"""shared/views/plumbing.py: what a write to Rampart's own plumbing did, from hand-written
entries (logging.v2.json LogSink, pubsub.v1.json Subscription)."""

from __future__ import annotations

from typing import Any

from shared.event import AuditEvent
from shared.views import plumbing


def _event(method: str, resource_name: str, request: dict[str, Any] | None = None, *, service: str = "logging.googleapis.com",
           project: str = "p1", location: str = "", service_data: dict[str, Any] | None = None) -> AuditEvent:
    return AuditEvent(service, method, resource_name, project, location, "alice@example.com", "id-1", "2026-01-01T00:00:00Z",
                      "activity", 0, "", "", request=request or {}, service_data=service_data or {})


def test_kind_of_names_each_piece_of_plumbing() -> None:
    assert plumbing.kind_of("projects/p1/sinks/rampart") == "sink"
    assert plumbing.kind_of("projects/p1/topics/t") == "topic"
    assert plumbing.kind_of("projects/p1/subscriptions/s") == "subscription"
    assert plumbing.kind_of("projects/p1/buckets/b") == ""


def test_an_update_sink_reports_its_mask_filter_and_destination() -> None:
    event = _event("google.logging.v2.ConfigServiceV2.UpdateSink", "projects/p1/sinks/rampart",
                   {"updateMask": "filter, destination", "sink": {"filter": "severity>=ERROR", "destination": "pubsub.googleapis.com/projects/p1/topics/x"}})
    view = plumbing.from_entry(event, "projects/p1/sinks/rampart")
    assert view == plumbing.PlumbingView(
        name="projects/p1/sinks/rampart", project="p1", kind="sink", change="UpdateSink", deleted=False,
        fields=("filter", "destination"), filter="severity>=ERROR", destination="pubsub.googleapis.com/projects/p1/topics/x",
        push_endpoint=None)

"""Confirm an audit entry in Cloud Logging before a write the live state alone cannot justify.

Anyone who can publish to Rampart's topic, or invoke its function, can hand it an entry. Most
actions need no trust in the entry: they re-read the live state and close what is open. Two
kinds of write do: putting back a binding that was removed (the live policy does not say who
was there before) and undoing a change whose earlier value only the entry records. Before
those, Rampart looks the entry up where only Google writes it, Cloud Logging's Admin Activity
log, and uses the entry it finds there (not the one it was handed):

    entries.list  resourceNames=[projects/P]
                  filter: log_id("cloudaudit.googleapis.com/activity") AND insertId="…"
                          AND timestamp>="T-1s" AND timestamp<="T+1s"

The client is google-cloud-logging's HTTP client (its GAPIC client has no REST transport in
3.17), pointed at the stand-in by RAMPART_LOGGING_ENDPOINT (loopback only, see shared.clients).

IAM permission: logging.logEntries.list on the watched projects (roles/logging.viewer holds it;
Admin Activity logs need no private-logs permission).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from shared import clients
from shared.event import AuditEvent, BadInput, from_entry

ADMIN_ACTIVITY_LOG_ID = "cloudaudit.googleapis.com/activity"
_INSERT_ID = re.compile(r"^[A-Za-z0-9_\-.:]{1,128}$")
_PROJECT = re.compile(r"^[a-z][a-z0-9\-]{4,28}[a-z0-9]$|^[0-9]{1,20}$")
PERMISSIONS = ("logging.logEntries.list",)


class Unconfirmed(Exception):
    """The entry is not in Cloud Logging as handed to Rampart: alert, and do not write."""


_TS = re.compile(r"^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)?$")


def _when(timestamp: str) -> dt.datetime:
    """An entry's timestamp (RFC 3339; a zone-less export is UTC), to the microsecond."""
    m = _TS.match(timestamp.strip()) if isinstance(timestamp, str) else None
    if not m:
        raise Unconfirmed(f"the entry's timestamp is not RFC 3339 ({len(str(timestamp))} characters)")
    zone = m[4] or "Z"
    text = f"{m[1]}T{m[2]}.{(m[3] or '0')[:6].ljust(6, '0')}{'+00:00' if zone == 'Z' else zone}"
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)


def query(event: AuditEvent) -> tuple[str, str]:
    """(resource name, filter) that finds `event`'s entry, or Unconfirmed if it cannot be asked for
    safely (every value placed in the filter is checked first: it comes from the entry)."""
    return _query(event.project, event.insert_id, event.timestamp)


def _query(project: str, insert_id: str, timestamp: str) -> tuple[str, str]:
    if not isinstance(insert_id, str) or not _INSERT_ID.match(insert_id):
        raise Unconfirmed("the entry has no insertId Rampart can look up")
    if not isinstance(project, str) or not _PROJECT.match(project):
        raise Unconfirmed("the entry names no project Rampart can look it up in")
    t = _when(timestamp if isinstance(timestamp, str) else "")
    lo, hi = (t - dt.timedelta(seconds=1)), (t + dt.timedelta(seconds=1))
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ"
    text = (f'log_id("{ADMIN_ACTIVITY_LOG_ID}") AND insertId="{insert_id}" '
            f'AND timestamp>="{lo.strftime(fmt)}" AND timestamp<="{hi.strftime(fmt)}"')
    return f"projects/{project}", text


def lookup(project: str, insert_id: str, timestamp: str) -> AuditEvent:
    """The Admin Activity entry Cloud Logging holds under this insertId and timestamp (Unconfirmed
    if none): for a writer that is told only where to look, never what the entry says."""
    parent, text = _query(project, insert_id, timestamp)
    for held in _held(project, parent, text):
        if held.insert_id == insert_id and _when(held.timestamp) == _when(timestamp):
            return held
    raise Unconfirmed(f"no Admin Activity entry {insert_id} in Cloud Logging for {parent}")


def _held(project: str, parent: str, text: str) -> list[AuditEvent]:
    out = []
    for item in _client(project).list_entries(resource_names=[parent], filter_=text, page_size=5, max_results=5):
        try:
            held = from_entry(item.to_api_repr() if hasattr(item, "to_api_repr") else item)
        except BadInput:
            continue
        if held.log_kind == "activity":
            out.append(held)
    return out


def confirm(event: AuditEvent) -> AuditEvent:
    """The entry as Cloud Logging holds it: same insertId, timestamp, method, resource and caller
    as `event`. Raises Unconfirmed when it is not there or says something else; transient API
    errors propagate (the caller's retry policy applies)."""
    held = lookup(event.project, event.insert_id, event.timestamp)
    if (held.service, held.method, held.resource_name, held.actor) != (
        event.service, event.method, event.resource_name, event.actor
    ):
        raise Unconfirmed(f"Cloud Logging's entry {event.insert_id} does not match the one delivered")
    return held


_RESOURCE = re.compile(r"^projects/[^/\s\"\\]{1,100}(/[^/\s\"\\]{1,200}){1,10}$")


def history(project: str, resource: str, *, until: str, limit: int = 50) -> list[AuditEvent]:
    """Admin Activity entries on `resource` (its exact resourceName) at or before `until`, newest
    first, as Cloud Logging holds them: what a restore may trust about a resource's past."""
    if not _PROJECT.match(project) or not _RESOURCE.match(resource):
        raise Unconfirmed("the resource cannot be looked up in Cloud Logging (unexpected name)")
    t = _when(until).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    text = (f'log_id("{ADMIN_ACTIVITY_LOG_ID}") AND protoPayload.resourceName="{resource}" '
            f'AND timestamp<="{t}"')
    entries = _client(project).list_entries(resource_names=[f"projects/{project}"], filter_=text,
                                            order_by="timestamp desc", page_size=limit, max_results=limit)
    out = []
    for item in entries:
        try:
            event = from_entry(item.to_api_repr() if hasattr(item, "to_api_repr") else item)
        except BadInput:
            continue
        if event.log_kind == "activity" and event.resource_name == resource and event.status_code == 0:
            out.append(event)
    return out


def _client(project: str) -> Any:
    """google-cloud-logging's HTTP client, one per project, cached like the other clients."""

    def build() -> Any:
        from google.cloud.logging_v2.client import Client

        endpoint = clients.endpoint_override(clients.LOGGING_ENDPOINT_ENV)
        if endpoint is None:
            return Client(project=project, _use_grpc=False)
        from google.auth.credentials import AnonymousCredentials

        return Client(project=project, credentials=AnonymousCredentials(), _use_grpc=False,
                      client_options={"api_endpoint": endpoint})

    return clients._cached(f"logging:{project}", build)

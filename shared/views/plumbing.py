"""A change to one piece of Rampart's own plumbing: its log sink, Pub/Sub topics and
subscriptions, functions (and their Cloud Run services), service accounts and custom roles.
Which names are Rampart's is the tamper rule's parameter; this view only says what a write did.

A project, folder or organization IAM write is Rampart's business only when its delta removes a
grant from one of Rampart's service accounts.

Shapes: LogSink (`logging.v2.json`: filter, destination, exclusions, disabled), Subscription /
PushConfig (`pubsub.v1.json`: pushConfig.pushEndpoint, deadLetterPolicy), and the method itself
for deletions, IAM writes and service-account changes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from shared.event import AuditEvent, pick, pick_dict, pick_list
from shared.views import Kind

_KINDS = (
    (re.compile(r"^(?:projects|folders|organizations|billingAccounts)/[^/]+/sinks/[^/]+$"), "sink"),
    (re.compile(r"^projects/[^/]+/topics/[^/]+$"), "topic"),
    (re.compile(r"^projects/[^/]+/subscriptions/[^/]+$"), "subscription"),
    (re.compile(r"^projects/[^/]+/locations/[^/]+/functions/[^/]+$"), "function"),
    (re.compile(r"^projects/[^/]+/locations/[^/]+/services/[^/]+$"), "service"),
    (re.compile(r"^projects/[^/]+/serviceAccounts/[^/]+$"), "serviceAccount"),
    (re.compile(r"^(?:projects|organizations)/[^/]+/roles/[^/]+$"), "role"),
    (re.compile(r"^(?:projects|folders|organizations)/[^/]+$"), "iamPolicy"),  # the scope's policy: Rampart's own grant
)


@dataclass(frozen=True, slots=True)
class PlumbingView:
    name: str
    project: str
    kind: str  # sink | topic | subscription | function | service | serviceAccount | role | iamPolicy
    change: str  # the method's last part: UpdateSink, DeleteTopic, SetIamPolicy, ...
    deleted: bool
    fields: tuple[str, ...]  # what the write changed, where it says (update mask, or the fields it set)
    filter: str | None  # a sink's new filter, when the write set one
    destination: str | None
    push_endpoint: str | None
    removed: tuple[tuple[str, str], ...] = ()  # (role, member) an IAM write took away (its policyDelta)
    location: str = "global"

    @property
    def resource_type(self) -> str:
        return f"rampart.{self.kind}"


def kind_of(name: str) -> str:
    return next((k for rx, k in _KINDS if rx.match(name)), "")


def _name(event: AuditEvent) -> str:
    name = event.resource_name
    if name.startswith("namespaces/"):  # a Cloud Run v1 name
        _, project, _, service = ([*name.split("/"), "", "", "", ""])[:4]
        name = f"projects/{project}/locations/{event.location}/services/{service}"
    if name.startswith("projects/-/serviceAccounts/"):  # IAM logs SAs by unique id or email
        name = name.replace("projects/-/", f"projects/{event.project or '-'}/", 1)
    return name


def locate(event: AuditEvent) -> str | None:
    name = _name(event)
    if not name and event.service == "cloudresourcemanager.googleapis.com" and event.project:
        name = f"projects/{event.project}"  # a hand-trimmed entry with no resourceName
    return name if kind_of(name) else None


def _mask(request: Any) -> tuple[str, ...]:
    mask = pick(request, "updateMask")
    if isinstance(mask, dict):
        return tuple(p for p in pick_list(mask, "paths") if isinstance(p, str))
    return tuple(p.strip() for p in mask.split(",")) if isinstance(mask, str) and mask else ()


def from_entry(event: AuditEvent, name: str) -> PlumbingView | None:
    change = event.method.rsplit(".", 1)[-1]
    req = event.request
    sink = pick_dict(req, "sink")
    sub = pick_dict(req, "subscription")
    fields = _mask(req) or tuple(k for k in (*sink, *sub) if k != "name")
    push = pick(req, "pushConfig", "pushEndpoint")
    if push is None:
        push = pick(sub, "pushConfig", "pushEndpoint")
    return PlumbingView(
        name=name,
        project=name.split("/")[1] if name.startswith("projects/") else event.project,
        kind=kind_of(name),
        change=change,
        deleted=change.startswith("Delete"),
        fields=fields,
        filter=pick(sink, "filter") if isinstance(pick(sink, "filter"), str) else None,
        destination=pick(sink, "destination") if isinstance(pick(sink, "destination"), str) else None,
        push_endpoint=push if isinstance(push, str) else None,
        removed=tuple(
            (pick(d, "role"), pick(d, "member")) for d in pick_list(event.service_data, "policyDelta", "bindingDeltas")
            if pick(d, "action") in ("REMOVE", 2) and isinstance(pick(d, "role"), str) and isinstance(pick(d, "member"), str)
        ),
    )


def from_live(obj: Any) -> PlumbingView | None:
    return None  # a change, not a state: judged from writes only


def from_asset(record: Any) -> PlumbingView | None:
    return None


PLUMBING: Kind[PlumbingView] = Kind("rampart.plumbing", (), locate, from_entry, from_live, from_asset)

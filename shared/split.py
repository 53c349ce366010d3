"""Detection apart from action: the function that reads untrusted entries can write nothing.

    audit sink ─▶ rampart-audit ─▶ detector (RAMPART_IDENTITY=detect, read-only role)
        evaluates the rules; alert-only and exempt findings are recorded and alerted here;
        a finding to act on becomes an action request on rampart-actions (only the detector
        may publish there): {v, rule, insert_id, timestamp, project, method, resource}
    rampart-actions ─▶ writer (entry point rampart_act, RAMPART_IDENTITY=act-run | act-kms)
        takes only requests for its product; reads the entry ITSELF from Cloud Logging by
        insertId and timestamp (shared.audit_confirm.lookup), checks it names the request's
        method and resource, then runs the usual pipeline (live state, etags, record, alert)
        for that one rule.

So the writer never parses what the audit topic delivered, and the identity that does holds
only reads (python main.py iam-role --identity detect). A forged entry costs the detector a
read; a forged request (if someone could publish to rampart-actions) only makes a writer look
up an entry that Cloud Logging does not hold, which is refused and logged.

With RAMPART_IDENTITY unset one function does both, as before.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from typing import Any

from shared import log
from shared.event import AuditEvent
from shared.model import ActionRecord

IDENTITY_ENV = "RAMPART_IDENTITY"
ACTIONS_TOPIC_ENV = "RAMPART_ACTIONS_TOPIC"
PRODUCTS = {"act-run": "run", "act-kms": "kms"}
_FIELDS = {
    "rule": re.compile(r"^[a-z][a-z0-9_]{2,62}$"),
    "insert_id": re.compile(r"^[A-Za-z0-9_\-.:]{1,128}$"),
    "timestamp": re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$"),
    "project": re.compile(r"^[a-z][a-z0-9\-]{4,28}[a-z0-9]$|^\d{1,20}$"),
    "method": re.compile(r"^[A-Za-z0-9_.]{1,200}$"),
    "resource": re.compile(r"^[A-Za-z0-9_\-./:%@]{1,500}$"),
}


def identity() -> str:
    """This function's part: "" (both), detect, act-run or act-kms."""
    value = os.environ.get(IDENTITY_ENV, "").strip()
    if value not in ("", "detect", *PRODUCTS):
        raise ValueError(f"{IDENTITY_ENV}: expected detect, act-run or act-kms (or unset); found {value[:40]!r}")
    return value


def product(rule_id: str, resource: str) -> str:
    """The writer a request goes to: act-kms for the KMS rules and for any rule's finding on a KMS
    key ring or key (iam_outsider_member strips outsiders from keys as from services), act-run
    for every other one (it holds every write that is not Cloud KMS, and act-kms only Cloud KMS
    writes: shared.permissions.identity_permissions). Each writer's subscription takes only its
    product, so any other value would reach no one."""
    from shared.views.names import kms_name

    return "kms" if rule_id.startswith("kms_") or kms_name(resource) is not None else "run"


# -- the detector --------------------------------------------------------------------------


def detect(pipeline: Any, event: AuditEvent, only: str | None = None, triaged: Any = None) -> Any:
    """Evaluate without writing: record and alert what needs no write; ask a writer for the rest."""
    from shared.pipeline import decide, ignored_violation

    result = pipeline.handle(event, only=only, act_on=False, triaged=triaged)
    if not result.findings:
        return result
    loaded = pipeline.store.current()
    for finding in result.findings:
        settings = loaded.settings(finding.rule)
        record: ActionRecord | None
        if result.skipped == "ignored_principal":
            record = ignored_violation(finding, settings, loaded)
        else:
            record = decide(finding, settings, loaded)
        if record is not None:
            result.records.append(record)
            pipeline._record(record, loaded, result)
            continue
        request_action(event, finding.rule, finding.resource)
    return result


def request_action(event: AuditEvent, rule_id: str, resource: str) -> None:
    """Publish one action request (transient failures raise: Pub/Sub redelivers the entry)."""
    topic = os.environ.get(ACTIONS_TOPIC_ENV, "")
    if not re.match(r"^projects/[^/]+/topics/[^/]+$", topic):
        raise ValueError(f"{ACTIONS_TOPIC_ENV}: expected projects/P/topics/T for the detector; found {topic[:80]!r}")
    body = {"v": 1, "rule": rule_id, "insert_id": event.insert_id, "timestamp": event.timestamp,
            "project": event.project, "method": event.method, "resource": resource}
    from shared.alerts.channels import _publisher_client

    future = _publisher_client().publish(topic, json.dumps(body, separators=(",", ":")).encode(),
                                         product=product(rule_id, resource), rule=rule_id)
    future.result(timeout=30)
    log.info("rampart.action_requested", rule=rule_id, resource=resource[:300], event_id=event.event_id[:200],
             product=product(rule_id, resource))


# -- a writer ------------------------------------------------------------------------------


class BadRequest(ValueError):
    pass


def parse_request(cloud_event: Any) -> dict[str, str]:
    """The action request in a Pub/Sub push CloudEvent; BadRequest naming the field otherwise."""
    data = getattr(cloud_event, "data", None)
    if isinstance(data, bytes | str):
        try:
            data = json.loads(data)
        except ValueError:
            raise BadRequest("push body is not JSON") from None
    msg = data.get("message") if isinstance(data, dict) else None
    raw = msg.get("data") if isinstance(msg, dict) else None
    if not isinstance(raw, str) or len(raw) > 8192:
        raise BadRequest("expected a Pub/Sub message with base64 data of at most 8 KiB")
    try:
        body = json.loads(base64.b64decode(raw, validate=True))
    except (binascii.Error, ValueError):
        raise BadRequest("message data is not base64 JSON") from None
    if not isinstance(body, dict) or body.get("v") != 1:
        raise BadRequest("expected an action request with v: 1")
    out: dict[str, str] = {}
    for key, pattern in _FIELDS.items():
        value = body.get(key)
        if not isinstance(value, str) or not pattern.match(value):
            raise BadRequest(f"action request field {key}: missing or not the expected shape")
        out[key] = value
    return out


def act(pipeline: Any, cloud_event: Any) -> Any:
    """Handle one action request as writer `identity()`: look the entry up, then act for one rule."""
    import functions
    from shared.audit_confirm import Unconfirmed, lookup

    me = identity()
    if me not in PRODUCTS:
        raise ValueError(f"rampart_act runs as act-run or act-kms ({IDENTITY_ENV}); found {me or '(unset)'}")
    try:
        req = parse_request(cloud_event)
    except BadRequest as exc:
        log.warning("rampart.bad_action_request", reason=str(exc))
        return None
    if req["rule"] not in functions.RULE_IDS or product(req["rule"], req["resource"]) != PRODUCTS[me]:
        return None  # another writer's request (each writer's subscription sees every request)
    try:
        held = lookup(req["project"], req["insert_id"], req["timestamp"])
    except Unconfirmed as exc:
        log.error("rampart.unconfirmed", rule=req["rule"], resource=req["resource"], event_id=req["insert_id"],
                  reason=f"{exc}: nothing done")
        return None
    if held.method != req["method"]:
        log.error("rampart.unconfirmed", rule=req["rule"], resource=req["resource"], event_id=req["insert_id"],
                  reason="Cloud Logging's entry records another method than the request: nothing done")
        return None
    return pipeline.handle(held, only=req["rule"])

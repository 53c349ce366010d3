"""What an alert says, rendered safely for Slack, e-mail and Pub/Sub.

Everything that comes from an event or a resource (names, labels, principals,
annotation values, reasons) is untrusted: it is escaped for Slack mrkdwn
(`&`, `<`, `>`, so no `<!channel>` or disguised links), HTML-escaped for e-mail,
and stripped of CR/LF before it goes near a mail header. Alerts are built only
from the record's fields, never from the raw event, the request or the environment.

Pub/Sub alert message (JSON, UTF-8), schema_version 1:

    {
      "schema_version": 1,
      "type": "rampart.alert",
      "alert_id": "3f9c...",             # stable per (rule, event): dedupe key for consumers
      "alert_kind": "incident" | "escalation",
      "severity": "critical",            # this alert's severity (raised one step on escalation)
      "headline": "...",                 # one line, plain text
      "what_rampart_did": "...",         # one line, plain text
      "undo_warning": "DESTRUCTIVE: ..." | null,  # when running record.undo would do harm
      "console_url": "https://console.cloud.google.com/..." | null,
      "occurrences": 1,                  # times this rule fired on this resource in the window
      "window_seconds": 3600,
      "delivery_notes": ["Slack delivery failed after 3 attempts: HTTP 500"],
      "sent_at": "2026-11-23T09:00:00Z",
      "record": {ActionRecord.to_dict(): rule, severity, title, resource, resource_type, project,
                 location, principal, method, event_id, event_time, observed, mode, action,
                 outcome, changes[{field, before, after}], before, after, reason, undo,
                 attempts, duration_ms}
    }

Attributes (for subscription filters): schema_version, alert_id, alert_kind, severity,
rule, outcome, project.

UNTRUSTED TEXT (chosen by whoever made the change; escape it wherever it is shown, never run
`undo` unread): headline, what_rampart_did, delivery_notes, and under record: title, resource,
project, location, principal, method, event_id, event_time, observed, changes, before, after,
reason, undo; the `project` attribute too. Rampart's own values: schema_version, type,
alert_id, alert_kind, severity, console_url, occurrences, window_seconds, sent_at, and record's
rule, severity, resource_type, mode, action, outcome, attempts, duration_ms.
"""

from __future__ import annotations

import functools
import html
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from shared.model import ActionRecord, Severity

SCHEMA_VERSION = 1
REDACTED = "[redacted]"

AlertKind = Literal["incident", "escalation"]

_SEVERITY_EMOJI = {
    "critical": ":red_circle:",
    "high": ":large_orange_circle:",
    "medium": ":large_yellow_circle:",
    "low": ":white_circle:",
}
_CHANNEL_LABEL = {"slack": "Slack", "email": "E-mail", "pubsub": "Pub/Sub"}

# Key names whose string values are treated as secrets even if a rule put them in a record by mistake.
_SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|token|credential|api[_-]?key|private[_-]?key)")
_SEG = r"[A-Za-z0-9][A-Za-z0-9_.:\-]*"
_RUN_SERVICE = re.compile(rf"^projects/({_SEG})/locations/({_SEG})/services/({_SEG})$")
_KMS_KEY = re.compile(
    rf"^projects/({_SEG})/locations/({_SEG})/keyRings/({_SEG})/cryptoKeys/({_SEG})(?:/cryptoKeyVersions/\d+)?$"
)
_KMS_RING = re.compile(rf"^projects/({_SEG})/locations/({_SEG})/keyRings/({_SEG})$")
_KMS_VERSION = re.compile(
    rf"^projects/({_SEG})/locations/({_SEG})/keyRings/({_SEG})/cryptoKeys/({_SEG})/cryptoKeyVersions/(\d+)$"
)
_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029\x85]+")
_BROADCAST = re.compile(r"@(channel|here|everyone)\b", re.IGNORECASE)
# Bare URLs and domains in untrusted text: Slack would turn them into links on-call may click.
_SCHEME = re.compile(r"\b([a-z][a-z0-9+.-]{1,20}):(?=//)", re.IGNORECASE)
_DOMAIN = re.compile(r"\b(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,24}\b", re.IGNORECASE)
# Line breaks (and other controls) in a plain-text e-mail line would let a value forge lines.
_LINE_BREAKS = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x85\u2028\u2029]")


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert to send: the (scrubbed) record plus what the dedupe decided about it."""

    alert_id: str
    kind: AlertKind
    record: dict[str, Any]
    severity: Severity
    occurrences: int = 1
    window_seconds: int = 0
    notes: tuple[str, ...] = ()
    sent_at: str = field(default_factory=lambda: now_iso())


def now_iso() -> str:
    """The current UTC time as RFC 3339 with a Z suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_fields(record: ActionRecord) -> dict[str, Any]:
    """`record.to_dict()` with secret-looking values redacted (defence in depth)."""
    return _redact(record.to_dict())


def _redact(value: Any) -> Any:
    # Exact types first: a record is plain dicts, lists and scalars, and this runs twice per record.
    t = type(value)
    if t is str or t is int or t is float or t is bool or value is None:
        return value
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        # A Cloud Run env var ({name, value}) holds its value in "value": never forward it.
        env_shaped = "name" in value and "value" in value
        for k, v in value.items():
            if (env_shaped and k == "value") or (isinstance(v, str) and v and isinstance(k, str) and _secret_key(k)):
                out[k] = REDACTED
            else:
                out[k] = _redact(v)
        return out
    if isinstance(value, list | tuple):
        return [_redact(v) for v in value]
    return value


@functools.lru_cache(maxsize=1024)  # keys repeat from record to record; bounded, as a key may be hostile
def _secret_key(key: str) -> bool:
    return _SECRET_KEY.search(key) is not None


def raise_severity(sev: Severity) -> Severity:
    """One step up, at most critical."""
    order = sorted(Severity, key=lambda s: s.rank)
    return order[min(sev.rank + 1, len(order) - 1)]


def console_url(resource: str) -> str | None:
    """The Cloud Console page of a Cloud Run service or KMS key/key ring, if the name has that shape."""
    if m := _RUN_SERVICE.match(resource):
        project, location, service = (quote(s, safe="") for s in m.groups())
        return f"https://console.cloud.google.com/run/detail/{location}/{service}/security?project={project}"
    if m := _KMS_KEY.match(resource):
        project, location, ring, key = (quote(s, safe="") for s in m.groups())
        return f"https://console.cloud.google.com/security/kms/key/manage/{location}/{ring}/{key}?project={project}"
    if m := _KMS_RING.match(resource):
        project, location, ring = (quote(s, safe="") for s in m.groups())
        return f"https://console.cloud.google.com/security/kms/keyring/manage/{location}/{ring}/key?project={project}"
    return None


def slack_escape(text: Any, limit: int = 500, *, code: bool = False) -> str:
    """Untrusted text made inert for Slack mrkdwn: no mentions, no links, bounded length. Outside a
    code span (`code=False`) bare URLs and domains are defanged (`https[:]//evil[.]example`), so
    Slack does not turn them into links."""
    s = _clip(_as_text(text), limit)
    s = s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if not code:
        s = _DOMAIN.sub(lambda m: m.group(0).replace(".", "[.]"), _SCHEME.sub(r"\1[:]", s))
    # Webhooks do not expand a bare @channel today; a word joiner keeps it that way if link_names is ever on.
    return _BROADCAST.sub(lambda m: "@\u2060" + m.group(1), s)


def header_safe(text: Any, limit: int = 200) -> str:
    """Untrusted text made safe for a mail header: one line, no control characters."""
    return _clip(" ".join(_HEADER_UNSAFE.sub(" ", _as_text(text)).split()), limit)


def channel_label(channel: str) -> str:
    """How a channel is called in notes a human reads."""
    return _CHANNEL_LABEL.get(channel, channel)


# What quarantine cuts off, said the same way everywhere.
QUARANTINE_CUTS_OFF = (
    "direct and load-balancer traffic to it is now cut off (ingress internal-only, public invokers "
    "removed, invoker IAM check on); only callers inside the project's VPC network with run.invoker still reach it."
)
# How to fix the cause before releasing a quarantine, per rule that quarantines.
_QUARANTINE_FIX = {
    "run_default_service_account": "redeploy it with a dedicated service account (--service-account), not the default compute one",
    "run_unapproved_region": "deploy it in an approved region and delete this service",
}
_DESTRUCTIVE_UNDO = re.compile(r"\bversions\s+destroy\b")
DESTRUCTIVE_UNDO_WARNING = (
    "DESTRUCTIVE: this undo schedules the key version for destruction again; once destroyed, "
    "data encrypted with it can never be decrypted. Run it only if that is what you want."
)


def what_rampart_did(rec: dict[str, Any]) -> str:
    """One plain-text line: reverted / quarantined / would have (dry-run) / failed and why."""
    outcome, action, mode, reason = rec["outcome"], rec["action"], rec["mode"], rec.get("reason") or ""
    would = {"revert": "reverted this", "quarantine": "quarantined this service",
             "restore": "undone this change (put back what it disabled, destroyed or removed)"}.get(action, "acted on this")
    verb = {"revert": "revert", "quarantine": "quarantine", "restore": "restore"}.get(action, "act on")
    why = f": {reason}" if reason else ""
    remediated = {
        "revert": "Rampart reverted the change: the setting is back to its compliant value.",
        "restore": "Rampart undid the change: what it disabled, scheduled for destruction or removed is back as it was.",
    }.get(action, "Rampart undid the change.")
    return {
        "remediated": remediated,
        "quarantined": f"Rampart quarantined the service: {QUARANTINE_CUTS_OFF} {quarantine_fix(rec)}",
        "dry_run": f"Dry-run: Rampart would have {would}; nothing was changed.",
        "alerted": f"Alert only (mode {mode}): nothing was changed.",
        "already_compliant": "Nothing to do: the resource was already compliant when Rampart checked.",
        "exempt": f"Exempt: nothing was changed{why}.",
        "failed": f"Rampart tried to {verb} this and FAILED{why}.",
        "not_found": "The resource no longer exists; nothing was changed.",
    }.get(outcome, f"Outcome {outcome}{why}.")


def quarantine_fix(rec: dict[str, Any]) -> str:
    """How to end a quarantine: fix the cause first, then release."""
    cause = _QUARANTINE_FIX.get(str(rec.get("rule")), "fix what the rule reported (see Observed)")
    return f"To restore it: {cause}, then run the undo command (python main.py release)."


def undo_warning(rec: dict[str, Any]) -> str:
    """A warning to show with the undo command when running it would do harm, else ""."""
    return DESTRUCTIVE_UNDO_WARNING if _DESTRUCTIVE_UNDO.search(_as_text(rec.get("undo"))) else ""


def headline(alert: Alert) -> str:
    """One plain-text line naming severity, rule, title and resource."""
    r = alert.record
    prefix = "ESCALATED " if alert.kind == "escalation" else ""
    return f"{prefix}{alert.severity.value.upper()} {r['rule']}: {r['title']} on {short_resource(r['resource'])}"


def short_resource(resource: str) -> str:
    """A resource name a reader can place: the key, its ring and project for KMS (a version
    number alone names nothing), the service, region and project for Cloud Run."""
    if m := _KMS_VERSION.match(resource):
        project, location, ring, key, version = m.groups()
        return f"key {key} version {version} (ring {ring}, {location}, project {project})"
    if m := _KMS_KEY.match(resource):
        project, location, ring, key = m.groups()
        return f"key {key} (ring {ring}, {location}, project {project})"
    if m := _KMS_RING.match(resource):
        project, location, ring = m.groups()
        return f"key ring {ring} ({location}, project {project})"
    if m := _RUN_SERVICE.match(resource):
        project, location, service = m.groups()
        return f"service {service} ({location}, project {project})"
    parts = resource.split("/")
    return "/".join(parts[-2:]) if len(parts) >= 2 else resource


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _clip(s: str, limit: int) -> str:
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _escalation_line(alert: Alert) -> str:
    minutes = max(1, round(alert.window_seconds / 60))
    return (
        f"Fired {alert.occurrences} times on this resource within {minutes} min; the first alerted, the repeats "
        f"were suppressed. Severity raised from {alert.record['severity']} to {alert.severity.value}."
    )


def _detail_sections(rec: dict[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """What the rule observed, and the context an action's enrichment added (e.g. dependent services)."""
    sections = []
    if isinstance(rec.get("observed"), dict) and rec["observed"]:
        sections.append(("Observed", [(str(k), v) for k, v in rec["observed"].items()]))
    context = rec.get("after", {}).get("context") if isinstance(rec.get("after"), dict) else None
    if isinstance(context, dict) and context:
        sections.append(("Context", [(str(k), v) for k, v in context.items()]))
    return sections


def _changes(rec: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(_as_text(c.get("field")), _as_text(c.get("before")), _as_text(c.get("after"))) for c in rec["changes"]]


# ---- Slack -----------------------------------------------------------------------------------------


def _code(text: Any, limit: int = 300) -> str:
    # A backtick inside a code span would end it early; a look-alike keeps the span closed.
    return "`" + slack_escape(text, limit, code=True).replace("`", "\u02cb") + "`"


def _code_block(text: str) -> str:
    return "```" + slack_escape(text, 2500, code=True).replace("```", "`\u200b``") + "```"


def slack_message(alert: Alert) -> dict[str, Any]:
    """Block Kit payload (`text` fallback + `blocks`) for an incoming webhook."""
    r = alert.record
    sev = alert.severity.value
    url = console_url(r["resource"])
    resource = _code(r["resource"])
    if url:
        resource += f"\n<{url}|Open in Cloud Console>"
    did = what_rampart_did(r)
    fields = [
        ("Rule", _code(r["rule"], 100)),
        ("Severity", f"{_SEVERITY_EMOJI.get(sev, '')} {sev}"),
        ("Resource", resource),
        ("Project", _code(r["project"], 100)),
        ("Who", _code(r["principal"] or "unknown", 200)),
        ("When", slack_escape(r["event_time"], 60)),
        ("Mode", slack_escape(r["mode"], 20)),
        ("Outcome", slack_escape(r["outcome"], 30)),
    ]
    header = f"{'Escalated: ' if alert.kind == 'escalation' else ''}{sev.upper()} · {_as_text(r['title'])}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": slack_escape(header, 140), "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{slack_escape(did, 1500)}*"}},
    ]
    if alert.kind == "escalation":
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f":repeat: {_escalation_line(alert)}"}})
    if alert.notes:
        # Right under the summary: on-call must see at once that another channel missed the alert.
        notes = "\n".join(f":warning: {slack_escape(n, 400)}" for n in alert.notes[:5])
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": notes}})
    blocks.append(
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f"*{k}*\n{v}"} for k, v in fields]}
    )
    changes = _changes(r)
    if changes:
        lines = [f"• {_code(f, 100)}: {_code(b, 300)} → {_code(a, 300)}" for f, b, a in changes[:10]]
        if len(changes) > 10:
            lines.append(f"…and {len(changes) - 10} more")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "*Changes*\n" + "\n".join(lines)}})
    for title, items in _detail_sections(r):
        lines = [f"• {_code(k, 80)}: {_code(v, 300)}" for k, v in items[:10]]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"*{title}*\n" + "\n".join(lines)}})
    if r["undo"]:
        warn = undo_warning(r)
        title = f"*Undo* :warning: {slack_escape(warn, 400)}" if warn else "*Undo*"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": title + "\n" + _code_block(r["undo"])}})
    context = [f"event {_code(r['event_id'], 120)}", f"method {_code(r['method'], 120)}", f"alert {alert.alert_id}"]
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(context)}]})
    text = f"{slack_escape(headline(alert), 300)}: {slack_escape(did, 300)}"
    return {"text": text, "blocks": _verbatim(blocks), "unfurl_links": False, "unfurl_media": False}


def _verbatim(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every mrkdwn text object `verbatim`: Slack links only the links Rampart wrote (<url|label>)."""
    for block in blocks:
        objs = [block.get("text"), *block.get("fields", ()), *block.get("elements", ())]
        for obj in objs:
            if isinstance(obj, dict) and obj.get("type") == "mrkdwn":
                obj["verbatim"] = True
    return blocks


def slack_notice(alert: Alert, note: str) -> dict[str, Any]:
    """A short follow-up when a channel failed after this one already had the alert."""
    text = f":warning: {slack_escape(note, 400)} (alert {alert.alert_id}: {slack_escape(headline(alert), 300)})"
    return {"text": text, "blocks": _verbatim([{"type": "section", "text": {"type": "mrkdwn", "text": text}}]),
            "unfurl_links": False, "unfurl_media": False}


# ---- E-mail ----------------------------------------------------------------------------------------


def email_subject(alert: Alert, prefix: str) -> str:
    """One header-safe line."""
    return header_safe(f"{prefix} {headline(alert)}", 250)


def email_text(alert: Alert) -> str:
    """The text/plain part."""
    r = alert.record
    url = console_url(r["resource"])
    lines = [headline(alert), "", what_rampart_did(r), ""]
    if alert.kind == "escalation":
        lines += [_escalation_line(alert), ""]
    if alert.notes:
        lines += [f"! {n}" for n in alert.notes] + [""]
    for k, v in _detail_rows(alert, url):
        lines.append(f"{k + ':':<10} {v}")
    changes = _changes(r)
    if changes:
        lines += ["", "Changes:"] + [f"  - {f}: {_clip(b, 500)} -> {_clip(a, 500)}" for f, b, a in changes]
    for title, items in _detail_sections(r):
        lines += ["", f"{title}:"] + [f"  - {k}: {_clip(_as_text(v), 500)}" for k, v in items]
    if r["undo"]:
        warn = undo_warning(r)
        lines += ["", f"Undo ({warn}):" if warn else "Undo:", f"  {r['undo']}"]
    lines += ["", f"Alert {alert.alert_id}, sent {alert.sent_at} by Rampart."]
    return "\n".join(plain_line(line) for line in lines) + "\n"


def plain_line(text: str) -> str:
    """One line of a plain-text e-mail: a CR, LF or other control character in a value becomes a
    visible mark, so no value can start a line of its own (a forged "Undo:" or "Outcome:")."""
    return _LINE_BREAKS.sub("\u2424", text)


def email_html(alert: Alert) -> str:
    """The text/html part; every value passes through html.escape."""
    e = html.escape
    r = alert.record
    url = console_url(r["resource"])
    rows = "".join(
        f"<tr><th align=left>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _detail_rows(alert, None)
    )
    parts = [
        f"<h2>{e(headline(alert))}</h2>",
        f"<p><b>{e(what_rampart_did(r))}</b></p>",
    ]
    if alert.kind == "escalation":
        parts.append(f"<p>{e(_escalation_line(alert))}</p>")
    if alert.notes:
        parts.append("<ul>" + "".join(f"<li><b>{e(n)}</b></li>" for n in alert.notes) + "</ul>")
    if url:
        parts.append(f'<p><a href="{e(url)}">Open in Cloud Console</a></p>')
    parts.append(f"<table>{rows}</table>")
    changes = _changes(r)
    if changes:
        items = "".join(
            f"<li><code>{e(f)}</code>: <code>{e(_clip(b, 500))}</code> &rarr; <code>{e(_clip(a, 500))}</code></li>"
            for f, b, a in changes
        )
        parts.append(f"<h3>Changes</h3><ul>{items}</ul>")
    for title, section in _detail_sections(r):
        lis = "".join(f"<li><code>{e(str(k))}</code>: <code>{e(_clip(_as_text(v), 500))}</code></li>" for k, v in section)
        parts.append(f"<h3>{e(title)}</h3><ul>{lis}</ul>")
    if r["undo"]:
        warn = undo_warning(r)
        if warn:
            parts.append(f"<h3>Undo: destructive</h3><p><b>{e(warn)}</b></p><pre>{e(r['undo'])}</pre>")
        else:
            parts.append(f"<h3>Undo</h3><pre>{e(r['undo'])}</pre>")
    parts.append(f"<p><small>Alert {e(alert.alert_id)}, sent {e(alert.sent_at)} by Rampart.</small></p>")
    return "<!doctype html><html><body>" + "".join(parts) + "</body></html>\n"


def _detail_rows(alert: Alert, url: str | None) -> list[tuple[str, str]]:
    r = alert.record
    rows = [
        ("Rule", r["rule"]),
        ("Severity", alert.severity.value),
        ("Resource", r["resource"]),
    ]
    if url:
        rows.append(("Console", url))
    rows += [
        ("Project", r["project"]),
        ("Who", r["principal"] or "unknown"),
        ("When", r["event_time"]),
        ("Mode", r["mode"]),
        ("Outcome", r["outcome"]),
        ("Method", r["method"]),
        ("Event", r["event_id"]),
    ]
    return [(k, _as_text(v)) for k, v in rows]


# ---- Pub/Sub ---------------------------------------------------------------------------------------


def pubsub_message(alert: Alert) -> tuple[bytes, dict[str, str]]:
    """The JSON alert message (schema_version 1) and its filterable attributes."""
    r = alert.record
    body = {
        "schema_version": SCHEMA_VERSION,
        "type": "rampart.alert",
        "alert_id": alert.alert_id,
        "alert_kind": alert.kind,
        "severity": alert.severity.value,
        "headline": headline(alert),
        "what_rampart_did": what_rampart_did(r),
        "undo_warning": undo_warning(r) or None,
        "console_url": console_url(r["resource"]),
        "occurrences": alert.occurrences,
        "window_seconds": alert.window_seconds,
        "delivery_notes": list(alert.notes),
        "sent_at": alert.sent_at,
        "record": r,
    }
    attributes = {
        "schema_version": str(SCHEMA_VERSION),
        "alert_id": alert.alert_id,
        "alert_kind": alert.kind,
        "severity": alert.severity.value,
        "rule": _clip(_as_text(r["rule"]), 256),
        "outcome": _as_text(r["outcome"]),
        "project": _clip(_as_text(r["project"]), 256),
    }
    data = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()
    return data, attributes

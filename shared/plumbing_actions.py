"""Putting Rampart's own log sink back after someone else changed it.

The right filter is the one `python main.py sink-filter` prints for the rules the sink serves
(`rampart-audit`: every rule; `rampart-audit-<rule-id>`: that rule, as deploy.sh names them), and
the right destination the policy's `rampart_tamper.params.sink_destination` (left alone when
unset). The sink is re-read first, written only if it still differs, with an update mask of
exactly the fields put back. Sinks have no etag.

IAM permissions: logging.sinks.get, logging.sinks.update.
"""

from __future__ import annotations

from typing import Any

from shared.actions import ActionContext, read_timeout, record, rest_call
from shared.model import ActionRecord, Change, Finding, Outcome

MAX_SHOWN = 300  # characters of a filter shown in a record


def expected_filter(sink_name: str) -> str:
    import functions
    from shared.cli import sink_filter

    short = sink_name.rsplit("/", 1)[-1]
    rule = short.removeprefix("rampart-audit-").replace("-", "_")
    return sink_filter([rule] if rule in functions.RULE_IDS else list(functions.RULE_IDS))


def _call(method: str, path: str, ctx: ActionContext, **kw: Any) -> dict[str, Any]:
    from shared import clients

    return rest_call(clients.logging_rest(), method, f"v2/{path}", read_timeout(ctx.operation_timeout), **kw)


def _short(text: str) -> str:
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…"


def restore_sink(finding: Finding, ctx: ActionContext, *, destination: str) -> ActionRecord:
    name = finding.resource
    live = _call("GET", name, ctx)
    want = {"filter": expected_filter(name)}
    if destination:
        want["destination"] = destination
    changes = [Change(k, _short(str(live.get(k, ""))), _short(v)) for k, v in want.items() if live.get(k) != v]
    before = {k: _short(str(live.get(k, ""))) for k in want}
    if not changes:
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, reason="live sink already as deployed")
    if ctx.dry_run:
        return record(finding, ctx, Outcome.DRY_RUN, changes=changes, before=before)
    mask = ",".join(c.field for c in changes)
    written = _call("PATCH", name, ctx, params={"updateMask": mask}, json={c.field: want[c.field] for c in changes})
    after = {k: _short(str(written.get(k, ""))) for k in want}
    return record(finding, ctx, Outcome.REMEDIATED, changes=changes, before=before, after=after, attempts=1,
                  undo="gcloud logging sinks update " + name.rsplit("/", 1)[-1] + " --log-filter=... "
                       "(the previous value is in this record's `before`; add an exemption first, or Rampart restores it again)")

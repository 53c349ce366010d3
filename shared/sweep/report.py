"""A sweep's report: the terminal summary, JSON, and a self-contained HTML page.

The HTML page is for a security lead or an auditor: per project and rule, how many resources are
compliant, violating or exempt; then each violation with its resource, rule, how long it has been
open (at least since the resource last changed, where the record says when), what Rampart did or
would do, and the owner and expiry of its exemption. One file, no scripts, no external assets;
every string from a resource, a policy or an API is escaped.
"""

from __future__ import annotations

import datetime as dt
import html
from collections import defaultdict
from typing import Any, TextIO

from shared.sweep.local import SweepReport
from shared.sweep.records import timestamp_seconds


def summary(report: SweepReport, out: TextIO) -> None:
    """The end-of-sweep summary on a terminal: resources seen per type, violations per rule,
    actions, exempt, skipped, errors and the parts of the scope not swept."""
    t = report.tally
    w = out.write
    state = "complete" if report.complete else "INCOMPLETE"
    w(f"sweep {report.sweep_id} over {', '.join(report.scopes)}: {state}, {report.shards_done}/{report.shards_total} "
      f"shards, {report.seconds:.1f}s, max mode {report.max_mode}\n")
    w("resources seen:\n")
    for kind, n in sorted(t.seen.items()):
        w(f"  {kind:<48} {n:>8}\n")
    if not t.seen:
        w("  (none)\n")
    w("violations by rule:\n")
    for rule, n in sorted(t.violations.items(), key=lambda kv: (-kv[1], kv[0])):
        w(f"  {rule:<48} {n:>8}\n")
    if not t.violations:
        w("  (none)\n")
    w(f"actions taken: {t.actions}   would act (dry-run): {t.outcomes.get('dry_run', 0)}   alerted only: "
      f"{t.outcomes.get('alerted', 0)}   failed: {t.outcomes.get('failed', 0)}   exempt: {sum(t.exempt.values())}   "
      f"already fixed in live state: {t.outcomes.get('already_compliant', 0)}\n")
    if t.skipped:
        w(f"records skipped: {sum(t.skipped.values())} (" + ", ".join(f"{r}: {n}" for r, n in sorted(t.skipped.items())) + ")\n")
    calls = report.api_calls
    if calls:
        seen = sum(t.seen.values())
        total = sum(calls.values())
        per = f"{total / seen:.3f}" if seen else "-"
        w(f"listing and reads: {total} API calls ({', '.join(f'{k} {v}' for k, v in calls.items())}), {per} per resource "
          "(actions re-read live state on top)\n")
    for ns in report.not_swept:
        w(f"NOT SWEPT: {ns['scope']} ({ns['kind']}): {ns['reason']}\n")
    for e in t.errors[:20]:
        w(f"error: {e}\n")
    if len(t.errors) > 20:
        w(f"... and {len(t.errors) - 20} more errors\n")


def _age(changed_at: str, now: float) -> str:
    ts = timestamp_seconds(changed_at) if changed_at else None
    if ts is None:
        return "unknown"
    days = (now - ts) / 86400
    if days >= 1:
        return f"≥ {days:.0f} d"
    hours = (now - ts) / 3600
    return f"≥ {hours:.0f} h" if hours >= 1 else "< 1 h"


_CSS = """body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#1a1a1a}h1{font-size:1.5em}
table{border-collapse:collapse;margin:1em 0;width:100%}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;
vertical-align:top}th{background:#f3f3f3}td.n{text-align:right}.bad{color:#a40000;font-weight:600}
.ok{color:#0a6b0a}.warn{background:#fff4d6;padding:.5em 1em;border-left:4px solid #e0a000}
.sev-critical{color:#a40000;font-weight:700}.sev-high{color:#b35900;font-weight:600}code{font-size:.92em}"""


def to_html(report: SweepReport, now: float | None = None) -> str:
    """The report as one self-contained HTML page (see the module docstring)."""
    e = html.escape
    now = now if now is not None else dt.datetime.now(dt.UTC).timestamp()
    t = report.tally
    parts: list[str] = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Rampart posture sweep {e(report.sweep_id)}</title>", f"<style>{_CSS}</style></head><body>",
        f"<h1>Rampart posture sweep <code>{e(report.sweep_id)}</code></h1>",
        f'<p id="meta">Scope: {e(", ".join(report.scopes))}. Started {e(report.started_at)}, finished '
        f"{e(report.finished_at)}. Shards {report.shards_done}/{report.shards_total}. Most the sweep may do: "
        f"<b>{e(report.max_mode)}</b>.</p>",
    ]
    if not report.complete:
        parts.append('<div class="warn" id="incomplete"><b>Incomplete sweep.</b> Parts of the scope were not swept; '
                     "nothing there is counted compliant.<ul>")
        for ns in report.not_swept:
            parts.append(f"<li>{e(ns['scope'])} ({e(ns['kind'])}): {e(ns['reason'])}</li>")
        for err in t.errors:
            parts.append(f"<li>{e(err)}</li>")
        if not report.plan_done or report.shards_done < report.shards_total:
            parts.append(f"<li>{report.shards_total - report.shards_done} shard(s) not done</li>")
        parts.append("</ul></div>")
    parts.append('<h2>Totals</h2><table id="totals"><tr><th>resources seen</th><th>violations</th><th>actions taken</th>'
                 "<th>exempt</th><th>records skipped</th><th>errors</th></tr>")
    parts.append(f'<tr><td class="n">{sum(t.seen.values())}</td><td class="n">{sum(t.violations.values())}</td>'
                 f'<td class="n">{t.actions}</td><td class="n">{sum(t.exempt.values())}</td>'
                 f'<td class="n">{sum(t.skipped.values())}</td><td class="n">{len(t.errors) + len(report.not_swept)}</td></tr></table>')
    rows: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for i, counter in enumerate((t.compliant, t.violating, t.exempt)):
        for key, n in counter.items():
            project, _, rule = key.partition("|")
            rows[(project, rule)][i] += n
    parts.append('<h2>By project and rule</h2><table id="by-project"><tr><th>project</th><th>rule</th>'
                 "<th>compliant</th><th>violating</th><th>exempt</th></tr>")
    for (project, rule), (ok, bad, ex) in sorted(rows.items()):
        cls = ' class="n bad"' if bad else ' class="n"'
        parts.append(f"<tr><td>{e(project)}</td><td><code>{e(rule)}</code></td><td class=\"n\">{ok}</td>"
                     f"<td{cls}>{bad}</td><td class=\"n\">{ex}</td></tr>")
    parts.append("</table>")
    parts.append('<h2>Violations</h2><table id="violations"><tr><th>severity</th><th>rule</th><th>resource</th>'
                 "<th>project</th><th>open for</th><th>outcome</th><th>what changes</th><th>exemption</th></tr>")
    order = {"critical": 0, "high": 1, "medium": 2, "low": 3}
    for it in sorted(t.items, key=lambda i: (order.get(str(i.get("severity")), 9), str(i.get("rule")), str(i.get("resource")))):
        exemption = it.get("exemption")
        ex_text = (f"owner {e(str(exemption['owner']))}, expires {e(str(exemption['expires']))}"
                   if isinstance(exemption, dict) else "")
        changes = "; ".join(f"{c.get('field')}: {c.get('before')!s} → {c.get('after')!s}" for c in it.get("changes") or [])
        sev = str(it.get("severity", ""))
        parts.append(
            f'<tr><td class="sev-{e(sev)}">{e(sev)}</td><td><code>{e(str(it.get("rule", "")))}</code></td>'
            f"<td><code>{e(str(it.get('resource', '')))}</code></td><td>{e(str(it.get('project', '')))}</td>"
            f"<td>{e(_age(str(it.get('changed_at') or ''), now))}</td><td>{e(str(it.get('outcome', '')))}</td>"
            f"<td>{e(changes or str(it.get('reason') or ''))}</td><td>{ex_text}</td></tr>"
        )
    parts.append("</table>")
    if t.skipped:
        parts.append('<h2>Records skipped</h2><table id="skipped"><tr><th>reason</th><th>count</th></tr>')
        for reason, n in sorted(t.skipped.items()):
            parts.append(f'<tr><td>{e(reason)}</td><td class="n">{n}</td></tr>')
        parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def to_json(report: SweepReport) -> dict[str, Any]:
    return report.to_dict()

"""The operator CLI: `python main.py COMMAND ...`. See `python main.py --help`."""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import functions
from shared.model import Action, Mode, Severity

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FINDINGS = 0, 1, 2, 3
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _policy(path: str | None) -> Any:
    from shared.config import load_policy, policy_path

    return load_policy(path or policy_path())


# ---------------------------------------------------------------------------
# rules


def cmd_rules(args: argparse.Namespace, out: TextIO) -> int:
    loaded = _policy(args.policy)
    rows = []
    for r in functions.all_rules():
        s = loaded.settings(r.id)
        rows.append(
            {
                "id": r.id,
                "title": r.title,
                "mode": s.mode.value,
                "severity": s.severity.value,
                "action": s.action.value,
                "actions": [a.value for a in r.actions],
                "resource_type": r.resource_type,
                "triggers": [{"serviceName": sv, "methodName": m} for sv, m in r.triggers],
                "permissions": sorted(set(permissions_for(r, s.action))),
                "why": r.why,
            }
        )
    if args.json:
        json.dump(rows, out, indent=2)
        out.write("\n")
        return EXIT_OK
    if args.markdown:
        out.write(rules_markdown(rows))
        return EXIT_OK
    for row in rows:
        out.write(f"{row['id']}  [{row['severity']}]  mode={row['mode']}  action={row['action']}\n")
        out.write(f"    {row['title']}\n")
        methods = sorted({t["methodName"] for t in row["triggers"]})
        out.write(f"    triggers: {row['triggers'][0]['serviceName']} {', '.join(methods)}\n")
        out.write(f"    permissions: {', '.join(row['permissions']) or '(none: alert only)'}\n")
    return EXIT_OK


def rules_markdown(rows: list[dict[str, Any]]) -> str:
    """The README's rule table (README.md is checked against this by a test)."""
    lines = [
        "| rule | severity | default mode → action | detects | triggers (methodName) | why (seed) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        methods = sorted({t["methodName"].replace("google.cloud.run.", "run.") for t in r["triggers"]})
        lines.append(
            f"| `{r['id']}` | {r['severity']} | {r['mode']} → {r['action']} | {r['title']} "
            f"| {', '.join(f'`{m}`' for m in methods)} | {r['why']} |"
        )
    return "\n".join(lines) + "\n"


def permissions_for(rule: Any, action: Action) -> list[str]:
    """What a rule needs for its chosen action, plus what its alerts look up."""
    perms = list(rule.permissions.get(action.value, ()))
    perms += rule.permissions.get("alert", ())
    return perms


# ---------------------------------------------------------------------------
# check-config


def cmd_check_config(args: argparse.Namespace, out: TextIO) -> int:
    from shared.config import ConfigError, load_policy, policy_path

    path = args.file or str(policy_path())
    try:
        loaded = load_policy(path)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_ERROR
    for w in loaded.warnings:
        sys.stderr.write(f"warning: {w}\n")
    enabled = loaded.enabled()
    out.write(f"{path}: valid; {len(enabled)} of {len(functions.RULE_IDS)} rules enabled\n")
    return EXIT_OK


# ---------------------------------------------------------------------------
# replay


def cmd_replay(args: argparse.Namespace, out: TextIO) -> int:
    from shared.config import ConfigError, exemption_for
    from shared.event import BadInput, parse
    from shared.pipeline import evaluate, ignored, triage

    try:
        loaded = _policy(args.policy)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_ERROR
    try:
        # Bytes, decoded leniently: exported logs with a stray invalid byte still replay line by line.
        raw = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
        text = raw.decode("utf-8", errors="replace")
    except OSError as exc:
        sys.stderr.write(f"replay: cannot read {args.file}: {exc.strerror}\n")
        return EXIT_ERROR
    from shared.event import iter_located

    threshold = Severity.parse(args.fail_on) if args.fail_on else None
    read = 0
    skipped: Counter[str] = Counter()
    rejected: dict[str, list[str]] = {}  # reason -> where (line or item numbers)
    matched = 0
    worst_hit = False
    rows: list[dict[str, Any]] = []
    for where, doc in iter_located(text):
        read += 1
        if isinstance(doc, BadInput):
            reason = doc.reason[len(where) + 2:] if where and doc.reason.startswith(where + ": ") else doc.reason
            rejected.setdefault(_reason_key(reason), []).append(where)
            continue
        try:
            event = parse(doc)
        except BadInput as exc:
            rejected.setdefault(_reason_key(exc.reason), []).append(where)
            continue
        t = triage(event)
        if isinstance(t, str):
            skipped[t] += 1
            continue
        if ignored(event.principal, loaded):
            skipped["ignored_principal"] += 1
            continue
        found = evaluate(event, t, loaded)
        if not found:
            skipped["compliant"] += 1
            continue
        for finding, settings in found:
            matched += 1
            ex, _expired = exemption_for(loaded, settings, finding.resource, finding.project)
            sev = settings.severity
            if threshold is not None and sev.rank >= threshold.rank and ex is None:
                worst_hit = True
            row = {
                "rule": finding.rule,
                "severity": sev.value,
                "title": finding.title,
                "resource": finding.resource,
                "project": finding.project,
                "location": finding.location,
                "principal": finding.principal,
                "action": _would(settings, ex),
                "mode": settings.mode.value,
                "event_id": finding.event_id,
                "method": finding.method,
                "timestamp": finding.timestamp,
                "observed": finding.observed,
            }
            if ex is not None:
                row["exempt"] = {"owner": ex.owner, "reason": ex.reason, "expires": str(ex.expires)}
            rows.append(row)
    if args.json:
        for row in rows:
            out.write(json.dumps(row, separators=(",", ":"), default=str) + "\n")
    else:
        _table(rows, out)
    parts = [f"{read} events read", f"{matched} findings"]
    if skipped:
        parts.append("skipped: " + ", ".join(f"{k} {v}" for k, v in sorted(skipped.items())))
    if rejected:
        parts.append("rejected: " + ", ".join(f"{len(v)}× {k}{_where(v)}" for k, v in sorted(rejected.items())))
    sys.stderr.write("replay: " + "; ".join(parts) + "\n")
    return EXIT_FINDINGS if worst_hit else EXIT_OK


def _where(places: list[str]) -> str:
    """" (line 2, line 7, ... 3 more)" for the first few places; "" for a single document."""
    named = [p for p in places if p]
    if not named:
        return ""
    more = f", ... {len(named) - 5} more" if len(named) > 5 else ""
    return f" ({', '.join(named[:5])}{more})"


def _reason_key(reason: str) -> str:
    return reason if len(reason) < 60 else reason[:57] + "..."


def _would(settings: Any, exemption: Any) -> str:
    if exemption is not None:
        return "none (exempt)"
    if settings.mode is Mode.ALERT or settings.action is Action.ALERT:
        return "alert"
    if settings.mode is Mode.DRY_RUN:
        return f"would {settings.action.value} (dry-run)"
    return settings.action.value


def _table(rows: list[dict[str, Any]], out: TextIO) -> None:
    if not rows:
        out.write("no findings\n")
        return
    cols = [("timestamp", "TIME", 19), ("severity", "SEVERITY", 8), ("rule", "RULE", 30),
            ("action", "ACTION", 22), ("resource", "RESOURCE", 70), ("principal", "PRINCIPAL", 32)]
    out.write("  ".join(h.ljust(w) for _, h, w in cols).rstrip() + "\n")
    for r in rows:
        cells = []
        for key, _, w in cols:
            v = _CONTROL.sub("?", str(r.get(key, "")))  # names come from the event: no terminal escapes
            cells.append((v if len(v) <= w else v[: w - 1] + "…").ljust(w))
        out.write("  ".join(cells).rstrip() + "\n")


# ---------------------------------------------------------------------------
# sink-filter and iam-role: infrastructure that never drifts from the rules


def sink_filter(rule_ids: Sequence[str], loaded: Any | None = None) -> str:
    """The Cloud Logging filter selecting the Admin Activity entries these rules trigger on."""
    by_service: dict[str, set[str]] = {}
    for rid in rule_ids:
        if loaded is not None and loaded.settings(rid).mode is Mode.OFF:
            continue
        for service, method in functions.rule(rid).triggers:
            by_service.setdefault(service, set()).add(method)
    if not by_service:
        raise ValueError("no enabled rule selected: the filter would match nothing")
    clauses = []
    for service in sorted(by_service):
        methods = " OR ".join(f'protoPayload.methodName="{m}"' for m in sorted(by_service[service]))
        clauses.append(f'(protoPayload.serviceName="{service}" AND ({methods}))')
    return 'logName:"/logs/cloudaudit.googleapis.com%2Factivity"\nAND (\n  ' + "\n  OR ".join(clauses) + "\n)"


def cmd_sink_filter(args: argparse.Namespace, out: TextIO) -> int:
    ids = args.rules or list(functions.RULE_IDS)
    for rid in ids:
        if rid not in functions.RULE_IDS:
            sys.stderr.write(f"sink-filter: unknown rule {rid!r}; expected one of: {', '.join(functions.RULE_IDS)}\n")
            return EXIT_USAGE
    try:
        out.write(sink_filter(ids, _policy(args.policy)) + "\n")
    except ValueError as exc:
        sys.stderr.write(f"sink-filter: {exc}\n")
        return EXIT_ERROR
    return EXIT_OK


def iam_permissions(rule_ids: Sequence[str], loaded: Any) -> list[str]:
    perms: set[str] = set()
    for rid in rule_ids:
        s = loaded.settings(rid)
        if s.mode is Mode.OFF:
            continue
        r = functions.rule(rid)
        if s.mode in (Mode.ENFORCE, Mode.DRY_RUN):
            perms.update(permissions_for(r, s.action))
        else:
            perms.update(r.permissions.get("alert", ()))
        # Every action re-reads live state, which dry-run needs too.
        perms.update(p for p in r.permissions.get(s.action.value, ()) if p.endswith((".get", ".getIamPolicy", ".list")))
    return sorted(perms)


def _role_description(ids: Sequence[str]) -> str:
    """IAM caps a role description at 256 bytes: name the rules while they fit, else count them."""
    text = f"Exactly what Rampart's enabled rules need: {', '.join(ids)}"
    if len(text.encode()) <= 256:
        return text
    return f"Exactly what Rampart's {len(ids)} enabled rules need (python main.py iam-role --format list)"


def cmd_iam_role(args: argparse.Namespace, out: TextIO) -> int:
    ids = args.rules or list(functions.RULE_IDS)
    perms = iam_permissions(ids, _policy(args.policy))
    if args.format == "list":
        out.write("\n".join(perms) + "\n")
        return EXIT_OK
    role = {
        "title": "Rampart remediation",
        "description": _role_description(ids),
        "stage": "GA",
        "includedPermissions": perms,
    }
    if args.format == "json":
        json.dump(role, out, indent=2)
        out.write("\n")
    else:
        import yaml

        yaml.safe_dump(role, out, sort_keys=False, width=200)
    return EXIT_OK


# ---------------------------------------------------------------------------
# release


def cmd_release(args: argparse.Namespace, out: TextIO) -> int:
    from shared import run_actions

    try:
        result = run_actions.release(args.service, force=args.force)
    except run_actions.ReleaseRefused as exc:
        sys.stderr.write(f"release refused: {exc}\n")
        return EXIT_ERROR
    except run_actions.ReleaseError as exc:
        sys.stderr.write(f"release failed: {exc}\n")
        return EXIT_ERROR
    out.write(f"{result}\n")
    return EXIT_OK


# ---------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace, out: TextIO) -> int:
    from infra.local import demo

    return int(demo.main(keep_going=args.keep_going))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python main.py", description="Rampart: real-time remediation for Cloud Run and Cloud KMS.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("rules", help="list every rule with its mode, severity, triggers and permissions")
    s.add_argument("--json", action="store_true")
    s.add_argument("--markdown", action="store_true", help="the README's rule table")
    s.add_argument("--policy", help="policy file (default: $RAMPART_POLICY or config/policy.yaml)")
    s.set_defaults(func=cmd_rules)

    s = sub.add_parser("check-config", help="validate a policy file; exit 1 with the errors")
    s.add_argument("file", nargs="?")
    s.set_defaults(func=cmd_check_config)

    s = sub.add_parser("replay", help="run the rules over exported audit logs offline (no API calls)")
    s.add_argument("file", help="a file of LogEntries (JSON, JSON array, JSON Lines, push bodies, CloudEvents), or - for stdin")
    s.add_argument("--json", action="store_true", help="one JSON object per finding per line")
    s.add_argument("--policy")
    s.add_argument("--fail-on", choices=[s.value for s in Severity], help="exit 3 when a finding at or above this severity is found")
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("sink-filter", help="the Cloud Logging filter for the enabled rules' triggers")
    s.add_argument("rules", nargs="*")
    s.add_argument("--policy")
    s.set_defaults(func=cmd_sink_filter)

    s = sub.add_parser("iam-role", help="the custom role with exactly the permissions the enabled rules need")
    s.add_argument("rules", nargs="*")
    s.add_argument("--policy")
    s.add_argument("--format", choices=["yaml", "json", "list"], default="yaml")
    s.set_defaults(func=cmd_iam_role)

    s = sub.add_parser("release", help="undo a quarantine: restore the recorded prior state")
    s.add_argument("service", help="projects/P/locations/L/services/S")
    s.add_argument("--force", action="store_true", help="release even if the service changed since the quarantine")
    s.set_defaults(func=cmd_release)

    from shared.sweep.scan import add_parser as add_scan  # the posture sweep's own module

    add_scan(sub)

    s = sub.add_parser("demo", help="the local demo: emulator, stand-in, function, receivers, scenario")
    s.add_argument("--keep-going", action="store_true", help="leave the stack running until Ctrl-C")
    s.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    from shared.config import ConfigError

    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args, out or sys.stdout))
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_ERROR
    except BrokenPipeError:
        return EXIT_OK

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
from shared.event import AUDIT_LOG_TYPE
from shared.model import Action, Mode, Severity

ADMIN_ACTIVITY_LOG_ID = "cloudaudit.googleapis.com/activity"

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FINDINGS = 0, 1, 2, 3
# replay read no valid audit entry (garbage, or the empty export of a failed `gcloud logging read`):
# distinct from "no findings", so a pipeline gated on --fail-on cannot pass on nothing.
EXIT_NO_INPUT = 4
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
        "| rule | severity | default mode → action | detects | triggers (methodName) | why (Google Cloud documentation) |",
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
    valid = 0
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
        valid += 1
        t = triage(event)
        if isinstance(t, str):
            skipped[t] += 1
            continue
        if ignored(event.principal, loaded):
            skipped["ignored_principal"] += 1
            continue
        if all(loaded.settings(rid).mode is Mode.OFF for rid in t):
            skipped["rule_off"] += 1
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
                "timestamp": rfc3339(finding.timestamp),
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
    if valid == 0:
        source = "standard input" if args.file == "-" else args.file
        sys.stderr.write(
            f"replay: no valid audit log entry in {source}: nothing was checked (exit {EXIT_NO_INPUT}). "
            "Is it the output of `gcloud logging read ... --format=json`?\n"
        )
        return EXIT_NO_INPUT
    return EXIT_FINDINGS if worst_hit else EXIT_OK


_TIMESTAMP = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(\.\d{1,9})?\s*(Z|z|UTC|[+-]\d{2}:?\d{2})?$"
)


def rfc3339(ts: str) -> str | None:
    """An audit entry's timestamp as RFC 3339 (`2024-02-02T09:44:26.029835Z`). Exports from
    BigQuery and some SIEMs write `2024-02-02 09:44:26.029835000` with no zone: Cloud Logging
    timestamps are UTC, so no zone means Z. None when the text is not a timestamp at all."""
    m = _TIMESTAMP.match(ts.strip())
    if m is None:
        return None
    date, clock, frac, zone = m.groups()
    frac = (frac or "").rstrip("0")
    frac = "" if frac == "." else frac
    if zone in (None, "Z", "z", "UTC"):
        zone = "Z"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    return f"{date}T{clock}{frac}{zone}"


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
    cols = [("timestamp", "TIME (UTC)", 20), ("severity", "SEVERITY", 8), ("rule", "RULE", 30),
            ("action", "ACTION", 22), ("resource", "RESOURCE", 70), ("principal", "PRINCIPAL", 32)]
    out.write("  ".join(h.ljust(w) for _, h, w in cols).rstrip() + "\n")
    for r in rows:
        cells = []
        for key, _, w in cols:
            v = r.get(key)
            if key == "timestamp":
                # To the second (the full value is in --json); an offset other than Z is kept.
                v = v[:19] + "Z" if v and v.endswith("Z") else (v or "?")
            v = _CONTROL.sub("?", str(v if v is not None else ""))  # names come from the event: no terminal escapes
            cells.append(shorten_middle(v, w).ljust(w))
        out.write("  ".join(cells).rstrip() + "\n")


def shorten_middle(text: str, width: int) -> str:
    """`text` in at most `width` characters, cut in the middle so that both the start (project)
    and the end (the service or key name, which tells resources apart) stay visible."""
    if len(text) <= width:
        return text
    if width < 3:
        return text[:width]
    tail = (width - 1) // 2 + (width - 1) % 2
    head = width - 1 - tail
    return text[:head] + "…" + text[-tail:]


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
    # Exact matches only: `logName:"…%2Factivity"` is a substring test that a log named
    # `evil-cloudaudit.googleapis.com%2Factivity`, which anyone may write, also passes. log_id()
    # matches the log ID exactly in every project, folder and organization of an aggregated sink.
    head = f'log_id("{ADMIN_ACTIVITY_LOG_ID}")\nAND protoPayload."@type"="{AUDIT_LOG_TYPE}"'
    return head + "\nAND (\n  " + "\n  OR ".join(clauses) + "\n)"


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
        if s.mode is Mode.ENFORCE:
            perms.update(permissions_for(r, s.action))
        else:
            # Alert and dry-run write nothing: no write permission (a first rollout's role is read-only).
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
    if args.identity:
        from shared.permissions import CONDITIONS, identity_permissions

        perms = identity_permissions(perms)[args.identity]
        if args.format == "condition":
            out.write((CONDITIONS[args.identity] or "") + "\n")
            return EXIT_OK
    elif args.format == "condition":
        sys.stderr.write("iam-role: --format condition needs --identity (only the KMS writer's binding has one)\n")
        return EXIT_USAGE
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


NO_CREDENTIALS = (
    "no Google Cloud credentials found: run `gcloud auth application-default login` "
    "(or set GOOGLE_APPLICATION_CREDENTIALS), then try again"
)


def cmd_release(args: argparse.Namespace, out: TextIO) -> int:
    from google.auth.exceptions import DefaultCredentialsError

    from shared.actions import quarantine

    try:
        result = quarantine.release(args.service, force=args.force)
    except DefaultCredentialsError:
        sys.stderr.write(f"release: {NO_CREDENTIALS}\n")
        return EXIT_ERROR
    except quarantine.ReleaseRefused as exc:
        sys.stderr.write(_terminal(f"release refused: {exc}"))
        return EXIT_ERROR
    except quarantine.ReleaseError as exc:
        sys.stderr.write(_terminal(f"release failed: {exc}"))
        return EXIT_ERROR
    out.write(_terminal(str(result)))
    _note_release(result)
    return EXIT_OK


def _note_release(result: Any) -> None:
    """Tell the alert store, so a quarantine after this release always alerts (issue 15)."""
    from shared.alerts.dedupe import store_for
    from shared.alerts.history import note_release
    from shared.config import ConfigError, load_policy, policy_path

    try:
        loaded = load_policy(policy_path())
    except ConfigError:
        return
    if loaded.alerts is not None:
        note_release(store_for(loaded.alerts), result.service, rule=result.record.rule, quarantined_at=result.record.at)


def cmd_reset(args: argparse.Namespace, out: TextIO) -> int:
    """Clear the circuit breaker on a resource: Rampart remediates it again from the next event."""
    from shared import breaker
    from shared.config import ConfigError, load_policy, policy_path

    try:
        loaded = load_policy(args.policy or policy_path())
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\n")
        return EXIT_ERROR
    held = breaker.reset(loaded, args.resource.strip(), functions.RULE_IDS)
    out.write(f"{args.resource.strip()}: circuit breaker cleared ({held} rule(s) were holding it in alert mode)\n")
    return EXIT_OK


def _terminal(text: str) -> str:
    """Each line of `text` stripped of escape sequences and control characters: a record's fields
    come from a service someone else controls, and a terminal obeys what it is sent."""
    from shared.terminal import printable

    return "".join(printable(line) + "\n" for line in text.split("\n"))


# ---------------------------------------------------------------------------
# policy push: a new policy in force without a redeploy

POLICY_SECRET = "rampart-policy"


def cmd_policy_push(args: argparse.Namespace, out: TextIO) -> int:
    """Validate FILE, then add it as a new version of the policy secret. The functions mount the
    secret as a file (version `latest`); Cloud Run fetches the latest version whenever the file
    is read, and Rampart re-reads it every few seconds, so the new policy needs no redeploy.

    Through `gcloud secrets versions add`, not the Secret Manager client library: the operator
    pushing a policy is the one who deploys with gcloud, so one login serves both, and the
    functions' image does not carry a client library they never use.
    """
    import shutil
    import subprocess

    from shared.config import ConfigError, load_policy

    try:
        loaded = load_policy(args.file)
    except ConfigError as exc:
        sys.stderr.write(f"{exc}\npolicy push: nothing was pushed; the policy in force is unchanged\n")
        return EXIT_ERROR
    if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", args.project):
        sys.stderr.write(f"policy push: expected --project to be a project id; found {args.project!r}\n")
        return EXIT_USAGE
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,255}", args.secret):
        sys.stderr.write(f"policy push: expected --secret to be a secret id (letters, digits, - and _); found {args.secret!r}\n")
        return EXIT_USAGE
    for w in loaded.warnings:
        sys.stderr.write(f"warning: {w}\n")
    acting = [rid for rid, st in loaded.rules.items() if st.mode is Mode.ENFORCE and st.action is not Action.ALERT]
    a = loaded.alerts
    if acting and (a is None or (a.slack is None and a.email is None and a.pubsub is None)):
        sys.stderr.write(f"warning: {len(acting)} rules will change resources and the policy has no alert channel: "
                         "nobody will be told what Rampart changed (README \"Alerts\")\n")
    cmd = ["gcloud", "secrets", "versions", "add", args.secret, f"--project={args.project}", f"--data-file={args.file}"]
    shown = " ".join(cmd)
    enabled = loaded.enabled()
    summary = f"{args.file}: valid; {len(enabled)} of {len(functions.RULE_IDS)} rules enabled"
    if args.dry_run:
        out.write(f"{summary}\n+ {shown}\n")
        return EXIT_OK
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        sys.stderr.write("policy push: gcloud not found on PATH: install the Google Cloud CLI, or run the command yourself:\n"
                         f"  {shown}\n")
        return EXIT_ERROR
    done = subprocess.run([gcloud, *cmd[1:]], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = _CONTROL.sub(" ", done.stderr.strip())[-600:]
        sys.stderr.write(f"policy push: `{shown}` failed (exit {done.returncode}): {detail}\n"
                         "the policy in force is unchanged\n")
        return EXIT_ERROR
    from shared.config import DEFAULT_CHECK_SECONDS

    out.write(
        f"{summary}\npushed as a new version of secret {args.secret} in {args.project}: every instance uses it "
        f"within about {DEFAULT_CHECK_SECONDS:.0f} s of its next event (RAMPART_POLICY_CHECK_SECONDS); an instance "
        "that finds it invalid keeps the policy it had and logs rampart.policy_rejected\n"
    )
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
    s.add_argument("--fail-on", type=str.lower, choices=[s.value for s in Severity], metavar="SEVERITY",
                   help="exit 3 when a finding at or above this severity is found: low, medium, high or critical "
                        "(any case); exit 4 when the input holds no valid audit entry")
    s.set_defaults(func=cmd_replay)

    s = sub.add_parser("sink-filter", help="the Cloud Logging filter for the enabled rules' triggers")
    s.add_argument("rules", nargs="*")
    s.add_argument("--policy")
    s.set_defaults(func=cmd_sink_filter)

    s = sub.add_parser("iam-role", help="the custom role with exactly the permissions the enabled rules need")
    s.add_argument("rules", nargs="*")
    s.add_argument("--policy")
    s.add_argument("--format", choices=["yaml", "json", "list", "condition"], default="yaml",
                   help="condition: the IAM condition its org/folder binding carries (empty: none)")
    s.add_argument("--identity", choices=["detect", "act-run", "act-kms"],
                   help="only what that identity holds: detect reads, act-run/act-kms write (README, Threat model)")
    s.set_defaults(func=cmd_iam_role)

    s = sub.add_parser("release", help="undo a quarantine: restore the recorded prior state")
    s.add_argument("service", help="projects/P/locations/L/services/S")
    s.add_argument("--force", action="store_true", help="release even if the service changed since the quarantine")
    s.set_defaults(func=cmd_release)

    s = sub.add_parser("policy", help="policy push FILE: validate a policy and put it in force without a redeploy")
    psub = s.add_subparsers(dest="policy_command", required=True, metavar="SUBCOMMAND")
    pp = psub.add_parser("push", help="validate FILE and add it as a new version of the policy secret")
    pp.add_argument("file")
    pp.add_argument("--project", required=True, help="the project Rampart runs in (deploy.sh --project)")
    pp.add_argument("--secret", default=POLICY_SECRET, help=f"the policy secret (default {POLICY_SECRET})")
    pp.add_argument("--dry-run", action="store_true", help="validate and print the gcloud command; change nothing")
    pp.set_defaults(func=cmd_policy_push)

    from shared.sweep.scan import add_parser as add_scan  # the posture sweep's own module

    add_scan(sub)

    s = sub.add_parser("reset", help="clear the circuit breaker holding a resource in alert mode")
    s.add_argument("resource", help="the resource's full name, as in the alert")
    s.add_argument("--policy")
    s.set_defaults(func=cmd_reset)

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

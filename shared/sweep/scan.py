"""`python main.py scan`: a posture sweep from a workstation, with the same code as the workers.

Exit codes as for `replay`: 0 done; 3 when `--fail-on` is reached (a violation at or above that
severity, not exempt); 1 when the policy is invalid or the sweep is incomplete (a part of the
scope not swept, a shard that failed): an incomplete sweep never passes as a clean one; 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_FINDINGS = 0, 1, 2, 3


def add_parser(sub: Any) -> None:
    """Register `scan` on the CLI's subparsers (shared/cli.py)."""
    from shared.model import Severity

    s = sub.add_parser("scan", help="sweep: run every rule on the live state of every resource in scope")
    s.add_argument("--scope", action="append", default=[],
                   help="projects/ID, folders/N or organizations/N (repeatable; default: the policy's sweep.scopes)")
    s.add_argument("--rule", action="append", default=[], help="only this rule (repeatable)")
    s.add_argument("--json", action="store_true", help="the whole report as one JSON object on stdout")
    s.add_argument("--report", metavar="FILE.html", help="also write the HTML report there")
    s.add_argument("--fail-on", choices=[v.value for v in Severity],
                   help="exit 3 when a violation at or above this severity is found (exempt ones excluded)")
    s.add_argument("--policy", help="policy file (default: $RAMPART_POLICY or config/policy.yaml)")
    s.add_argument("--no-alert", action="store_true", help="record and report only; send no alert")
    s.add_argument("--workers", type=int, help="threads judging shards (default: the policy's sweep.workers)")
    s.add_argument("--sweep-id", help="sweep nothing: fetch the report of a scaled-out sweep (rampart_sweep) from Firestore")
    s.set_defaults(func=cmd_scan)


def cmd_scan(args: argparse.Namespace, out: TextIO) -> int:
    import functions
    from shared.config import load_policy, policy_path
    from shared.sweep import local
    from shared.sweep.lister import AssetLister, check_scope
    from shared.sweep.shard import SweepContext

    loaded = load_policy(args.policy or policy_path())  # ConfigError: exit 1 in cli.main
    cfg = loaded.policy.sweep
    if args.sweep_id:
        from shared.sweep.worker import progress_store

        fetched = progress_store(loaded).report(args.sweep_id)
        if fetched is None:
            sys.stderr.write(f"scan: no sweep {args.sweep_id[:100]!r} in Firestore collection {cfg.progress_collection}\n")
            return EXIT_ERROR
        return _output(fetched, args, out, loaded)
    scopes = tuple(args.scope) or cfg.scopes
    if not scopes:
        sys.stderr.write("scan: no scope: pass --scope projects/ID|folders/N|organizations/N or set sweep.scopes\n")
        return EXIT_USAGE
    unknown = [r for r in args.rule if r not in functions.RULE_IDS]
    if unknown:
        sys.stderr.write(f"scan: unknown rule(s) {', '.join(unknown)}; expected any of: {', '.join(functions.RULE_IDS)}\n")
        return EXIT_USAGE
    try:
        for scope in scopes:
            check_scope(scope)
    except ValueError as exc:
        sys.stderr.write(f"scan: {exc}\n")
        return EXIT_USAGE
    ctx = SweepContext(loaded=loaded, rules=tuple(args.rule) or None, alert=not args.no_alert)
    lister = AssetLister(qps=cfg.qps, page_size=cfg.page_size)
    from shared import log

    log.set_stream(sys.stderr)  # each record's log line; stdout holds the summary or the JSON
    bar = _Bar(sys.stderr) if sys.stderr.isatty() and not args.json else None
    rep = local.run(scopes, ctx, lister=lister, workers=args.workers or cfg.workers, on_progress=bar)
    if bar:
        bar.done()
    return _output(rep, args, out, loaded)


def _output(rep: Any, args: argparse.Namespace, out: TextIO, loaded: Any) -> int:
    """Print the report (summary or JSON), write the HTML page if asked; the exit code."""
    from shared.model import Severity
    from shared.sweep import report

    if args.json:
        json.dump(report.to_json(rep), out, default=str)
        out.write("\n")
    else:
        report.summary(rep, out)
    if args.report:
        try:
            Path(args.report).write_text(report.to_html(rep), encoding="utf-8")
        except OSError as exc:
            sys.stderr.write(f"scan: cannot write {args.report}: {exc.strerror}\n")
            return EXIT_ERROR
    if args.fail_on:
        threshold = Severity.parse(args.fail_on)
        if any(n and loaded.settings(rule).severity.rank >= threshold.rank for rule, n in rep.tally.violations.items()):
            return EXIT_FINDINGS
    return EXIT_OK if rep.complete else EXIT_ERROR


class _Bar:
    """A one-line progress bar on a terminal: shards done of those planned so far."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def __call__(self, rep: Any) -> None:
        total = max(rep.shards_total, 1)
        width = 30
        filled = int(width * rep.shards_done / total)
        planning = "" if rep.plan_done else " (listing...)"
        seen = sum(rep.tally.seen.values())
        self.stream.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {rep.shards_done}/{rep.shards_total} shards, "
                          f"{seen} resources, {sum(rep.tally.violations.values())} violations{planning}   ")
        self.stream.flush()

    def done(self) -> None:
        self.stream.write("\n")

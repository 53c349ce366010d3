"""The README's reliability table, rendered from tests/reliability/results.json (what `make soak`
last recorded). `python -m tests.reliability.report` prints it; tests/test_readme.py checks the
README carries exactly this."""

from __future__ import annotations

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results.json"
COLUMNS = ("events_pushed", "duplicates", "faults_injected", "violations_remediated", "alerts_sent", "lost", "doubled",
           "unseen")
HEADERS = ("events pushed", "duplicates", "faults injected", "violations remediated", "alerts sent", "lost", "doubled",
           "ended without record or alert")

# What each scenario does, in the order the README lists them.
SCENARIOS = {
    "redelivery_and_duplicates": "every entry delivered 2–5 times, shuffled, to two instances; stale copies after the work is done",
    "api_faults": "429/500/503, calls delayed past their deadline and etags moved mid-write on a share of API calls",
    "permanent_failures": "403 and 404 on the write: recorded as failed, alerted, acknowledged, not retried",
    "function_killed_mid_remediation": "both instances SIGKILLed while their writes hang, then restarted",
    "alert_channels_down": "Slack refusing connections and the SMTP server stopped for a while",
    "emulators_down_and_back_empty": "the Firestore dedupe store down, then back empty; the Pub/Sub emulator restarted",
    "own_changes_ignored": "Rampart's own reverts come back as audit entries",
    "deployer_reopening_ingress": "a deployer reopening ingress again and again on one service",
    "burst_of_irrelevant_events": "10,000+ irrelevant entries published in front of one violation",
    "broken_policy_at_start": "the functions start on a broken policy file, which is then fixed",
    "writer_wins_every_race": "a concurrent writer wins every etag race: every delivery fails, the message is dead-lettered",
    "sweep_after_function_down": "sweep: the function down, violations' entries dead-lettered, then one sweep",
    "sweep_overlapping_events": "sweep: a sweep overlapping a burst of events on the same violations",
    "two_overlapping_sweeps": "sweep: two sweeps at once over the same violations",
    "sweep_worker_killed_mid_shard": "sweep: both sweep workers SIGKILLed while their writes hang",
}


def render(data: dict) -> str:
    rows = ["| scenario | " + " | ".join(HEADERS) + " |", "|---|" + "---|" * len(COLUMNS)]
    scenarios = data["scenarios"]
    for name, what in SCENARIOS.items():
        if name not in scenarios:
            continue  # added after the last soak: shown once a soak has recorded it
        fig = scenarios[name]
        rows.append(f"| {what} | " + " | ".join(_cell(fig, c) for c in COLUMNS) + " |")
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        raise KeyError(f"results.json has scenarios the report does not describe: {unknown}")
    totals = data["totals"]
    rows.append("| **all** | " + " | ".join(f"**{_cell(totals, c)}**" for c in COLUMNS) + " |")
    return "\n".join(rows) + "\n" + _store_down(scenarios.get("emulators_down_and_back_empty", {}))


def _store_down(fig: dict) -> str:
    """The dedupe-store-down figure (issue 15 §6), once a soak has measured it."""
    down, up = fig.get("seconds_to_alert_all_while_dedupe_down"), fig.get("seconds_to_alert_all_with_dedupe_up")
    if down is None or up is None:
        return ""
    n = fig.get("violations_while_dedupe_down", "?")
    return (f"\nWith the Firestore dedupe store down, {n} violations published at once were all alerted on every "
            f"channel {down:g} s after publishing ({up:g} s for as many with the store up).\n")


def _cell(fig: dict, column: str) -> str:
    # A figure a run did not measure (results from before it existed) is shown as not measured, not 0.
    return f"{int(fig[column]):,}" if column in fig else "–"


def main() -> int:
    sys.stdout.write(render(json.loads(RESULTS.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

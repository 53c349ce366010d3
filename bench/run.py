"""`make bench`: run every benchmark, print a table with each target and whether it was met, and
write bench/results.json with the machine it ran on.

    python -m bench.run                  # everything (about 11 minutes on 2 cores)
    python -m bench.run --only per_event,cold_start
    python -m bench.run --only knee,cold_violation --quick
    python -m bench.run --quick          # small sizes, to check the bench itself (~4 minutes)

Sections: per_event, cold_start (bench/coldstart.py: imports, first events in process), e2e
(bench/e2e.py), knee (bench/knee.py: capacity to the knee, Rampart vs the no-op function, the
sizing table, peak RSS at the knee) and cold_violation (bench/coldstart.py: publish → done for
the first violation of each action kind a new instance receives, and where its time goes).
Every section records the load average it ran under: on a shared machine, its figures are the
neighbours' as much as Rampart's.

Nothing here fails on a missed target: the exit status is 0 whenever every benchmark ran.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Target, fmt, load_average, machine

SECTIONS = ("per_event", "cold_start", "e2e", "knee", "cold_violation", "sweep")
RESULTS = ROOT / "bench" / "results.json"


def run(only: tuple[str, ...] = SECTIONS, quick: bool = False) -> dict[str, Any]:
    from bench import coldstart, e2e, knee, per_event
    from bench.corpus import load_mix

    started = time.monotonic()
    from bench.provenance import measured_at

    results: dict[str, Any] = {"machine": machine(), "provenance": measured_at(), "quick": quick, "sections": {}}
    mix = load_mix() if {"per_event", "e2e"} & set(only) else None  # the sweep needs no audit entries
    if "per_event" in only:
        _say("per-event cost in process (one core) ...")
        results["sections"]["per_event"] = per_event.measure(rounds=5 if quick else 15, repeat=2 if quick else 5, mix=mix)
    if "cold_start" in only:
        _say("cold start (fresh processes) ...")
        results["sections"]["cold_start"] = coldstart.measure(runs=2 if quick else 5)
    if "e2e" in only:
        _say("end to end on the local pipeline (emulators, stand-in, functions-framework) ...")
        kwargs: dict[str, Any] = (
            {"violations": 40, "seconds": 5, "emulator_seconds": 3, "baseline_sequential": 20, "baseline_seconds": 2,
             "warm_violations": 5}
            if quick else {}
        )
        results["sections"]["e2e"] = e2e.measure(mix=mix, **kwargs)
    if "knee" in only:
        _say("capacity to the knee: Rampart and the no-op function, direct and through the emulator ...")
        results["sections"]["knee"] = knee.measure(quick=quick, mix=mix)
    if "cold_violation" in only:
        _say("first violation of each action kind on a new instance ...")
        cold = coldstart.first_violations(runs=1 if quick else 3)
        cold["breakdown"] = coldstart.breakdown()
        results["sections"]["cold_violation"] = cold
    if "sweep" in only:
        from bench import sweep

        _say("posture sweep of a seeded estate (stand-in, Pub/Sub and Firestore emulators, 2 sweep workers) ...")
        results["sections"]["sweep"] = sweep.measure(sweep.QUICK_SIZES if quick else sweep.SIZES)
    results["duration_s"] = round(time.monotonic() - started, 1)
    results["machine"]["load_average_at_end"] = load_average()
    results["targets"] = [t for s in results["sections"].values() for t in s.get("targets", [])]
    return results


def _say(text: str) -> None:
    sys.stderr.write(f"bench: {text}\n")
    sys.stderr.flush()


def _row(label: str, value: str, note: str = "") -> str:
    return f"  {label:<52} {value:>14}  {note}".rstrip()


def table(results: dict[str, Any]) -> str:
    """The human-readable summary: the machine, the key figures of each section, the targets."""
    m = results["machine"]
    lines = [
        f"Rampart benchmarks — {m['cpu_model']}, {m['cores']} cores ({m['cores_usable']} usable), "
        f"{m['memory_mib'] / 1024:.1f} GiB, Python {m['python']}, {m['os']}",
        f"  {m['date']}, commit {m['git_commit']}{' + uncommitted changes' if m.get('uncommitted_changes') else ''}, load average {m['load_average_at_start']} at start, "
        f"{m.get('load_average_at_end')} at end; {results.get('duration_s', 0):.0f} s" + (" (--quick)" if results.get("quick") else ""),
        "",
    ]
    s = results["sections"]
    if "cold_start" in s:
        c = s["cold_start"]
        p = c["process"]
        lines += [
            f"Cold start (median of {c['runs']} fresh processes after a warm-up; peak RSS)",
            _row("python -c pass", f"{p['interpreter']['median_ms']:.0f} ms", f"{p['interpreter']['peak_rss_mib']} MiB"),
            _row("import functions_framework", f"{p['ff']['median_ms']:.0f} ms", f"{p['ff']['peak_rss_mib']} MiB"),
            _row("import main", f"{p['main']['median_ms']:.0f} ms", f"{p['main']['peak_rss_mib']} MiB"),
            _row("  main over functions-framework (process)", f"{c['main_over_ff_ms']:.0f} ms"),
            _row("  main's own imports, in process", f"{c['import_main_after_ff_in_process_ms']:.1f} ms"),
            _row("  main over ff without .pyc (compiles every start)", f"{c['main_over_ff_no_pyc_ms']:.0f} ms"),
            _row("first irrelevant event after import", f"{c['on_demand']['first_irrelevant_ms']:.2f} ms"),
            _row("first remediation, libraries loaded on demand", f"{c['on_demand']['first_remediation_ms']:.0f} ms",
                 f"peak {c['on_demand']['peak_rss_mib']} MiB; loads {', '.join(c['on_demand']['libraries_after_run_remediation'])}"),
            _row("first remediation after the background warm-up", f"{c['warmed']['first_remediation_ms']:.0f} ms",
                 f"warm-up took {fmt(c['warmed']['warm_up_ms'])} ms; peak {c['warmed']['peak_rss_mib']} MiB"),
            _row("irrelevant event while the warm-up runs", f"{fmt(c['warmed']['irrelevant_during_warm_up_ms'])} ms",
                 f"max {fmt(c['warmed']['irrelevant_during_warm_up_max_ms'])} ms"),
            _row("import google.cloud.run_v2 / .services.services only",
                 f"{c['run_v2_import_ms']:.0f} / {c['run_v2_services_only_import_ms']:.0f} ms",
                 "(the package __init__ runs either way)"),
            "",
        ]
    if "per_event" in s:
        e = s["per_event"]
        lines.append("Per-event cost in process, one core (from the CloudEvent functions-framework hands the function)")
        for key, label in (("irrelevant_no_policy", "irrelevant, no policy loaded yet"), ("irrelevant", "irrelevant, warm instance"),
                           ("relevant", "relevant: all rules + decision")):
            r = e[key]
            lines.append(_row(label, f"{r['us_per_event']:.1f} µs", f"{r['events_per_s']}/s; floor {r['floor_us_per_event']:.1f} µs "
                              f"-> {r['ratio_to_floor']:.2f}x (rounds {r['ratio_min_max'][0]}-{r['ratio_min_max'][1]}x)"))
        mx = e["mix"]
        lines += [f"  mix: {mx['irrelevant_entries']} irrelevant entries from {mx['irrelevant_services']} services, "
                  f"{mx['relevant_entries']} relevant (Cloud Run, KMS)", ""]
    if "e2e" in s:
        x = s["e2e"]
        b, lat = x["baseline"], x["latency"]
        lines += [
            f"End to end on the local pipeline (one function instance, alerts on; stack up in {x['stack_start_s']} s)",
            _row("no-op function: publish → handler p50/p95/p99", _pct(b["publish_to_handler_ms"]), "(the emulator alone)"),
            _row("  pushes the emulator keeps in flight", str(b["pushes_in_flight_max"])),
            _row(f"  delivered at {b['offered_rate']:.0f}/s offered", f"{b['delivered_rate']}/s",
                 f"p50 {b['latency_at_offered_rate_ms'].get('p50')} ms behind"),
            _row(f"violations: publish → compliant p50/p95/p99 (n={lat['violations']})", _pct(lat["publish_to_compliant_ms"]),
                 f"Run {_pct(lat['run_ms'])}, KMS {_pct(lat['kms_ms'])}"),
            _row("  of which the remediation call (record duration_ms)", _pct(lat["remediation_call_ms"])),
            _row("  of which the publish RPC", _pct(lat["publish_rpc_ms"])),
            _row("first violations on a fresh stack", ", ".join(f"{v:.0f}" for v in x["fresh_stack_first_violations_ms"]) + " ms"),
        ]
        if "restart" in x:
            lines.append(_row("first violation after an instance restart", f"{x['restart']['immediately_ms']:.0f} ms",
                              f"{x['restart']['after_3s_ms']:.0f} ms when it comes 3 s later"))
        for key, label in (("sustained_direct", "pushed straight at the function"), ("sustained_emulator", "through the emulator")):
            r = x[key]
            rate = r.get("achieved_rate", r.get("delivered_rate_estimate"))
            lines.append(_row(f"{r['offered_rate']:.0f}/s for {r['seconds']:.0f} s, {label}", f"{rate}/s",
                              f"{r['remediated']}/{r['violations']} violations remediated, {r['records_remediated']} records, "
                              f"latency {_pct(r['violation_latency_ms'])} ms, failures {r['event_failed_lines']}"))
        lines += [
            _row("dead-lettered messages", str(x["dead_lettered"])),
            _row("function server peak RSS (VmHWM)", f"{x['memory']['peak_rss_mib']} MiB"),
            "",
        ]
    if "knee" in s:
        from bench.knee import table_lines

        lines += [*table_lines(s["knee"]), ""]
    if "cold_violation" in s:
        c = s["cold_violation"]
        lines.append(f"First violation a new instance receives, publish → done (median of {c['runs']}; "
                     f"load {c['load_average_at_start']} -> {c['load_average_at_end']})")
        for kind, row in c["kinds"].items():
            why = c.get("breakdown", {}).get(kind, {})
            parts = ", ".join(f"{k} {v:.0f}" for k, v in why.get("parts_ms", {}).items())
            lines.append(_row(kind.replace("_", " "), f"{fmt(row['median_ms'])} ms",
                              f"in process under cProfile: import main {why.get('import_main_ms', float('nan')):.0f} ms, then {parts} ms"
                              if why else ""))
        lines.append("")
    if "sweep" in s:
        w = s["sweep"]
        lines.append(f"Posture sweep ({w['workers']} sweep workers; one request, shards of 500 records; dry-run; "
                     f"worker peak RSS {w['worker_peak_rss_mib']} MiB)")
        for r in w["runs"]:
            lines.append(_row(f"{r['services']:,} services + {r['keys']:,} keys, {r['projects']} projects",
                              f"{r['wall_s']:.1f} s",
                              f"{r['records_listed']:,} records, {r['shards']} shards, {r['api_calls']} API calls "
                              f"({r['api_calls_per_resource']}/record), {r['violations_found']}/{r['violations_planted']} "
                              "violations found"))
        lines += [_row("wall time growth, first to last estate", f"{w['growth_wall_ratio']}×"), ""]
    lines.append("Targets")
    for t in results["targets"]:
        lines.append(Target(**{k: v for k, v in t.items() if k != "met"}).line())
    met = sum(t["met"] for t in results["targets"])
    lines.append(f"  {met} of {len(results['targets'])} met")
    return "\n".join(lines)


def _pct(s: dict[str, Any]) -> str:
    if not s or not s.get("n"):
        return "n/a"
    return f"{s['p50']:.0f}/{s['p95']:.0f}/{s['p99']:.0f}"


def section_provenance(data: dict[str, Any]) -> dict[str, Any]:
    """`data` with each section's own provenance: a section that has none (a file written before
    sections carried one) was measured by the newest run in the merge chain that did not keep it."""
    from bench.provenance import recorded

    runs = [(recorded(data), set(data.get("merged_into", {}).get("kept", []) if data.get("merged_into") else []))]
    m = data.get("merged_into")
    while m:
        commit = (m.get("machine") or {}).get("git_commit", "")
        runs.append(({"commit": commit, "core_uncommitted_changes": (m.get("machine") or {}).get("uncommitted_changes", False)},
                     set((m.get("earlier") or {}).get("kept", [])) if m.get("earlier") else set()))
        m = m.get("earlier")
    # runs[i] = (provenance of run i, sections run i kept from run i+1); run i measured the rest.
    sections = {}
    for name, sec in data.get("sections", {}).items():
        if "provenance" not in sec:
            prov = next((p for p, kept in runs if name not in kept), runs[-1][0])
            sec = {**sec, "provenance": prov}
        sections[name] = sec
    return {**data, "sections": sections}


def oldest_provenance(results: dict[str, Any]) -> dict[str, Any]:
    """The file's provenance: its oldest section's commit (the figures describe that code or newer)."""
    from bench.provenance import oldest

    provs = [sec["provenance"] for sec in results["sections"].values()]
    return {"commit": oldest([p["commit"] for p in provs]), "core_uncommitted_changes": any(p["core_uncommitted_changes"] for p in provs),
            "sections": {k: sec["provenance"]["commit"] for k, sec in results["sections"].items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.run", description="Rampart benchmarks (make bench).")
    p.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    p.add_argument("--quick", action="store_true", help="small sizes: checks the bench, not Rampart")
    p.add_argument("--out", default=str(RESULTS), help="where to write the JSON results (default bench/results.json)")
    p.add_argument("--merge", action="store_true",
                   help="keep the other sections already in --out (re-run some sections of a full run)")
    a = p.parse_args(argv)
    only = tuple(x.strip() for x in a.only.split(",") if x.strip())
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown:
        p.error(f"unknown section(s) {', '.join(unknown)}; expected some of {', '.join(SECTIONS)}")
    results = run(only, quick=a.quick)
    for sec in results["sections"].values():
        sec["provenance"] = results["provenance"]
    if a.merge and Path(a.out).exists():
        old = json.loads(Path(a.out).read_text())
        kept = {k: v for k, v in section_provenance(old)["sections"].items() if k not in only}
        results["sections"] = {**kept, **results["sections"]}
        results["merged_into"] = {"machine": old.get("machine"), "duration_s": old.get("duration_s"),
                                  "kept": sorted(kept), "earlier": old.get("merged_into")}
        results["targets"] = [t for sec in results["sections"].values() for t in sec.get("targets", [])]
        results["provenance"] = oldest_provenance(results)
    text = table(results)
    print(text)
    results["table"] = text.splitlines()
    Path(a.out).write_text(json.dumps(results, indent=2, default=str, ensure_ascii=False) + "\n")
    _say(f"results written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

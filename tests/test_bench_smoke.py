"""The benchmarks (`make bench`) still run: each measurement on tiny inputs returns well-formed
numbers, and the table renders. Nothing here checks a speed: that is the bench's job, not CI's."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench import coldstart, common, e2e, knee, per_event
from bench import run as bench_run
from bench.corpus import cloud_events, load_mix


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _summary_ok(s: dict[str, Any], n: int | None = None) -> None:
    assert s["n"] >= 1 if n is None else s["n"] == n, s
    for key in ("min", "p50", "p95", "p99", "max", "mean"):
        assert _finite(s[key]) and s[key] >= 0, (key, s)
    assert s["min"] <= s["p50"] <= s["p95"] <= s["p99"] <= s["max"], s


def _targets_ok(targets: list[dict[str, Any]]) -> None:
    assert targets
    for t in targets:
        assert set(t) >= {"name", "value", "goal", "unit", "op", "met"}
        assert isinstance(t["met"], bool) and _finite(t["goal"]), t
        if _finite(t["value"]):
            json.dumps(t, allow_nan=False)  # results.json stays valid JSON


def test_percentiles_and_summary() -> None:
    assert common.percentile([3, 1, 2], 50) == 2
    assert common.percentile([0, 10], 99) == pytest.approx(9.9)
    assert math.isnan(common.percentile([], 50))
    assert common.summary([]) == {"n": 0}
    _summary_ok(common.summary([5.0, 1.0, 3.0]), n=3)


def test_machine_names_cpu_cores_memory_python_and_date() -> None:
    m = common.machine()
    assert m["cpu_model"] and m["cores"] >= 1 and m["memory_mib"] > 0
    assert m["python"].count(".") == 2 and m["date"].endswith("Z")


def test_corpus_mix_splits_irrelevant_from_relevant_and_wraps_like_functions_framework() -> None:
    mix = load_mix()
    assert len(mix.irrelevant) > 100 and len(mix.relevant) > 10 and len(mix.services) > 10
    (ce,) = cloud_events(mix.irrelevant[:1], "t-")
    assert ce["type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert set(ce.data["message"]) >= {"data", "messageId", "publishTime", "attributes"}


def test_per_event_on_tiny_inputs() -> None:
    r = per_event.measure(rounds=2, repeat=1, limit=4)
    for key in ("irrelevant_no_policy", "irrelevant", "relevant"):
        row = r[key]
        assert row["events"] == 4 and row["rounds"] == 2
        for f in ("us_per_event", "floor_us_per_event", "ratio_to_floor", "events_per_s"):
            assert _finite(row[f]) and row[f] > 0, (key, f, row)
    assert r["relevant"]["findings"] >= 1
    _targets_ok(r["targets"])


@pytest.mark.integration
def test_cold_start_once() -> None:
    r = coldstart.measure(runs=1)
    for name in ("interpreter", "ff", "main", "main_no_pyc"):
        assert _finite(r["process"][name]["median_ms"]) and r["process"][name]["peak_rss_mib"] > 0
    assert r["on_demand"]["outcomes"] == ["remediated"] and r["warmed"]["outcomes"] == ["remediated"]
    for f in ("first_irrelevant_ms", "first_remediation_ms", "peak_rss_mib"):
        assert _finite(r["on_demand"][f]) and r["on_demand"][f] > 0
    assert _finite(r["warmed"]["warm_up_ms"]) and _finite(r["run_v2_import_ms"])
    _targets_ok(r["targets"])


@pytest.mark.integration
def test_end_to_end_on_tiny_inputs_and_the_table() -> None:
    r = e2e.measure(violations=3, rate=20, seconds=1, emulator_seconds=1, baseline_sequential=2, baseline_seconds=0.5,
                    warm_violations=0, restarts=False)
    _summary_ok(r["baseline"]["publish_to_handler_ms"], n=2)
    # Whether Rampart remediated everything is tests/test_e2e.py's business; here: the counts add up.
    lat = r["latency"]
    assert lat["violations"] == 3 and 1 <= lat["remediated"] <= 3
    _summary_ok(lat["publish_to_compliant_ms"])
    for key in ("sustained_direct", "sustained_emulator"):
        s = r[key]
        assert s["violations"] >= 1 and 0 <= s["remediated"] <= s["violations"], s
        assert isinstance(s["all_remediated"], bool) and _finite(s["publishing_s"]), s
    assert sum(r["sustained_direct"]["responses"].values()) == 20
    assert isinstance(r["dead_lettered"], int)
    assert r["memory"]["peak_rss_mib"] > 0
    _targets_ok(r["targets"])

    results = {"machine": common.machine(), "quick": True, "duration_s": 1.0,
               "sections": {"per_event": per_event.measure(rounds=1, repeat=1, limit=2), "e2e": r}}
    results["targets"] = [t for s in results["sections"].values() for t in s["targets"]]
    text = bench_run.table(results)
    assert "publish → compliant" in text and "Targets" in text and results["machine"]["cpu_model"] in text


def test_ramp_finds_each_servers_knee_and_bisects_the_gap() -> None:
    """The ramp logic on fake servers of known capacity: no servers, no timing."""
    capacity = {"noop": 300.0, "rampart": 130.0}

    def step(server: Any, load: knee.Load, rate: float) -> dict[str, Any]:
        over = rate > capacity[server.name]
        return {"sent": len(load.data), "failed": 0, "achieved_rate": rate * (0.5 if over else 1.0),
                "latency_ms": common.summary([900.0 if over else 10.0])}

    servers = {name: type("S", (), {"name": name})() for name in ("noop", "rampart")}
    out = knee.ramp(servers, lambda _n, k: knee.Load([b"{}"] * k), step, [50, 100, 200, 400], step_s=0.01, bound_ms=500,
                    bisect=2, retry=1)
    # Geometric midpoints: 200..400 -> 283 held -> 336 broke; 100..200 -> 141 broke -> 119 held.
    assert out["noop"]["broke_at"] == 400 and out["noop"]["knee"] == 283 and out["noop"]["broke_at_last"] == 336
    assert out["rampart"]["broke_at"] == 200 and out["rampart"]["knee"] == 119 and out["rampart"]["broke_at_last"] == 141
    assert not out["noop"]["never_broke"]
    broke = [s for s in out["rampart"]["steps"] if not s["held"]]
    assert [s["rate"] for s in broke] == [200, 200, 141, 141]  # each broken step was run once more before it counted
    assert all(s["broke"] == "p99 900 ms > 500" for s in broke)


def test_ramp_runs_a_broken_step_again_before_it_counts() -> None:
    """One burst from a neighbour at a low rate does not end a server's ramp."""

    def run(retry: int) -> tuple[dict[str, Any], list[float]]:
        seen: list[float] = []

        def step(server: Any, load: knee.Load, rate: float) -> dict[str, Any]:
            seen.append(rate)
            over = rate > 300 or (rate == 100 and seen.count(100) == 1)  # the first 100/s step: a burst
            return {"sent": len(load.data), "failed": 0, "latency_ms": common.summary([900.0 if over else 10.0])}

        servers = {"rampart": type("S", (), {"name": "rampart"})()}
        out = knee.ramp(servers, lambda _n, k: knee.Load([b"{}"] * k), step, [50, 100, 200, 400], step_s=0.01,
                        bound_ms=500, bisect=0, retry=retry)
        return out["rampart"], seen

    with_retry, seen = run(1)
    assert (with_retry["knee"], with_retry["broke_at"], seen) == (200, 400, [50, 100, 100, 200, 400, 400])
    without, seen = run(0)
    assert (without["knee"], without["broke_at"], seen) == (50, 100, [50, 100])


def test_sink_filter_share_counts_what_the_rules_trigger_on() -> None:
    mix = load_mix()
    passing = [e for e in mix.corpus if knee.sink_passes(e)]
    assert 0 < len(passing) < len(mix.corpus) // 5
    assert not any(knee.sink_passes(e) for e in mix.irrelevant if e.get("protoPayload", {}).get("serviceName") == "bigquery.googleapis.com")


@pytest.mark.integration
def test_knee_on_a_tiny_ladder_and_the_table() -> None:
    r = knee.measure(ladder=[20, 40], step_s=0.5, bisect=0, mixes=("irrelevant", "violations"))
    for m in ("irrelevant", "violations"):
        for mode in knee.MODES:
            for name in knee.SERVERS:
                ramp = r["mixes"][m][mode][name]
                assert ramp["steps"], (m, mode, name)
                for step in ramp["steps"]:
                    assert isinstance(step["held"], bool) and step["rate"] in (20, 40) and len(step["load_average"]) == 3
                    assert step["sent"] == int(step["rate"] * 0.5) and 0 <= step["ok"] <= step["sent"]
                assert ramp["knee"] in (0, 20, 40)
        assert r["mixes"][m]["peak_rss_mib"]["rampart"] > 0
    # Every violation Rampart was sent was remediated, or the step says it was lost.
    for step in r["mixes"]["violations"]["direct"]["rampart"]["steps"]:
        assert step["remediated"] + step["unremediated"] == step["sent"]
    assert [row["entries_per_s"] for row in r["sizing"]["rows"]] == [100, 1000, 10000]
    assert 0 < r["sink_filter"]["pass_share"] < 1
    assert r["p99_bounds_ms"]["emulator"] == knee.P99_BOUND_MS["emulator"] + r["emulator_floor_p99_ms"]
    _targets_ok(r["targets"])
    text = "\n".join(knee.table_lines(r))
    assert "Capacity to the knee" in text and "ratio" in text


@pytest.mark.integration
def test_first_violation_of_each_action_kind_on_a_new_instance() -> None:
    r = coldstart.first_violations(runs=1, warm_up_round=False)
    assert set(r["kinds"]) == set(coldstart.KINDS)
    for kind, row in r["kinds"].items():
        assert _finite(row["median_ms"]) and row["median_ms"] > 0, (kind, row)  # nan: never done within 30 s
    _targets_ok(r["targets"])
    why = coldstart.breakdown(kinds=("revert", "alert_only"))
    assert why["revert"]["outcome"] == "remediated" and why["alert_only"]["outcome"] == "alerted"
    parts = why["revert"]["parts_ms"]
    assert set(parts) == {*coldstart.PARTS, "rest"} and parts["imports"] > 0 and parts["api_round_trips"] > 0
    assert sum(parts.values()) == pytest.approx(why["revert"]["profiled_ms"], rel=0.05)
@pytest.mark.integration
def test_sweep_bench_runs_on_a_tiny_estate() -> None:
    from bench import sweep

    out = sweep.measure(((20, 10, 3),), workers=1)
    [r] = out["runs"]
    assert r["complete"] and r["all_found"] and r["records_listed"] >= 30
    assert _finite(r["wall_s"]) and r["api_calls"] >= 1 and _finite(out["worker_peak_rss_mib"])
    _targets_ok(out["targets"])
    results = {"machine": common.machine(), "sections": {"sweep": out}, "targets": out["targets"]}
    assert "Posture sweep" in bench_run.table(results)

"""The benchmarks (`make bench`) still run: each measurement on tiny inputs returns well-formed
numbers, and the table renders. Nothing here checks a speed: that is the bench's job, not CI's."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from bench import coldstart, common, e2e, per_event
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

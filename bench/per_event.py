"""Per-event cost in process, on one core, against the floor of decoding the same messages.

Start point, the same for Rampart and the floor: the CloudEvent exactly as functions-framework
hands it to the function (its `data` is the push body's `{"message": {...}}`, already a dict;
`message.data` is the base64 LogEntry). Nothing before that (HTTP, Flask, the CloudEvent
conversion) is Rampart's code, and it is the same for any function.

  floor       json.loads(base64.b64decode(ce.data["message"]["data"]))
  irrelevant  main.handle_cloud_event(ce): parse into an AuditEvent, triage, return
              (measured twice: before the first relevant event, when no policy is loaded,
              and in a warm instance whose pipeline exists; both return before the pipeline
              is looked at, so the two figures are the same code path, kept as a check on it)
  relevant    from_cloudevent + triage + ignored-principal check + evaluate every triggered rule
              + decide each finding under the default policy (config/policy.yaml); no API call

Rounds alternate floor and Rampart over the same events; each ratio is taken within a round
(so a busy neighbour slows both sides alike) and the median over rounds is reported.
"""

from __future__ import annotations

import base64
import gc
import io
import json
import os
import time
from collections.abc import Callable
from typing import Any

from bench.common import ROOT, Target, median
from bench.corpus import Mix, cloud_events, load_mix

IRRELEVANT_TARGET = 1.5  # × floor
RELEVANT_TARGET = 5.0  # × floor


def _floor(events: list[Any]) -> None:
    loads, b64decode = json.loads, base64.b64decode
    for ce in events:
        loads(b64decode(ce.data["message"]["data"]))


def _timed(fn: Callable[[list[Any]], None], events: list[Any], repeat: int) -> float:
    """µs per event for `repeat` passes of `fn` over `events`."""
    gc.collect()
    start = time.perf_counter()
    for _ in range(repeat):
        fn(events)
    return (time.perf_counter() - start) / (repeat * len(events)) * 1e6


def _pin_one_core() -> set[int] | None:
    try:
        before = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {max(before)})
        return before
    except (AttributeError, OSError):
        return None


def _compare(name: str, rampart: Callable[[list[Any]], None], events: list[Any], rounds: int, repeat: int) -> dict[str, Any]:
    rampart(events)  # warm: lazy imports, caches
    _floor(events)
    floors, ours, ratios = [], [], []
    for _ in range(rounds):
        f = _timed(_floor, events, repeat)
        r = _timed(rampart, events, repeat)
        floors.append(f)
        ours.append(r)
        ratios.append(r / f)
    us = median(ours)
    return {
        "events": len(events),
        "rounds": rounds,
        "us_per_event": round(us, 2),
        "events_per_s": round(1e6 / us),
        "floor_us_per_event": round(median(floors), 2),
        "floor_events_per_s": round(1e6 / median(floors)),
        "ratio_to_floor": round(median(ratios), 2),
        "ratio_min_max": [round(min(ratios), 2), round(max(ratios), 2)],
    }


def measure(rounds: int = 15, repeat: int = 5, mix: Mix | None = None, limit: int | None = None) -> dict[str, Any]:
    """Run the per-event comparison; `limit` keeps the first N events of each kind (smoke tests)."""
    import main
    from shared import log
    from shared.config import load_policy
    from shared.event import from_cloudevent
    from shared.pipeline import decide, evaluate, ignored, triage

    mix = mix or load_mix()
    irrelevant = cloud_events(mix.irrelevant[:limit], "irr-")
    relevant = cloud_events(mix.relevant[:limit], "rel-")
    loaded = load_policy(ROOT / "config" / "policy.yaml")

    def handle(events: list[Any]) -> None:
        h = main.handle_cloud_event
        for ce in events:
            h(ce)

    def decide_all(events: list[Any]) -> None:
        for ce in events:
            event = from_cloudevent(ce)
            t = triage(event)
            if isinstance(t, str) or ignored(event.principal, loaded):
                continue
            for finding, settings in evaluate(event, t, loaded):
                decide(finding, settings, loaded)

    sink = io.StringIO()
    log.set_stream(sink)  # the policy's load-time warnings would interleave with the table
    affinity = _pin_one_core()
    saved_pipeline = main._pipeline
    old_policy = os.environ.pop("RAMPART_POLICY", None)
    try:
        main._pipeline = None  # an instance that has seen no relevant event yet: no policy loaded
        cold = _compare("irrelevant (no policy loaded yet)", handle, irrelevant, rounds, repeat)
        main._get_pipeline()  # a warm instance: irrelevant events still return before reaching it
        warm = _compare("irrelevant", handle, irrelevant, rounds, repeat)
        rel = _compare("relevant", decide_all, relevant, rounds, repeat)
    finally:
        main._pipeline = saved_pipeline
        if old_policy is not None:
            os.environ["RAMPART_POLICY"] = old_policy
        if affinity is not None:
            os.sched_setaffinity(0, affinity)
        log.set_stream(None)
    n_findings = 0
    for ce in relevant:
        ev = from_cloudevent(ce)
        t = triage(ev)
        if not isinstance(t, str):
            n_findings += len(evaluate(ev, t, loaded))
    worst_irrelevant = max(cold["ratio_to_floor"], warm["ratio_to_floor"])
    return {
        "start": "the CloudEvent as functions-framework hands it to the function (data = push body message, a dict)",
        "floor": "json.loads(base64.b64decode(ce.data['message']['data']))",
        "pinned_to_one_core": affinity is not None,
        "irrelevant_no_policy": cold,
        "irrelevant": warm,
        "relevant": {**rel, "findings": n_findings},
        "mix": {
            "irrelevant_entries": len(irrelevant),
            "relevant_entries": len(relevant),
            "irrelevant_services": len(mix.services),
            "top_services": dict(list(mix.services.items())[:8]),
        },
        "targets": [
            Target("irrelevant event, × floor", worst_irrelevant, IRRELEVANT_TARGET, "×",
                   note=f"{warm['us_per_event']:.1f} µs/event, {warm['events_per_s']} events/s").to_dict(),
            Target("relevant event (all rules + decision), × floor", rel["ratio_to_floor"], RELEVANT_TARGET, "×",
                   note=f"{rel['us_per_event']:.1f} µs/event, {rel['events_per_s']} events/s").to_dict(),
        ],
    }


if __name__ == "__main__":
    print(json.dumps(measure(), indent=2))

"""A whole sweep in one process: the planner pages through Asset Inventory on one thread and
`workers` threads judge the shards as they come (what `python main.py scan` runs).

A scope that cannot be listed (403 on part of an organization, retries spent) is reported in
`SweepReport.not_swept`, never counted compliant, and the other scopes are still swept. A shard
whose action or alert failed transiently is retried (`shard_attempts`), then reported as an error.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from shared.sweep.lister import IAM, RESOURCES, AssetLister, ScopeNotSwept
from shared.sweep.shard import Shard, SweepContext, Tally, run_shard


@dataclass(slots=True)
class SweepReport:
    """Everything a sweep found, for the summary, `--json` and the HTML report."""

    sweep_id: str
    scopes: tuple[str, ...]
    max_mode: str
    started_at: str
    finished_at: str = ""
    shards_total: int = 0
    shards_done: int = 0
    plan_done: bool = False
    tally: Tally = field(default_factory=Tally)
    not_swept: list[dict[str, str]] = field(default_factory=list)  # {scope, kind, reason}
    api_calls: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        return self.plan_done and not self.not_swept and self.shards_done == self.shards_total and not self.tally.errors

    def to_dict(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id, "scopes": list(self.scopes), "max_mode": self.max_mode,
            "started_at": self.started_at, "finished_at": self.finished_at, "seconds": round(self.seconds, 3),
            "shards_total": self.shards_total, "shards_done": self.shards_done, "plan_done": self.plan_done,
            "complete": self.complete, "not_swept": list(self.not_swept), "api_calls": dict(self.api_calls),
            **self.tally.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SweepReport:
        r = cls(sweep_id=str(d["sweep_id"]), scopes=tuple(d.get("scopes") or ()), max_mode=str(d.get("max_mode", "")),
                started_at=str(d.get("started_at", "")), finished_at=str(d.get("finished_at", "")),
                shards_total=int(d.get("shards_total") or 0), shards_done=int(d.get("shards_done") or 0),
                plan_done=bool(d.get("plan_done")), tally=Tally.from_dict(d),
                not_swept=list(d.get("not_swept") or []), api_calls=dict(d.get("api_calls") or {}),
                seconds=float(d.get("seconds") or 0))
        return r


def now_text() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def plan(lister: AssetLister, scopes: tuple[str, ...], sweep_id: str, kinds: tuple[str, ...] = (RESOURCES, IAM),
         resource_types: tuple[str, ...] | None = None) -> Iterator[Shard | ScopeNotSwept]:
    """Yield one Shard per page, and a ScopeNotSwept for each scope/kind that could not be listed."""
    for scope in scopes:
        for kind in kinds:
            try:
                for page, _ in lister.pages(scope, kind, resource_types if kind == RESOURCES else None):
                    yield Shard(sweep_id, scope, kind, page.index, page.results)
            except ScopeNotSwept as exc:
                yield exc


def run(scopes: tuple[str, ...], ctx: SweepContext, *, lister: AssetLister, workers: int = 2,
        shard_attempts: int = 3, kinds: tuple[str, ...] = (RESOURCES, IAM),
        on_progress: Callable[[SweepReport], None] | None = None) -> SweepReport:
    """Sweep `scopes` now, in this process; see the module docstring."""
    from shared import log
    from shared.actions import TransientError, transient_types
    from shared.alerts.delivery import AlertDeliveryError

    report = SweepReport(sweep_id=uuid.uuid4().hex[:16], scopes=scopes,
                         max_mode=(ctx.max_mode or ctx.loaded.policy.sweep.max_mode).value, started_at=now_text())
    start = time.perf_counter()
    work: queue.Queue[Shard | None] = queue.Queue(maxsize=workers * 2)  # bounded: memory stays flat
    lock = threading.Lock()

    def worker() -> None:
        while (shard := work.get()) is not None:
            tally = None
            retryable: tuple[type[BaseException], ...] = (TransientError, AlertDeliveryError, *transient_types())
            for attempt in range(1, shard_attempts + 1):
                try:
                    tally = run_shard(shard, ctx)
                    break
                except retryable as exc:
                    log.warning("rampart.sweep.shard_retry", shard=shard.key, attempt=attempt, error=type(exc).__name__,
                                reason=str(exc)[:300])
                    if attempt == shard_attempts:
                        tally = Tally(errors=[f"shard {shard.key}: {type(exc).__name__}: {str(exc)[:200]}"])
                    else:
                        # An alert deferred for the record of the work waits dedupe.settle_seconds.
                        time.sleep(min(10.0, 2.0 * 2 ** (attempt - 1)))
                except Exception as exc:  # noqa: BLE001 — one broken shard is reported, the sweep goes on
                    log.error("rampart.sweep.shard_failed", shard=shard.key, error=type(exc).__name__, reason=str(exc)[:300])
                    tally = Tally(errors=[f"shard {shard.key}: {type(exc).__name__}: {str(exc)[:200]}"])
                    break
            assert tally is not None
            with lock:
                report.tally.merge(tally)
                report.shards_done += 1
                if on_progress:
                    on_progress(report)

    types: tuple[str, ...] | None = None
    if ctx.rules is not None:  # only the pages the chosen rules read
        types = _types_for(ctx.rules)
        kinds = tuple(k for k in kinds if (k == RESOURCES and types) or (k == IAM and _reads_iam(ctx.rules)))
    threads = [threading.Thread(target=worker, name=f"rampart-sweep-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    try:
        for item in plan(lister, scopes, report.sweep_id, kinds, types):
            if isinstance(item, ScopeNotSwept):
                log.error("rampart.sweep.scope_not_swept", scope=item.scope, kind=item.kind, reason=item.reason)
                with lock:
                    report.not_swept.append({"scope": item.scope, "kind": item.kind, "reason": item.reason})
                continue
            with lock:
                report.shards_total += 1
            work.put(item)
        report.plan_done = True
    finally:
        for _ in threads:
            work.put(None)
        for t in threads:
            t.join()
    report.finished_at = now_text()
    report.seconds = time.perf_counter() - start
    report.api_calls = {"search_all_resources": lister.stats.calls[RESOURCES],
                        "search_all_iam_policies": lister.stats.calls[IAM], "full_reads": report.tally.reads}
    if on_progress:
        on_progress(report)
    return report


def _types_for(rules: tuple[str, ...]) -> tuple[str, ...]:
    from shared.sweep.evaluate import resource_types_for

    return resource_types_for(rules)


def _reads_iam(rules: tuple[str, ...]) -> bool:
    from shared.sweep.evaluate import reads_iam

    return reads_iam(rules)

"""The posture sweep at scale: an estate of Cloud Run services and KMS keys in many projects,
seeded into the stand-in, swept by two `rampart_sweep` workers (functions-framework processes
behind the local balancer) from one sweep request, as the Cloud Scheduler job would publish it.

  wall        publish of the sweep request → every shard done (progress read from Firestore)
  API calls   every request the stand-in served during the sweep (Asset Inventory pages, the
              actions' live re-reads, enrichment lists), per resource record listed
  memory      VmHWM of each worker (functions-framework arbiter and its gunicorn worker)
  growth      the same for growing estates (1,000 to 15,000 services + keys)

The policy is the shipped one (sweep.max_mode dry-run: each violation costs the read of its
action's dry run), with about 2% of the resources violating; default sweep settings
(qps 2 per API, 500 results a page), no alert channels.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Target, children, vm_status

# (services, keys, projects); the last is the estate.
SIZES = ((667, 333, 50), (2000, 1000, 150), (6667, 3333, 350), (10000, 5000, 500))
QUICK_SIZES = ((200, 100, 20), (400, 200, 40))


def _seed_file(workdir: Path) -> Path:
    import json

    from infra.local.stack import SEED

    path = workdir / "seed.json"
    path.write_text(json.dumps(json.loads(SEED.read_text())))
    return path


def _worker_hwm_mib(stack: Any) -> float:
    peak = 0
    for proc in stack.sweep_workers:
        pid = proc.pid
        if pid is None:
            continue
        for p in (pid, *children(pid)):
            peak = max(peak, vm_status(p).get("VmHWM", 0))
    return round(peak / 1024, 1)


def one(stack: Any, services: int, keys: int, projects: int) -> dict[str, Any]:
    from infra.local.estate import ORG, estate

    stack.admin.reset()
    seed, planted = estate(projects=projects, services=services, keys=keys, violation_rate=0.02, seed=11)
    stack.admin.seed(seed)
    stack.admin.clear_requests()
    start = time.monotonic()
    sweep_id = stack.request_sweep(scopes=[ORG])
    rep = stack.wait_sweep(sweep_id, timeout=600)
    wall = time.monotonic() - start
    requests = [r for r in stack.admin.requests() if not r["path"].startswith("/_standin")]
    listed = sum(rep.tally.seen.values())
    by_kind: dict[str, int] = {}
    for r in requests:
        kind = ("asset search" if ":search" in r["path"] else "run" if r["path"].startswith("/v2/") else "kms")
        by_kind[kind] = by_kind.get(kind, 0) + 1
    found = sorted((i["rule"], i["resource"]) for i in rep.tally.items)
    return {
        "services": services, "keys": keys, "projects": projects, "records_listed": listed,
        "shards": rep.shards_total, "wall_s": round(wall, 2), "api_calls": len(requests), "api_calls_by_api": by_kind,
        "api_calls_per_resource": round(len(requests) / max(listed, 1), 4),
        "violations_planted": len(planted), "violations_found": len(found), "all_found": found == sorted(planted),
        "complete": rep.complete,
    }


def measure(sizes: tuple[tuple[int, int, int], ...] = SIZES, workers: int = 2) -> dict[str, Any]:
    import tempfile

    from infra.local.stack import LocalStack

    runs = []
    with tempfile.TemporaryDirectory(prefix="rampart-bench-sweep-") as tmp:
        workdir = Path(tmp)
        with LocalStack(workdir, functions=0, alerts=False, sweep_workers=workers, seed=_seed_file(workdir),
                        standin_log_size=200_000, policy_overrides={"sweep": {"page_size": 500, "qps": 2.0}}) as stack:
            one(stack, 20, 10, 2)  # warm-up: the workers' first shard loads the client libraries
            for services, keys, projects in sizes:
                runs.append(one(stack, services, keys, projects))
            hwm = _worker_hwm_mib(stack)
    last = runs[-1]
    first = runs[0]
    growth = round(last["wall_s"] / first["wall_s"], 2) if first["wall_s"] else float("nan")
    size = f"{last['services']:,} services + {last['keys']:,} keys in {last['projects']} projects"
    return {
        "workers": workers, "runs": runs, "worker_peak_rss_mib": hwm, "growth_wall_ratio": growth,
        "targets": [
            Target(f"sweep wall time, {size}", last["wall_s"], 60.0, "s", "<=",
                   f"{last['records_listed']:,} records in {last['shards']} shards; {last['violations_found']} violations, "
                   f"all found: {last['all_found']}").to_dict(),
            Target("sweep API calls per resource", last["api_calls_per_resource"], 1.1, "calls", "<=",
                   f"{last['api_calls']} calls: {last['api_calls_by_api']}").to_dict(),
            Target("sweep worker peak RSS", hwm, 200.0, "MiB", "<=", f"{workers} workers, max of each").to_dict(),
        ],
    }


if __name__ == "__main__":
    import json
    import sys

    quick = "--quick" in sys.argv
    json.dump(measure(QUICK_SIZES if quick else SIZES), sys.stdout, indent=2)
    sys.stdout.write("\n")
    _ = ROOT

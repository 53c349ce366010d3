"""Capacity to the knee: the offered load one function instance takes before latency or loss
breaks a bound, for Rampart and for the no-op function on the same server, side by side.

Two function instances on loopback, served alike (`bench/serve.py`: functions-framework's own
app and gunicorn server, 1 worker, THREADS threads as deploy.sh's --concurrency, access log on):
`rampart` (main.py, the local stack's policy, remediating against the stand-in) and `noop`
(bench/noop_function.py). For each mix and each path, the offered load ramps up geometrically
(START_RATE[mix] x FACTOR^k, at most MAX_STEPS steps of `step_s` seconds), alternating the
two servers at each rate so that a neighbour's load lands on both alike; a server's ramp stops
at its first step that breaks a bound (run RETRY more times first), then BISECT steps halve the
gap between its last good rate and that one geometrically. Its knee is the highest rate that held. Each step is open loop:

  direct    the push body the emulator would POST, sent by SENDERS threads over keep-alive
            connections at the due times; latency = response time - due time (a late sender
            counts against the server, so a backlog shows)
  emulator  published to the Pub/Sub emulator (one topic and push subscription per server),
            deliveries counted from the server's access log, polled every POLL_S; latency of
            the k-th message = when the k-th 2xx appeared - when the k-th was published (FIFO
            matched: the emulator gives no per-message receipt)

A step holds when p99 latency <= P99_BOUND_MS of its path (through the emulator: over the
emulator's own floor, the no-op's p99 at FLOOR_RATE measured first, as the emulator delivers in
cycles of ~0.1 s on an idle machine and ~1-3 s on a loaded one) and loss <= LOSS_BOUND (non-2xx answers,
connection errors, undelivered after DRAIN_S; for Rampart on violations also each violation
without a `remediated` record). A server that cannot keep up builds a backlog, which the
latency (measured from each message's due time) shows. A step the bench itself could not publish
at RATE_FLOOR x the offered rate does not hold either, and says so.

Mixes: `irrelevant` (the corpus entries no rule triggers on), `corpus` (every corpus entry, in
file order: 5 % are Cloud Run / KMS changes a rule triggers on), `violations` (every entry a real
violation: a seeded Cloud Run service with ingress open, 1 in KMS_EVERY a disabled KMS key
version, fresh resources for each step, seeded in one admin call before it), and `filtered` (the
corpus entries the org-level sink filter lets through: Cloud Run / KMS changes of projects the
stand-in does not hold: each costs Rampart its rules, and a live read where one finds a
violation, then no write: what mostly reaches the function behind the filter).

Also: which share of the corpus the org-level sink filter (`python main.py sink-filter`: the
Admin Activity log, the rules' serviceName/methodName pairs) lets through to the function, and
each instance's peak RSS (VmHWM of the gunicorn worker) after each mix.

Changed on 2026-12-01 (issue 17), so that the ratio means something:
  * The bisection was one arithmetic halving of a ×1.5 gap, so a knee could only land on the
    ladder or halfway, and a ratio of two knees jumped between ~0.67, 0.83, 1.0 and 1.2 (the
    0.83 on the irrelevant mix was one such jump: the no-op held 1,281/s at p99 323 ms, Rampart
    broke there at 640 ms and held 1,068/s, both past their throughput of ~1,150/s). Now BISECT
    = 3 geometric halvings (sqrt(lo x hi)): the knee is within x1.05 of where the server broke
    (`broke_at_last` in the results), so the ratio is good to about ±5 % of its noise-free value.
  * A step that breaks is run once more before it counts (RETRY): on this shared machine one
    neighbour's burst put a p99 over the bound at rates far below the knee and ended that ramp.
    Both servers get the same second chance.
  * The policy is re-checked at the deployed interval (shared.config's default, 3 s), not on
    every relevant event as the test stack's `policy_check_seconds=0` had it: a read and a
    SHA-256 of the policy file per relevant entry, under the policy store's lock (so the 4
    threads' relevant entries queued on it), that no deployment pays.
  * Still true, and worth knowing when reading a ratio: the senders, the stand-in and both
    servers share the machine's cores, so the stand-in's CPU for Rampart's live reads counts
    against Rampart (Google's APIs would not), and a server past its throughput for a 3 s step
    holds while its backlog stays under the p99 bound (up to ~1.17x its throughput, alike for
    both servers). Irrelevant entries cost Rampart what they cost the no-op (~1.0 ms of the
    server's CPU each, nearly all of it gunicorn, Flask and the CloudEvent conversion).

Everything stops by itself: bounded steps, bounded drains, and every process stopped by PID.
"""

from __future__ import annotations

import base64
import http.client
import itertools
import json
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import ROOT, Target, children, load_average, new_lines, summary, vm_status

START_RATE = {"irrelevant": 50.0, "corpus": 50.0, "filtered": 50.0, "violations": 10.0}
FACTOR = 1.5
MAX_STEPS = 10  # 50 .. 1,922/s (violations: 10 .. 384/s)
BISECT = 3  # each halves the ratio hi/lo geometrically: 1.5 -> 1.22 -> 1.11 -> 1.05
RETRY = 1  # a step that breaks is run once more before it counts (one neighbour's burst is not a knee)
STEP_S = 3.0
DRAIN_S = 10.0
POLL_S = 0.01
SENDERS = 24
THREADS = 16  # deploy.sh's default --concurrency 16 on --cpu 1, with THREADS=16
P99_BOUND_MS = {"direct": 500.0, "emulator": 1000.0}  # through the emulator: over its own floor (below)
FLOOR_RATE = 10.0  # the emulator's own p99 delay: the no-op at this rate, before the ramps
LOSS_BOUND = 0.001
RATE_FLOOR = 0.95
KMS_EVERY = 5
RATIO_TARGET = 0.9
RSS_TARGET_MIB = 150.0
MIXES = ("irrelevant", "corpus", "filtered", "violations")
MODES = ("direct", "emulator")
SERVERS = ("noop", "rampart")


# ---------------------------------------------------------------------------------------------
# The two servers, and what they answered.


class AccessLog:
    """gunicorn's access log (`STATUS MICROSECONDS` per line), read incrementally."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.ok = 0
        self.failed = 0
        self.server_us: list[int] = []

    def poll(self) -> int:
        lines, self.pos = new_lines(self.path, self.pos)
        for line in lines:
            parts = line.split()
            if len(parts) != 2:
                continue
            if parts[0].startswith(b"2"):
                self.ok += 1
                self.server_us.append(int(parts[1]))
            else:
                self.failed += 1
        return self.ok

    def mark(self) -> tuple[int, int, int]:
        self.poll()
        return self.ok, self.failed, len(self.server_us)


@dataclass
class Server:
    name: str
    proc: Any
    port: int
    topic: str
    access: AccessLog
    log_path: Path
    log_pos: int = 0

    def records(self) -> list[dict[str, Any]]:
        """Remediation records logged since the last call."""
        out = []
        lines, self.log_pos = new_lines(self.log_path, self.log_pos)
        for line in lines:
            if b'"rampart.remediation"' in line:
                try:
                    d = json.loads(line)
                except ValueError:
                    continue
                out.append(d.get("rampart", d))
        return out

    def peak_rss_mib(self) -> float:
        pids = [self.proc.pid, *children(self.proc.pid)]
        return round(max((vm_status(p).get("VmHWM", 0) for p in pids), default=0) / 1024, 1)


def start_server(stack: Any, name: str, target: str, source: Path) -> Server:
    import sys

    from infra.local.emulators import create_push_subscription, create_topic
    from infra.local.procs import LOOPBACK, Proc, free_port, port_open
    from infra.local.stack import PROJECT

    port = free_port()
    access = stack.workdir / f"knee-{name}.access.log"
    log_path = stack.workdir / f"knee-{name}.log"
    env = {**stack.function_env(), "THREADS": str(THREADS)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = Proc(f"knee-{name}", [sys.executable, "-m", "bench.serve", "--target", target, "--source", str(source),
                                 "--port", str(port), "--access-log", str(access)],
                env=env, cwd=ROOT, log_path=log_path)
    proc.start(ready=lambda: port_open(port), timeout=60)
    topic_id = f"knee-{name}"
    topic = create_topic(stack.pubsub.host, PROJECT, topic_id)
    create_push_subscription(stack.pubsub.host, PROJECT, f"knee-{name}-push", topic_id,
                             f"http://{LOOPBACK}:{port}/projects/{PROJECT}/topics/{topic_id}", ack_deadline=60)
    return Server(name, proc, port, topic, AccessLog(access), log_path)


# ---------------------------------------------------------------------------------------------
# The mixes: LogEntry bytes, and for violations the resources to seed first.


def sink_passes(entry: dict[str, Any]) -> bool:
    """Whether the org-level sink filter (shared.cli.sink_filter, every rule) lets `entry` through."""
    import functions

    payload = entry.get("protoPayload") or {}
    return ("cloudaudit.googleapis.com%2Factivity" in str(entry.get("logName", ""))
            and (payload.get("serviceName"), payload.get("methodName")) in functions.TRIGGERS)


@dataclass
class Load:
    data: list[bytes]  # one per message, in send order
    violations: dict[str, str] = field(default_factory=dict)  # insertId -> resource


class Violations:
    """Fresh violating resources for each step, seeded in one admin call."""

    def __init__(self, stack: Any) -> None:
        from infra.local.stack import SEED

        seed = json.loads(Path(SEED).read_text())
        self.template = next(s for s in seed["services"] if s["name"].endswith("/patient-api"))
        self.stack = stack
        self.batch = itertools.count()

    def load(self, n: int) -> Load:
        import copy

        from infra.local import scenario

        b = next(self.batch)
        services, keys, versions, data, names = [], [], [], [], {}
        for i in range(n):
            insert_id = f"knee-{b}-{i}"
            if i % KMS_EVERY == KMS_EVERY - 1:
                key = f"{scenario.RING}/cryptoKeys/knee-{b}-{i}"
                version = f"{key}/cryptoKeyVersions/1"
                keys.append({"name": key, "purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "7776000s",
                             "nextRotationTime": "2027-03-01T00:00:00Z", "destroyScheduledDuration": "86400s"})
                versions.append({"name": version, "state": "DISABLED"})
                entry = scenario.kms_update_version("DISABLED", version=version)
                names[insert_id] = version
            else:
                svc = copy.deepcopy(self.template)
                svc["name"] = f"{scenario.SVC}/knee-{b}-{i}"
                svc["ingress"] = "INGRESS_TRAFFIC_ALL"
                services.append(svc)
                entry = scenario.replace_service_v1(svc["name"].rsplit("/", 1)[1], ingress="all")
                names[insert_id] = svc["name"]
            entry["insertId"] = insert_id
            data.append(json.dumps(entry, separators=(",", ":")).encode())
        self.stack.admin.seed({"services": services, "cryptoKeys": keys, "cryptoKeyVersions": versions})
        return Load(data, names)


def _cycle(entries: list[dict[str, Any]], n: int) -> Load:
    raw = [json.dumps(e, separators=(",", ":")).encode() for e in entries]
    return Load([raw[i % len(raw)] for i in range(n)])


# ---------------------------------------------------------------------------------------------
# One step: `rate`/s for `seconds`, one server, one path.


def _push_body(data: bytes, message_id: str) -> bytes:
    return json.dumps({"message": {"attributes": {}, "data": base64.b64encode(data).decode(), "messageId": message_id,
                                   "publishTime": "2026-11-23T09:00:00.000Z"},
                       "subscription": "projects/demo-project/subscriptions/knee"}).encode()


def step_direct(server: Server, load: Load, rate: float, senders: int = SENDERS) -> dict[str, Any]:
    from infra.local.procs import LOOPBACK

    n = len(load.data)
    path = f"/{server.topic}"
    bodies = [_push_body(d, f"d-{i}") for i, d in enumerate(load.data)]
    lat: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    next_i = itertools.count()
    start = time.time() + 0.1
    last_done = [start]

    def sender() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, server.port, timeout=30)
        while (i := next(next_i)) < n:
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            status = 0
            for _attempt in range(2):  # gunicorn closes a keep-alive connection idle 2 s: retry once on a new one
                try:
                    conn.request("POST", path, body=bodies[i], headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    status = resp.status
                    break
                except (OSError, http.client.HTTPException):
                    conn.close()
            done = time.time()
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
                if 200 <= status < 300:
                    lat.append((done - due) * 1000)
                last_done[0] = max(last_done[0], done)
        conn.close()

    threads = [threading.Thread(target=sender, name=f"knee-sender-{k}", daemon=True) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=n / rate + DRAIN_S + 30)
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    return {"sent": n, "ok": ok, "failed": n - ok, "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "achieved_rate": round(ok / max(last_done[0] - start, 1e-9), 1), "latency_ms": summary(lat)}


def step_emulator(server: Server, pub: Any, load: Load, rate: float) -> dict[str, Any]:
    n = len(load.data)
    ok0, failed0, _ = server.access.mark()
    sent_at: list[float] = []
    futures = []
    start = time.time()
    for i, data in enumerate(load.data):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        sent_at.append(time.time())
        futures.append(pub.publish(server.topic, data))
    publish_s = time.time() - start
    for f in futures:
        f.result(timeout=60)
    arrivals: list[float] = []  # arrivals[k] = when the (k+1)-th 2xx of this step was seen
    deadline = time.time() + DRAIN_S
    while len(arrivals) < n and time.time() < deadline:
        got = server.access.poll() - ok0
        now = time.time()
        arrivals.extend([now] * (min(got, n) - len(arrivals)))
        time.sleep(POLL_S)
    ok = len(arrivals)
    failed = server.access.failed - failed0
    lat = [(arrivals[k] - sent_at[k]) * 1000 for k in range(ok)]
    last = arrivals[-1] if arrivals else start
    return {"sent": n, "ok": ok, "failed": (n - ok) + failed, "non_2xx_answers": failed,
            "achieved_publish_rate": round(n / max(publish_s, 1e-9), 1),
            "achieved_rate": round(ok / max(last - start, 1e-9), 1), "latency_ms": summary(lat)}


def _verdict(r: dict[str, Any], rate: float, bound_ms: float) -> tuple[bool, str]:
    p99 = r["latency_ms"].get("p99", math.inf)
    loss = r["failed"] / max(r["sent"], 1)
    if r.get("unremediated"):
        loss = max(loss, r["unremediated"] / max(r["sent"], 1))
    reasons = []
    if p99 > bound_ms:
        reasons.append(f"p99 {p99:.0f} ms > {bound_ms:.0f}")
    if loss > LOSS_BOUND:
        reasons.append(f"loss {loss:.2%} > {LOSS_BOUND:.1%}")
    if r.get("achieved_publish_rate", rate) < RATE_FLOOR * rate:
        reasons.append(f"the bench published only {r['achieved_publish_rate']}/s (< {RATE_FLOOR:.0%}): a limit of the bench")
    return not reasons, "; ".join(reasons)


# ---------------------------------------------------------------------------------------------
# The ramp.


def rates(start: float = 50.0, factor: float = FACTOR, steps: int = MAX_STEPS) -> list[float]:
    return [round(start * factor**k) for k in range(steps)]


def ramp(servers: dict[str, Server], make_load: Callable[[str, int], Load], run_step: Callable[[Server, Load, float], dict[str, Any]],
         ladder: list[float], step_s: float, bound_ms: float, bisect: int = BISECT, retry: int = RETRY) -> dict[str, Any]:
    """Alternate the servers up `ladder` until each breaks a bound, then bisect each gap
    geometrically. A step that breaks is run again up to `retry` times before it counts as broken."""
    out: dict[str, Any] = {name: {"steps": [], "knee": 0.0, "broke_at": None} for name in servers}

    def once(name: str, rate: float) -> bool:
        srv = servers[name]
        load = make_load(name, max(1, int(rate * step_s)))
        r = run_step(srv, load, rate)
        if load.violations and name == "rampart":
            ids = set(load.violations)
            done = _remediated(srv, ids)
            r["remediated"] = done
            r["unremediated"] = len(ids) - done
        ok, why = _verdict(r, rate, bound_ms)
        r.update({"rate": rate, "held": ok, "broke": why, "load_average": load_average()})
        out[name]["steps"].append(r)
        if ok:
            out[name]["knee"] = max(out[name]["knee"], rate)
        time.sleep(0.3)  # let the server's backlog clear before the other server's step
        return ok

    def one(name: str, rate: float) -> bool:
        return any(once(name, rate) for _ in range(1 + retry))  # stops at the first step that holds

    live = set(servers)
    for rate in ladder:
        for name in servers:
            if name in live and not one(name, rate):
                live.discard(name)
                out[name]["broke_at"] = rate
        if not live:
            break
    for name in servers:
        hi = out[name]["broke_at"]
        for _ in range(bisect if hi else 0):
            lo = out[name]["knee"]
            mid = round(math.sqrt(lo * hi)) if lo else round(hi / 2)
            if mid in (lo, hi):
                break
            if one(name, mid):
                continue
            hi = mid
        out[name]["never_broke"] = hi is None
        out[name]["broke_at_last"] = hi  # the knee is within [knee, broke_at_last)
    return out


def _remediated(server: Server, ids: set[str], timeout: float = 5.0) -> int:
    done: set[str] = set()
    deadline = time.time() + timeout
    while time.time() < deadline:
        for r in server.records():
            if r.get("event_id") in ids and r.get("outcome") == "remediated":
                done.add(r["event_id"])
        if len(done) >= len(ids):
            break
        time.sleep(0.1)
    return len(done)


def measure(*, quick: bool = False, mixes: tuple[str, ...] = MIXES, modes: tuple[str, ...] = MODES,
            ladder: list[float] | None = None, step_s: float | None = None, bisect: int | None = None,
            retry: int | None = None, mix: Any = None) -> dict[str, Any]:
    from bench.corpus import load_mix
    from bench.e2e import fast_publisher
    from infra.local.stack import LocalStack

    mix = mix or load_mix()
    ladders = {m: ladder or (rates(START_RATE[m], steps=4, factor=2.0) if quick else rates(START_RATE[m])) for m in mixes}
    step_s = step_s or (1.0 if quick else STEP_S)
    bisect = (0 if quick else BISECT) if bisect is None else bisect
    retry = (0 if quick else RETRY) if retry is None else retry
    passing = [e for e in mix.corpus if sink_passes(e)]
    out: dict[str, Any] = {
        "parameters": {"ladders": ladders, "step_s": step_s, "bisect": bisect, "retry": retry, "threads": THREADS, "senders": SENDERS,
                       "p99_bound_ms": P99_BOUND_MS, "loss_bound": LOSS_BOUND, "rate_floor": RATE_FLOOR,
                       "drain_s": DRAIN_S, "kms_every": KMS_EVERY},
        "sink_filter": {"corpus_entries": len(mix.corpus), "pass": len(passing),
                        "pass_share": round(len(passing) / len(mix.corpus), 4),
                        "corpus_relevant": sum(1 for e in mix.corpus if e not in mix.irrelevant)},
        "load_average_at_start": load_average(),
        "mixes": {},
    }
    started = time.monotonic()
    servers: dict[str, Server] = {}
    # The policy is re-checked at the deployed interval (shared.config's default), not on every
    # relevant event as the test stack's policy_check_seconds=0 would have it: no deployment runs that.
    with LocalStack(functions=0, firestore=False, alerts=False, policy_check_seconds=None) as stack:
        try:
            servers["noop"] = start_server(stack, "noop", "noop", ROOT / "bench" / "noop_function.py")
            servers["rampart"] = start_server(stack, "rampart", "rampart", ROOT / "main.py")
            pub = fast_publisher(stack.pubsub.host)
            violations = Violations(stack)
            loads: dict[str, Callable[[str, int], Load]] = {
                "irrelevant": lambda _name, n: _cycle(mix.irrelevant, n),
                "corpus": lambda _name, n: _cycle(mix.corpus, n),
            "filtered": lambda _name, n: _cycle(passing, n),
                "violations": lambda _name, n: violations.load(n),
            }
            steps: dict[str, Callable[[Server, Load, float], dict[str, Any]]] = {
                "direct": step_direct,
                "emulator": lambda srv, load, rate: step_emulator(srv, pub, load, rate),
            }
            # Not measured: each server's first requests (the warm-up thread, the first client).
            for name, srv in servers.items():
                step_direct(srv, loads["violations"](name, 10), 20)
                step_emulator(srv, pub, loads["irrelevant"](name, 20), 20)
            bounds = dict(P99_BOUND_MS)
            if "emulator" in modes:
                floor = step_emulator(servers["noop"], pub, loads["irrelevant"]("noop", max(1, int(FLOOR_RATE * step_s))), FLOOR_RATE)
                out["emulator_floor_p99_ms"] = floor["latency_ms"].get("p99", 0.0)
                bounds["emulator"] = P99_BOUND_MS["emulator"] + out["emulator_floor_p99_ms"]
            out["p99_bounds_ms"] = bounds
            for m in mixes:
                out["mixes"][m] = {}
                for mode in modes:
                    out["mixes"][m][mode] = ramp(servers, loads[m], steps[mode], ladders[m], step_s, bounds[mode], bisect, retry)
                out["mixes"][m]["peak_rss_mib"] = {name: srv.peak_rss_mib() for name, srv in servers.items()}
            out["peak_rss_mib"] = {name: srv.peak_rss_mib() for name, srv in servers.items()}
        finally:
            for srv in servers.values():  # not the stack's: it stops only its own processes
                srv.proc.stop()
    out["duration_s"] = round(time.monotonic() - started, 1)
    out["load_average_at_end"] = load_average()
    out["knees"] = knees(out)
    out["sizing"] = sizing(out)
    out["targets"] = targets(out)
    return out


def knees(out: dict[str, Any]) -> dict[str, Any]:
    """{mix: {mode: {noop, rampart, ratio, noop_never_broke, rampart_never_broke}}}."""
    table: dict[str, Any] = {}
    for m, by_mode in out["mixes"].items():
        table[m] = {}
        for mode in MODES:
            if mode not in by_mode:
                continue
            r = by_mode[mode]
            noop, ramp_ = r["noop"]["knee"], r["rampart"]["knee"]
            table[m][mode] = {"noop": noop, "rampart": ramp_, "ratio": round(ramp_ / noop, 2) if noop else float("nan"),
                              "noop_never_broke": r["noop"]["never_broke"], "rampart_never_broke": r["rampart"]["never_broke"]}
    return table


def sizing(out: dict[str, Any], volumes: tuple[int, ...] = (100, 1_000, 10_000)) -> dict[str, Any]:
    """Instances for each volume of entries/s reaching the function, from the direct knees.

    Without the sink filter the function gets the corpus mix; behind it (deploy.sh's sink), only
    the rules' Cloud Run / KMS changes arrive: sized as the `filtered` mix (the corpus's own), and
    as all violations (each a live read and a write: the worst case). An org-wide rate of R
    entries/s puts R x pass_share behind the filter."""
    k = out["knees"]

    def inst(volume: float, knee: float) -> int | None:
        return math.ceil(volume / knee) if knee else None

    share = out["sink_filter"]["pass_share"]
    rows = []
    for v in volumes:
        rows.append({
            "entries_per_s": v,
            "irrelevant_no_filter": inst(v, k.get("irrelevant", {}).get("direct", {}).get("rampart", 0)),
            "corpus_mix_no_filter": inst(v, k.get("corpus", {}).get("direct", {}).get("rampart", 0)),
            "behind_sink_filter": inst(v, k.get("filtered", {}).get("direct", {}).get("rampart", 0)),
            "behind_sink_filter_all_violations": inst(v, k.get("violations", {}).get("direct", {}).get("rampart", 0)),
            "org_rate_behind_filter": round(v * share, 1),
            "org_rate_instances": inst(v * share, k.get("filtered", {}).get("direct", {}).get("rampart", 0)),
        })
    return {"pass_share": share, "rows": rows}


def targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    ts = []
    for m in ("irrelevant", "corpus"):
        for mode in MODES:
            row = out["knees"].get(m, {}).get(mode)
            if row:
                ts.append(Target(f"knee ratio Rampart/no-op, {m}, {mode}", row["ratio"], RATIO_TARGET, "x", op=">=",
                                 note=f"{row['rampart']:.0f} vs {row['noop']:.0f} events/s"
                                      + (" (no-op never broke: bench-limited)" if row["noop_never_broke"] else "")).to_dict())
    rss = out["peak_rss_mib"].get("rampart", float("nan"))
    ts.append(Target("peak RSS per instance at the knee", rss, RSS_TARGET_MIB, "MiB",
                     note=f"no-op {out['peak_rss_mib'].get('noop')} MiB").to_dict())
    return ts


def table_lines(k: dict[str, Any]) -> list[str]:
    """The knee section of `make bench`'s table."""
    p = k["parameters"]
    bounds = ", ".join(f"{mode} {ms:.0f}" for mode, ms in k.get("p99_bounds_ms", p["p99_bound_ms"]).items())
    lines = [f"Capacity to the knee, one instance ({p['threads']} threads), Rampart vs the no-op function on the same server "
             f"(p99 <= {bounds} ms, loss <= {p['loss_bound']:.1%}, steps of {p['step_s']:.0f} s; "
             f"load {k['load_average_at_start']} -> {k['load_average_at_end']})"]
    for m, by_mode in k["knees"].items():
        for mode, row in by_mode.items():
            flag = lambda never: "+" if never else ""  # noqa: E731 — a knee the ladder never reached: at least that
            lines.append(f"  {m + ', ' + mode:<52} {row['rampart']:>6.0f}{flag(row['rampart_never_broke'])} vs "
                         f"{row['noop']:>6.0f}{flag(row['noop_never_broke'])} /s   ratio {row['ratio']}")
    lines.append(f"  peak RSS (VmHWM) {k['peak_rss_mib']}")
    s = k["sizing"]
    lines.append(f"  sink filter passes {s['pass_share']:.1%} of the corpus; instances for 100 / 1,000 / 10,000 entries/s: "
                 + "; ".join(f"{key} " + "/".join(str(r[key]) for r in s["rows"])
                             for key in ("irrelevant_no_filter", "corpus_mix_no_filter", "behind_sink_filter", "behind_sink_filter_all_violations")))
    return lines


if __name__ == "__main__":
    import os

    print(json.dumps(measure(quick=os.environ.get("BENCH_QUICK") == "1"), indent=2, default=str))

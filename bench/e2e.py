"""Time to remediate, end to end, on the local pipeline; what the emulator itself costs; memory.

Everything runs on loopback through `infra.local.stack.LocalStack` (alerts on: Slack and SMTP
receivers, the Pub/Sub alert topic, dedupe in the Firestore emulator), one function instance:

  fresh stack the first 3 violations right after the stack is up (the function's warm-up and
              both emulators' JVMs still cold), then `warm_violations` more, not measured
  baseline    a no-op function (bench/noop_function.py) behind its own push subscription on the same
              emulator: publish → handler latency one message at a time, how many pushes the
              emulator keeps in flight, and how many messages/s it delivers at the offered rate
  latency     `violations` violations one at a time, each a real change first (`stack.admin.mutate`:
              Cloud Run ingress opened on one of RUN_SERVICES seeded services, or, 1 in KMS_EVERY, a
              KMS key version disabled), then its audit entry published; time from publish to the
              live state read back compliant (polling the stand-in every POLL_S)
  restart     the first violation right after the function instance restarts, and 3 s later
  sustained   `rate` events/s (1 in VIOLATION_EVERY a violation, the rest corpus noise), pushed
              straight at the function by the bench for `seconds` (the push body the emulator sends,
              up to SENDERS in flight), then published to the emulator for `emulator_seconds`: every
              violation must be remediated, with one record each, and nothing dead-lettered or failed
  memory      VmHWM of the functions-framework arbiter and its worker, before the restarts and after

The emulator pushes on a timer of about 100 ms, so a loop that publishes right after the last
delivery would always hit the same phase of it: each one-at-a-time publish waits 0-JITTER_S at
random first. `publish` uses a PublisherClient that sends each message at once (no batching window).
"""

from __future__ import annotations

import collections
import copy
import http.client
import itertools
import json
import random
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import ROOT, Target, children, new_lines, summary, vm_status

RUN_SERVICES = 40
KMS_KEYS = 10
KMS_EVERY = 5  # 1 in 5 violations is a KMS key version disabled
VIOLATION_EVERY = 20  # in the sustained runs: 5 % violations
POLL_S = 0.005
SENDERS = 16
JITTER_S = 0.1
_rng = random.Random(6)
P50_TARGET_MS, P99_TARGET_MS, RATE_TARGET, RSS_TARGET_MIB = 100.0, 300.0, 200.0, 150.0


# ---------------------------------------------------------------------------------------------
# Fixtures in the stand-in, and violations of them.


@dataclass
class Violation:
    kind: str  # "run" | "kms"
    resource: str
    entry: dict[str, Any]
    published: float = 0.0  # time.time() just before publish / push
    publish_done: float = 0.0
    compliant: float = 0.0

    @property
    def event_id(self) -> str:
        return str(self.entry.get("insertId", ""))

    @property
    def latency_ms(self) -> float:
        return (self.compliant - self.published) * 1000 if self.compliant else float("nan")


class Fixtures:
    """Seeded Cloud Run services and KMS key versions, handed out in rotation."""

    def __init__(self, stack: Any, run_services: int = RUN_SERVICES, kms_keys: int = KMS_KEYS) -> None:
        from infra.local import scenario
        from infra.local.stack import SEED

        seed = json.loads(Path(SEED).read_text())
        template = next(s for s in seed["services"] if s["name"].endswith("/patient-api"))
        services = []
        for i in range(run_services):
            svc = copy.deepcopy(template)
            svc["name"] = f"{scenario.SVC}/bench-{i:03d}"
            services.append(svc)
        keys, versions = [], []
        for i in range(kms_keys):
            key = f"{scenario.RING}/cryptoKeys/bench-key-{i:02d}"
            keys.append({"name": key, "purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "7776000s",
                         "nextRotationTime": "2027-03-01T00:00:00Z", "destroyScheduledDuration": "86400s"})
            versions.append({"name": f"{key}/cryptoKeyVersions/1", "state": "ENABLED"})
        stack.admin.seed({"services": services, "cryptoKeys": keys, "cryptoKeyVersions": versions})
        self.stack = stack
        self.run = [s["name"] for s in services]
        self.kms = [v["name"] for v in versions]
        self._n = itertools.count()
        self._lock = threading.Lock()
        self._run_next = itertools.cycle(self.run)
        self._kms_next = itertools.cycle(self.kms)

    def violation(self) -> Violation:
        """The next violation: open the door for real, return the audit entry it produced."""
        from infra.local import scenario

        with self._lock:
            n = next(self._n)
            kms = n % KMS_EVERY == KMS_EVERY - 1
            name = next(self._kms_next) if kms else next(self._run_next)
        if kms:
            self.stack.admin.mutate(name, patch={"state": "DISABLED"}, actor=scenario.DEVELOPER)
            return Violation("kms", name, scenario.kms_update_version("DISABLED", version=name))
        self.stack.admin.mutate(name, patch={"ingress": "INGRESS_TRAFFIC_ALL"}, actor=scenario.DEVELOPER)
        return Violation("run", name, scenario.replace_service_v1(name.rsplit("/", 1)[1], ingress="all"))


class Poller:
    """Reads live state from the stand-in over one keep-alive connection."""

    def __init__(self, url: str) -> None:
        host, port = url.removeprefix("http://").split(":")
        self.conn = http.client.HTTPConnection(host, int(port), timeout=10)

    def _get(self, path: str) -> dict[str, Any]:
        try:
            self.conn.request("GET", path)
            resp = self.conn.getresponse()
            return json.loads(resp.read())
        except (OSError, http.client.HTTPException):
            self.conn.close()
            raise

    def compliant(self, v: Violation) -> bool:
        if v.kind == "kms":
            return self._get(f"/v1/{v.resource}").get("state") == "ENABLED"
        return self._get(f"/v2/{v.resource}").get("ingress") == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"

    def close(self) -> None:
        self.conn.close()


def fast_publisher(host: str) -> Any:
    """A PublisherClient to the emulator that sends each message at once (no batching window)."""
    import grpc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    return pubsub_v1.PublisherClient(
        batch_settings=pubsub_v1.types.BatchSettings(max_messages=1),
        transport=PublisherGrpcTransport(channel=grpc.insecure_channel(host)),
    )


def _data(entry: dict[str, Any]) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode()


def _attrs() -> dict[str, str]:
    return {"logging.googleapis.com/timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


# ---------------------------------------------------------------------------------------------
# The no-op baseline: what the emulator's push delivery costs by itself.


class NoopLog:
    """The no-op function's log, read incrementally: message id -> (arrived, done)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pos = 0
        self.seen: dict[str, tuple[float, float]] = {}

    def poll(self) -> dict[str, tuple[float, float]]:
        lines, self.pos = new_lines(self.path, self.pos)
        for line in lines:
            if b'"bench.noop"' in line:
                d = json.loads(line)
                self.seen[d["id"]] = (d["arrived"], d["done"])
        return self.seen

    def wait_for(self, ids: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ids <= self.poll().keys():
                return True
            time.sleep(0.002)
        return False


def noop_baseline(stack: Any, pub: Any, *, sequential: int = 100, rate: float = 200, seconds: float = 5) -> dict[str, Any]:
    from infra.local.emulators import create_push_subscription, create_topic
    from infra.local.procs import LOOPBACK, Proc, free_port, port_open
    from infra.local.stack import PROJECT, _bin

    topic = create_topic(stack.pubsub.host, PROJECT, "bench-noop")
    port = free_port()
    log_path = stack.workdir / "noop-function.log"
    proc = Proc("noop-function", [_bin("functions-framework"), "--target", "noop", "--source", str(ROOT / "bench" / "noop_function.py"),
                                  "--signature-type", "cloudevent", "--host", LOOPBACK, "--port", str(port)],
                env=stack.function_env(), cwd=ROOT, log_path=log_path)
    proc.start(ready=lambda: port_open(port), timeout=60)
    try:
        create_push_subscription(stack.pubsub.host, PROJECT, "bench-noop-push", "bench-noop",
                                 f"http://{LOOPBACK}:{port}/projects/{PROJECT}/topics/bench-noop",
                                 ack_deadline=stack.ack_deadline, min_backoff_seconds=stack.min_backoff,
                                 max_backoff_seconds=stack.max_backoff)
        log = NoopLog(log_path)
        # One at a time, as the latency run publishes violations.
        lat = []
        for _ in range(sequential):
            _jitter()
            t0 = time.time()
            mid = pub.publish(topic, b"{}").result(timeout=30)
            if log.wait_for({mid}, 30):
                lat.append((log.seen[mid][0] - t0) * 1000)
        # How many pushes the emulator keeps in flight: 8 requests that each take 300 ms.
        t0 = time.time()
        ids = {f.result(timeout=30) for f in [pub.publish(topic, b'{"sleep_ms":300}') for _ in range(8)]}
        log.wait_for(ids, 60)
        spans = sorted(log.seen[i] for i in ids if i in log.seen)
        edges = sorted([(a, 1) for a, _ in spans] + [(d, -1) for _, d in spans])
        in_flight = peak = 0
        for _, step in edges:
            in_flight += step
            peak = max(peak, in_flight)
        burst_s = max(d for _, d in spans) - t0 if spans else float("nan")
        # Capacity at the offered rate.
        cap = _offered_load(pub, topic, rate, seconds, lambda i: b"{}")
        ok = log.wait_for(set(cap["ids"]), 90)
        arrivals = [log.seen[i][0] for i in cap["ids"] if i in log.seen]
        delivered_rate = len(arrivals) / (max(arrivals) - cap["start"]) if arrivals else 0.0
        cap_lat = [(log.seen[i][0] - cap["sent"][i]) * 1000 for i in cap["ids"] if i in log.seen]
        return {
            "publish_to_handler_ms": summary(lat),
            "pushes_in_flight_max": peak,
            "eight_300ms_pushes_took_s": round(burst_s, 2),
            "offered_rate": rate,
            "offered_seconds": seconds,
            "delivered_all": ok,
            "delivered_rate": round(delivered_rate, 1),
            "latency_at_offered_rate_ms": summary(cap_lat),
        }
    finally:
        proc.stop()


def _offered_load(pub: Any, topic: str, rate: float, seconds: float, data: Any) -> dict[str, Any]:
    """Publish `rate`/s for `seconds` (open loop); message ids and when each was sent."""
    n = int(rate * seconds)
    start = time.time()
    futures = []
    sent_at = []
    for i in range(n):
        due = start + i / rate
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        sent_at.append(time.time())
        futures.append(pub.publish(topic, data(i), **_attrs()))
    ids = [f.result(timeout=60) for f in futures]
    return {"start": start, "ids": ids, "sent": dict(zip(ids, sent_at, strict=True)), "publish_s": time.time() - start}


# ---------------------------------------------------------------------------------------------
# Rampart through the emulator.


def _wait_compliant(poller: Poller, v: Violation, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if poller.compliant(v):
            v.compliant = time.time()
            return True
        time.sleep(POLL_S)
    return False


def _jitter() -> None:
    """Sleep 0-100 ms at random: the emulator pushes on a ~100 ms timer, and a closed loop that
    publishes right after the last push would always land at the same phase of it."""
    time.sleep(_rng.uniform(0, JITTER_S))


def _one(stack: Any, pub: Any, fixtures: Fixtures, poller: Poller) -> Violation:
    from infra.local.stack import AUDIT_TOPIC, PROJECT

    _jitter()
    v = fixtures.violation()
    stack.admin.log_entries([v.entry])  # Cloud Logging holds what its sink forwards (restores confirm it there)
    v.published = time.time()
    pub.publish(f"projects/{PROJECT}/topics/{AUDIT_TOPIC}", _data(v.entry), **_attrs()).result(timeout=30)
    v.publish_done = time.time()
    _wait_compliant(poller, v)
    return v


def latency_run(stack: Any, pub: Any, fixtures: Fixtures, n: int) -> dict[str, Any]:
    poller = Poller(stack.standin_url)
    try:
        done = [_one(stack, pub, fixtures, poller) for _ in range(n)]
    finally:
        poller.close()
    time.sleep(0.5)  # the last record is logged just after the write the poller saw
    by_id = {r.get("event_id"): r for r in stack.records()}
    lat = [v.latency_ms for v in done if v.compliant]
    remediate_ms = [float(by_id[v.event_id].get("duration_ms", 0)) for v in done if v.event_id in by_id]
    return {
        "violations": n,
        "run": sum(v.kind == "run" for v in done),
        "kms": sum(v.kind == "kms" for v in done),
        "remediated": len(lat),
        "publish_to_compliant_ms": summary(lat),
        "run_ms": summary([v.latency_ms for v in done if v.kind == "run" and v.compliant]),
        "kms_ms": summary([v.latency_ms for v in done if v.kind == "kms" and v.compliant]),
        "publish_rpc_ms": summary([(v.publish_done - v.published) * 1000 for v in done]),
        "remediation_call_ms": summary(remediate_ms),
        "outcomes": dict(collections.Counter(by_id[v.event_id].get("outcome") for v in done if v.event_id in by_id)),
        "first_ms": round(done[0].latency_ms, 1) if done else None,
    }


def restart_run(stack: Any, pub: Any, fixtures: Fixtures, idle_s: float) -> float:
    """Restart the function instance, wait `idle_s`, then time one violation (ms)."""
    stack.functions[0].stop()
    stack.start_function(0)
    time.sleep(idle_s)
    return _one_timed(stack, pub, fixtures)


class Tracker:
    """Polls the pending violations in the background until each reads compliant."""

    def __init__(self, url: str) -> None:
        self.poller = Poller(url)
        self.pending: collections.deque[Violation] = collections.deque()
        self.done: list[Violation] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-tracker", daemon=True)
        self._thread.start()

    def add(self, v: Violation) -> None:
        with self._lock:
            self.pending.append(v)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                batch = list(self.pending)
            for v in batch:
                if v.published and self.poller.compliant(v):
                    v.compliant = time.time()
                    with self._lock:
                        self.pending.remove(v)
                        self.done.append(v)
            time.sleep(POLL_S)

    def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self.pending:
                    return True
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.poller.close()


def _noise(mix: Any) -> Any:
    entries = [_data(e) for e in mix.irrelevant]
    return lambda i: entries[i % len(entries)]


def _outcome(stack: Any, violations: list[Violation], tracker: Tracker, *, drained: bool, start: float, end_publish: float) -> dict[str, Any]:
    ids = {v.event_id for v in violations}
    deadline = time.monotonic() + 10  # the record is logged just after the write the tracker saw
    while True:
        records = [r for r in stack.records() if r.get("event_id") in ids]
        if len(records) >= len(violations) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    lat = [v.latency_ms for v in tracker.done]
    last = max((v.compliant for v in tracker.done), default=float("nan"))
    return {
        "violations": len(violations),
        "remediated": len(tracker.done),
        "records": len(records),
        "records_remediated": sum(r.get("outcome") == "remediated" for r in records),
        "all_remediated": drained and len(tracker.done) == len(violations),
        "violation_latency_ms": summary(lat),
        "publishing_s": round(end_publish - start, 2),
        "last_remediation_after_publishing_s": round(last - end_publish, 2),
        "event_failed_lines": len(stack.log_lines("rampart.event_failed")),
    }


def sustained_emulator(stack: Any, pub: Any, fixtures: Fixtures, mix: Any, rate: float, seconds: float) -> dict[str, Any]:
    from infra.local.stack import AUDIT_TOPIC, PROJECT

    topic = f"projects/{PROJECT}/topics/{AUDIT_TOPIC}"
    tracker = Tracker(stack.standin_url)
    noise = _noise(mix)
    violations: list[Violation] = []
    failed_before = len(stack.log_lines("rampart.event_failed"))
    n = int(rate * seconds)
    futures = []
    start = time.time()
    try:
        for i in range(n):
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            if i % VIOLATION_EVERY == VIOLATION_EVERY - 1 or i == n - 1:  # the last one too: it marks the drain
                v = fixtures.violation()
                violations.append(v)
                stack.admin.log_entries([v.entry])  # as Cloud Logging holds it before the sink forwards it
                v.published = time.time()
                tracker.add(v)
                futures.append(pub.publish(topic, _data(v.entry), **_attrs()))
            else:
                futures.append(pub.publish(topic, noise(i), **_attrs()))
        for f in futures:
            f.result(timeout=60)
        end_publish = time.time()
        drained = tracker.wait(120)
    finally:
        tracker.stop()
    out = _outcome(stack, violations, tracker, drained=drained, start=start, end_publish=end_publish)
    out["event_failed_lines"] -= failed_before
    out.update({"offered_rate": rate, "seconds": seconds, "messages": n,
                "achieved_publish_rate": round(n / (end_publish - start), 1),
                "delivered_rate_estimate": round(n / (max(v.compliant for v in tracker.done) - start), 1) if tracker.done else 0.0})
    return out


def sustained_direct(stack: Any, fixtures: Fixtures, mix: Any, rate: float, seconds: float, senders: int = SENDERS) -> dict[str, Any]:
    """Push bodies straight at the function, as the emulator would, at `rate`/s (open loop)."""
    from bench.corpus import push_body
    from infra.local.procs import LOOPBACK
    from infra.local.stack import AUDIT_TOPIC, PROJECT

    path = f"/projects/{PROJECT}/topics/{AUDIT_TOPIC}"
    port = stack.function_ports[0]
    noise = [json.loads(e) for e in map(_noise(mix), range(len(mix.irrelevant)))]
    n = int(rate * seconds)
    tracker = Tracker(stack.standin_url)
    violations: list[Violation] = []
    results: list[tuple[str, float, float, int]] = []  # kind, due, done, status
    next_i = itertools.count()
    lock = threading.Lock()
    start = time.time() + 0.2
    failed_before = len(stack.log_lines("rampart.event_failed"))

    def sender() -> None:
        conn = http.client.HTTPConnection(LOOPBACK, port, timeout=60)
        while True:
            i = next(next_i)
            if i >= n:
                break
            due = start + i / rate
            delay = due - time.time()
            if delay > 0:
                time.sleep(delay)
            if i % VIOLATION_EVERY == VIOLATION_EVERY - 1 or i == n - 1:
                v = fixtures.violation()
                with lock:
                    violations.append(v)
                entry: Any = v.entry
                v.published = time.time()
                tracker.add(v)
                kind = "violation"
            else:
                entry, kind = noise[i % len(noise)], "noise"
            body = json.dumps(push_body(entry, f"direct-{i}")).encode()
            try:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
            except (OSError, http.client.HTTPException):
                conn.close()
                status = 0
            with lock:
                results.append((kind, due, time.time(), status))
        conn.close()

    threads = [threading.Thread(target=sender, name=f"bench-sender-{k}", daemon=True) for k in range(senders)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=seconds + 120)
        end_publish = time.time()
        drained = tracker.wait(60)
    finally:
        tracker.stop()
    out = _outcome(stack, violations, tracker, drained=drained, start=start, end_publish=end_publish)
    out["event_failed_lines"] -= failed_before
    statuses = collections.Counter(s for *_, s in results)
    last_done = max((d for _, _, d, _ in results), default=start)
    out.update({
        "offered_rate": rate, "seconds": seconds, "messages": n, "senders": senders,
        "responses": {str(k): v for k, v in sorted(statuses.items())},
        "achieved_rate": round(len(results) / (last_done - start), 1),
        "noise_response_ms": summary([(d - due) * 1000 for k, due, d, _ in results if k == "noise"]),
        "violation_response_ms": summary([(d - due) * 1000 for k, due, d, _ in results if k == "violation"]),
    })
    return out


def memory(stack: Any) -> dict[str, Any]:
    arbiter = stack.functions[0].pid
    workers = children(arbiter)
    procs = {"arbiter": vm_status(arbiter), **{f"worker-{w}": vm_status(w) for w in workers}}
    peak = max((p.get("VmHWM", 0) for p in procs.values()), default=0) / 1024
    return {"processes_kib": procs, "peak_rss_mib": round(peak, 1)}


def _dlq_count(stack: Any) -> int:
    from infra.local.emulators import pull
    from infra.local.stack import PROJECT

    total = 0
    while True:
        got = pull(stack.pubsub.host, f"projects/{PROJECT}/subscriptions/rampart-dlq-pull", max_messages=100, timeout=0.5)
        total += len(got)
        if not got:
            return total


def measure(*, violations: int = 500, rate: float = 200, seconds: float = 30, emulator_seconds: float = 30,
            baseline_sequential: int = 100, baseline_seconds: float = 5, warm_violations: int = 20,
            restarts: bool = True, mix: Any = None) -> dict[str, Any]:
    from bench.corpus import load_mix
    from infra.local.stack import LocalStack

    mix = mix or load_mix()
    out: dict[str, Any] = {"parameters": {
        "violations": violations, "rate": rate, "direct_seconds": seconds, "emulator_seconds": emulator_seconds,
        "run_services": RUN_SERVICES, "kms_keys": KMS_KEYS, "kms_every": KMS_EVERY, "violation_every": VIOLATION_EVERY,
        "poll_s": POLL_S, "senders": SENDERS, "warm_violations": warm_violations}}
    t_start = time.monotonic()
    # 400 violations on 40 services: the circuit breaker (3 per hour per resource) would hold them.
    with LocalStack(policy_overrides={"remediation": {"circuit_breaker": {"max_remediations": 0}}}) as stack:
        out["stack_start_s"] = round(time.monotonic() - t_start, 1)
        fixtures = Fixtures(stack)
        pub = fast_publisher(stack.pubsub.host)
        # Right after the stack is up: the function's warm-up is still running, and both emulators
        # (JVMs) answer their first requests slowly (Firestore: ~2 s for the first read and write).
        first = [_one_timed(stack, pub, fixtures) for _ in range(3)]
        out["fresh_stack_first_violations_ms"] = first
        for _ in range(warm_violations):  # not measured: the emulators' JIT warms up
            _one_timed(stack, pub, fixtures)
        out["baseline"] = noop_baseline(stack, pub, sequential=baseline_sequential, rate=rate, seconds=baseline_seconds)
        out["latency"] = latency_run(stack, pub, fixtures, violations)
        before_restart = memory(stack)  # a restart starts a new process: its high-water mark too
        if restarts:
            out["restart"] = {"immediately_ms": restart_run(stack, pub, fixtures, 0.0),
                              "after_3s_ms": restart_run(stack, pub, fixtures, 3.0)}
        out["sustained_direct"] = sustained_direct(stack, fixtures, mix, rate, seconds)
        out["sustained_emulator"] = sustained_emulator(stack, pub, fixtures, mix, rate, emulator_seconds)
        out["dead_lettered"] = _dlq_count(stack)
        after = memory(stack)
        out["memory"] = {"after_latency_run": before_restart, "after_sustained_runs": after,
                         "peak_rss_mib": max(before_restart["peak_rss_mib"], after["peak_rss_mib"])}
        out["alerts_received"] = {"slack": len(stack.slack.posts), "email": len(stack.smtp.mails)}
    lat = out["latency"]["publish_to_compliant_ms"]
    base = out["baseline"]["publish_to_handler_ms"]
    direct, emu = out["sustained_direct"], out["sustained_emulator"]
    out["targets"] = [
        Target("publish → compliant p50", lat.get("p50", float("nan")), P50_TARGET_MS, "ms",
               note=f"no-op baseline p50 {base.get('p50')} ms").to_dict(),
        Target("publish → compliant p99", lat.get("p99", float("nan")), P99_TARGET_MS, "ms",
               note=f"no-op baseline p99 {base.get('p99')} ms").to_dict(),
        Target("sustained events/s, one instance (pushed directly)",
               direct["achieved_rate"] if direct["all_remediated"] and not direct["event_failed_lines"] else 0.0,
               RATE_TARGET * 0.98, "events/s", op=">=",
               note=f"offered {rate:.0f}/s; {direct['remediated']}/{direct['violations']} violations remediated; "
                    f"responses {direct['responses']}").to_dict(),
        Target("sustained events/s through the emulator",
               emu["delivered_rate_estimate"] if emu["all_remediated"] else 0.0, RATE_TARGET * 0.98, "events/s", op=">=",
               note=f"no-op baseline delivers {out['baseline']['delivered_rate']}/s at {rate:.0f}/s offered").to_dict(),
        Target("function server peak RSS", out["memory"]["peak_rss_mib"], RSS_TARGET_MIB, "MiB").to_dict(),
    ]
    return out


def _one_timed(stack: Any, pub: Any, fixtures: Fixtures) -> float:
    poller = Poller(stack.standin_url)
    try:
        return round(_one(stack, pub, fixtures, poller).latency_ms, 1)
    finally:
        poller.close()


if __name__ == "__main__":
    import os

    quick = os.environ.get("BENCH_QUICK") == "1"
    kwargs: dict[str, Any] = {"violations": 40, "seconds": 5, "emulator_seconds": 3, "baseline_sequential": 20,
                              "baseline_seconds": 2, "warm_violations": 5} if quick else {}
    print(json.dumps(measure(**kwargs), indent=2, default=str))

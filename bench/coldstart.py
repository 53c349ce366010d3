"""Cold start, whole processes: what a new function instance pays before and at its first events.

Every figure is a fresh `python` process, median of `runs` runs (2 x `runs` for the bare imports)
after one warm-up run, timed from the parent (spawn to exit), with the peak RSS (VmHWM) each
process reports as it exits:

  interpreter   python -c pass
  ff            python -c "import functions_framework"
  main          python -c "import main"                  (main's own cost = main - ff)
  main, no .pyc the same with PYTHONDONTWRITEBYTECODE=1: every start compiles Rampart's own
                modules (installed packages keep their __pycache__), as an image built without
                compiling them pays

and, inside a fresh process (`--child`), timed with perf_counter around each call:

  on demand     import main; one irrelevant event; then one event whose remediation really writes
                to the stand-in (Cloud Run ingress reverted): the client libraries load on first use
  warmed        the same, but the first event goes through the `rampart` entry point, which starts
                the background warm-up; the violation comes once the warm-up is done. Also: how
                long the warm-up took, and what irrelevant events cost while it ran
  run_v2 import `google.cloud.run_v2` vs `google.cloud.run_v2.services.services` after `import main`
                (the option of importing only the Services client)

Children get a fresh bytecode cache directory (PYTHONPYCACHEPREFIX) that the warm-up run fills,
so the repository stays clean. The stand-in (infra/local/standin/) is started by the bench on
loopback and stopped by PID; the policy is config/policy.yaml (no alert channels).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT, Target, median

PROCESS_REPEATS = 2  # the bare imports run 2 x `runs` times: a few ms apart, under a noisy neighbour
MAIN_OVER_FF_TARGET_MS = 60.0
FIRST_IRRELEVANT_TARGET_MS = 5.0


# Printed by each child as it exits: its own peak RSS. (wait4's ru_maxrss would count the pages
# the child shared with this process between fork and exec.)
HWM = "\nimport sys as _s\n_s.stderr.write([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"


def _spawn(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    """(wall seconds, peak RSS KiB) of one process, which writes its VmHWM line to stderr last."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    wall = time.perf_counter() - start
    err = proc.stderr.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {proc.returncode}: {err[-800:]}")
    hwm = [line for line in err.splitlines() if line.startswith("VmHWM:")]
    return wall, int(hwm[-1].split()[1]) if hwm else 0


def _child_env(cache: Path, *, bytecode: bool = True, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAMPART_", "PUBSUB_", "FIRESTORE_", "PYTHON"))}
    env["PYTHONPATH"] = str(ROOT)
    if bytecode:
        env["PYTHONPYCACHEPREFIX"] = str(cache)
    else:  # installed packages keep their own __pycache__; Rampart's modules compile on every start
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra or {})
    return env


def _violation(admin: Any) -> dict[str, Any]:
    """Open the door for real (ingress to all on patient-api) and return the audit entry it makes."""
    from infra.local import scenario

    admin.mutate(f"{scenario.SVC}/patient-api", patch={"ingress": "INGRESS_TRAFFIC_ALL"}, actor=scenario.DEVELOPER)
    return scenario.replace_service_v1("patient-api", ingress="all")


def measure(runs: int = 5) -> dict[str, Any]:
    from infra.local.procs import LOOPBACK, Proc, free_port, port_open
    from infra.local.stack import SEED
    from infra.local.standin.client import StandinAdmin

    py = sys.executable
    with tempfile.TemporaryDirectory(prefix="rampart-bench-cold-") as tmp:
        cache = Path(tmp) / "pycache"
        irrelevant = Path(tmp) / "irrelevant.json"
        from bench.corpus import load_mix

        mix = load_mix()
        irrelevant.write_text(json.dumps(mix.irrelevant[:40]))
        port = free_port()
        standin = Proc("stand-in", [py, "-m", "infra.local.standin", "--port", str(port), "--seed", str(SEED)],
                       cwd=ROOT, log_path=Path(tmp) / "standin.log")
        standin.start(ready=lambda: port_open(port), timeout=30)
        try:
            url = f"http://{LOOPBACK}:{port}"
            admin = StandinAdmin(url)
            rampart_env = {"RAMPART_RUN_ENDPOINT": url, "RAMPART_KMS_ENDPOINT": url,
                           "RAMPART_POLICY": str(ROOT / "config" / "policy.yaml")}
            procs: dict[str, tuple[list[str], dict[str, str]]] = {
                "interpreter": ([py, "-c", "pass" + HWM], _child_env(cache)),
                "ff": ([py, "-c", "import functions_framework" + HWM], _child_env(cache)),
                "main": ([py, "-c", "import main" + HWM], _child_env(cache)),
                "main_no_pyc": ([py, "-c", "import main" + HWM], _child_env(cache, bytecode=False)),
            }
            walls: dict[str, list[float]] = {k: [] for k in procs}
            rss: dict[str, list[int]] = {k: [] for k in procs}
            children: dict[str, list[dict[str, Any]]] = {
                "on_demand": [], "warmed": [], "run_v2": [], "services_only": [], "main_only": []}
            for i in range(runs + 1):  # run 0 is the warm-up: fills the bytecode cache and the page cache
                for _ in range(1 if i == 0 else PROCESS_REPEATS):  # cheap, and noisier: more samples
                    for name, (argv, env) in procs.items():
                        wall, peak = _spawn(argv, env)
                        if i:
                            walls[name].append(wall * 1000)
                            rss[name].append(peak)
                for mode in children:
                    out = Path(tmp) / f"{mode}-{i}.json"
                    violation = Path(tmp) / "violation.json"
                    violation.write_text(json.dumps(_violation(admin)))
                    argv = [py, "-m", "bench.coldstart", "--child", mode, "--out", str(out),
                            "--irrelevant", str(irrelevant), "--violation", str(violation)]
                    wall, peak = _spawn(argv, _child_env(cache, extra=rampart_env))
                    result = json.loads(out.read_text())
                    result["wall_ms"] = wall * 1000
                    result["peak_rss_mib"] = round(peak / 1024, 1)
                    if i:
                        children[mode].append(result)
        finally:
            standin.stop()

    def med(rows: list[dict[str, Any]], key: str) -> float:
        vals = [r[key] for r in rows if r.get(key) is not None]
        return round(median(vals), 2) if vals else float("nan")

    process = {name: {"median_ms": round(median(walls[name]), 1), "min_ms": round(min(walls[name]), 1),
                      "runs_ms": [round(x, 1) for x in walls[name]],
                      "peak_rss_mib": round(median(rss[name]) / 1024, 1)} for name in procs}
    # Each round runs ff and main back to back: the median of the paired differences cancels drift.
    main_over_ff = median([m - f for m, f in zip(walls["main"], walls["ff"], strict=True)])
    no_pyc_over_ff = median([m - f for m, f in zip(walls["main_no_pyc"], walls["ff"], strict=True)])
    on_demand, warmed = children["on_demand"], children["warmed"]
    result = {
        "runs": runs,
        "process": process,
        "main_over_ff_ms": round(main_over_ff, 1),
        "main_over_ff_no_pyc_ms": round(no_pyc_over_ff, 1),
        "import_main_after_ff_in_process_ms": med(children["main_only"], "import_ms"),
        "on_demand": {
            "import_main_ms": med(on_demand, "import_main_ms"),
            "first_irrelevant_ms": med(on_demand, "first_irrelevant_ms"),
            "second_irrelevant_ms": med(on_demand, "second_irrelevant_ms"),
            "first_remediation_ms": med(on_demand, "first_remediation_ms"),
            "outcomes": sorted({r["outcome"] for r in on_demand}),
            "peak_rss_mib": med(on_demand, "peak_rss_mib"),
            "libraries_after_run_remediation": on_demand[-1]["libraries"] if on_demand else [],
        },
        "warmed": {
            "first_irrelevant_ms": med(warmed, "first_irrelevant_ms"),
            "warm_up_ms": med(warmed, "warm_up_ms"),
            "irrelevant_during_warm_up_ms": med(warmed, "irrelevant_during_warm_up_ms"),
            "irrelevant_during_warm_up_max_ms": med(warmed, "irrelevant_during_warm_up_max_ms"),
            "first_remediation_ms": med(warmed, "first_remediation_ms"),
            "outcomes": sorted({r["outcome"] for r in warmed}),
            "peak_rss_mib": med(warmed, "peak_rss_mib"),
        },
        "run_v2_import_ms": med(children["run_v2"], "import_ms"),
        "run_v2_services_only_import_ms": med(children["services_only"], "import_ms"),
    }
    result["targets"] = [
        Target("main over functions-framework", round(main_over_ff, 1), MAIN_OVER_FF_TARGET_MS, "ms",
               note=f"process {process['main']['median_ms']:.0f} vs {process['ff']['median_ms']:.0f} ms; in process "
                    f"{result['import_main_after_ff_in_process_ms']:.1f} ms; no .pyc +{result['main_over_ff_no_pyc_ms']:.0f} ms").to_dict(),
        Target("first irrelevant event after import", result["on_demand"]["first_irrelevant_ms"], FIRST_IRRELEVANT_TARGET_MS,
               "ms", op="<").to_dict(),
    ]
    return result


# ---------------------------------------------------------------------------------------------
# The first violation a NEW function instance receives, one per action kind, end to end.

KINDS = ("revert", "quarantine", "kms_restore", "alert_only")
FIRST_VIOLATION_TARGET_MS = 1000.0
DEFAULT_SA = "123456789012-compute@developer.gserviceaccount.com"


class ColdKinds:
    """Fresh violating resources for one action kind (seeded, so the bench's own calls finish
    before the instance starts), the audit entry each produced, and when each reads done."""

    def __init__(self, stack: Any) -> None:
        from infra.local.stack import SEED

        seed = json.loads(Path(SEED).read_text())
        self.template = next(s for s in seed["services"] if s["name"].endswith("/patient-api"))
        self.stack = stack
        self.n = 0

    def prepare(self, kind: str) -> tuple[dict[str, Any], Any]:
        """Seed one violation of `kind`; (its audit entry, a check that it is done)."""
        import copy

        from infra.local import scenario

        self.n += 1
        name = f"cold-{kind.replace('_', '-')}-{self.n}"
        if kind in ("revert", "quarantine"):
            svc = copy.deepcopy(self.template)
            svc["name"] = f"{scenario.SVC}/{name}"
            if kind == "revert":
                svc["ingress"] = "INGRESS_TRAFFIC_ALL"
                entry = scenario.replace_service_v1(name, ingress="all")
                done = lambda: self.stack.get(svc["name"]).get("ingress") == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"  # noqa: E731
            else:
                svc["template"]["serviceAccount"] = DEFAULT_SA
                entry = scenario.update_service_v2(name, sa=DEFAULT_SA)
                done = lambda: (self.stack.get(svc["name"]).get("labels") or {}).get("rampart-quarantine") == "run_default_service_account"  # noqa: E731
            self.stack.admin.seed({"services": [svc]})
            return entry, done
        key = f"{scenario.RING}/cryptoKeys/{name}"
        version = f"{key}/cryptoKeyVersions/1"
        rotation = "31536000s" if kind == "alert_only" else "7776000s"
        self.stack.admin.seed({
            "cryptoKeys": [{"name": key, "purpose": "ENCRYPT_DECRYPT", "rotationPeriod": rotation,
                            "nextRotationTime": "2027-03-01T00:00:00Z", "destroyScheduledDuration": "86400s"}],
            "cryptoKeyVersions": [{"name": version, "state": "DISABLED" if kind == "kms_restore" else "ENABLED"}]})
        if kind == "kms_restore":
            return scenario.kms_update_version("DISABLED", version=version), lambda: self.stack.get(version).get("state") == "ENABLED"
        entry = scenario._entry("cloudkms.googleapis.com", "UpdateCryptoKey", key,
                                {"@type": "type.googleapis.com/google.cloud.kms.v1.UpdateCryptoKeyRequest",
                                 "cryptoKey": {"name": key, "rotationPeriod": rotation}, "updateMask": "rotationPeriod"},
                                permission="cloudkms.cryptoKeys.update", resource_type="cloudkms_cryptokey")
        return entry, lambda: any(name in json.dumps(post.body) for post in self.stack.slack.posts)


ALERT_ROUTE = {"kms_rotation": ["slack"]}  # medium severity goes to Pub/Sub only by default: to a human here


def first_violations(runs: int = 3, kinds: tuple[str, ...] = KINDS, warm_up_round: bool = True) -> dict[str, Any]:
    """Publish → done for the first violation a new instance receives, per action kind.

    For each kind and run: a violation is seeded, the function instance is stopped and a new one
    started (functions-framework, as LocalStack runs it; its bytecode cached as a deployed image's
    would be), and the violation's audit entry is published the moment the port accepts: no warm-up
    time. Done = the live state reads compliant (polled every 5 ms), or for alert only, the Slack
    receiver has the alert (kms_rotation, routed to Slack). Round 0 (fills the bytecode cache) is
    not counted."""
    from bench.common import load_average, summary
    from bench.e2e import fast_publisher
    from infra.local.stack import AUDIT_TOPIC, PROJECT, LocalStack

    class _Stack(LocalStack):
        def function_env(self, i: int = 0) -> dict[str, str]:
            env = super().function_env(i)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.workdir / "pycache")
            return env

    out: dict[str, Any] = {"runs": runs, "load_average_at_start": load_average(), "kinds": {}}
    # Firestore: a quarantine keeps its record (what release may put back) in Rampart's own database.
    with _Stack(firestore=True, alerts=True, policy_overrides={"alerts": {"rule_routes": ALERT_ROUTE}}) as stack:
        pub = fast_publisher(stack.pubsub.host)
        topic = f"projects/{PROJECT}/topics/{AUDIT_TOPIC}"
        prepared = ColdKinds(stack)
        samples: dict[str, list[float]] = {k: [] for k in kinds}
        durations: dict[str, list[float]] = {k: [] for k in kinds}
        start_s: list[float] = []
        first = 0 if warm_up_round else 1
        for i in range(first, runs + 1):
            for kind in kinds:
                entry, done = prepared.prepare(kind)
                stack.functions[0].stop()
                t = time.perf_counter()
                stack.start_function(0)
                start_s.append(time.perf_counter() - t)
                t0 = time.time()
                pub.publish(topic, json.dumps(entry).encode()).result(timeout=30)
                deadline = time.monotonic() + 30
                while not done() and time.monotonic() < deadline:
                    time.sleep(0.005)
                elapsed = (time.time() - t0) * 1000 if done() else float("nan")
                if i:
                    samples[kind].append(elapsed)
                    rec = _record(stack, entry["insertId"])
                    if rec and rec.get("duration_ms") is not None:
                        durations[kind].append(float(rec["duration_ms"]))
    for kind in kinds:
        out["kinds"][kind] = {"publish_to_done_ms": summary(samples[kind]), "median_ms": round(median(samples[kind]), 1),
                              "record_duration_ms": summary(durations[kind])}
    out["instance_start_s"] = round(median(start_s), 2)
    out["load_average_at_end"] = load_average()
    out["targets"] = [Target(f"first {kind.replace('_', ' ')} after a cold start (publish → done)", out["kinds"][kind]["median_ms"],
                             FIRST_VIOLATION_TARGET_MS, "ms", note=f"median of {runs}; load {out['load_average_at_start']}").to_dict()
                      for kind in kinds]
    return out


def _record(stack: Any, event_id: str, timeout: float = 5.0) -> dict[str, Any] | None:
    """The remediation record of `event_id` (logged after the write and the alerts)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rec = [r for r in stack.records() if r.get("event_id") == event_id]
        if rec:
            return rec[-1]
        time.sleep(0.05)
    return None


def breakdown(kinds: tuple[str, ...] = KINDS) -> dict[str, Any]:
    """Where a cold instance's first violation spends its time, per kind: one fresh process each,
    `import main`, then the violation handled under cProfile (on demand: no warm-up), its
    cumulative time split into imports, client creation, credentials and token, HTTP round trips
    to the API and to alert channels, and the rest (policy, rules, decisions, records). cProfile
    inflates Python-heavy parts, so each part is also given as a share of the profiled total."""
    from infra.local.procs import LOOPBACK, Proc, free_port, port_open
    from infra.local.receivers import SlackReceiver

    py = sys.executable
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="rampart-bench-cold-why-") as tmp:
        cache = Path(tmp) / "pycache"
        port = free_port()
        standin = Proc("stand-in", [py, "-m", "infra.local.standin", "--port", str(port), "--seed", str(ROOT / "infra" / "local" / "seed.example.json")],
                       cwd=ROOT, log_path=Path(tmp) / "standin.log")
        standin.start(ready=lambda: port_open(port), timeout=30)
        slack = SlackReceiver().start()
        try:
            from infra.local.standin.client import StandinAdmin

            url = f"http://{LOOPBACK}:{port}"
            stack = _AdminOnly(StandinAdmin(url), url, slack)
            prepared = ColdKinds(stack)
            webhook = Path(tmp) / "slack-webhook"
            webhook.write_text(slack.url + "\n")
            import yaml

            policy = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text())
            policy["alerts"] = {"slack": {"webhook_url_file": str(webhook), "allowed_hosts": ["127.0.0.1"]}, "dedupe": {"store": "memory"},
                                "rule_routes": ALERT_ROUTE}
            policy_path = Path(tmp) / "policy.yaml"
            policy_path.write_text(yaml.safe_dump(policy))
            env = _child_env(cache, extra={"RAMPART_RUN_ENDPOINT": url, "RAMPART_KMS_ENDPOINT": url, "RAMPART_POLICY": str(policy_path)})
            for i, kind in enumerate(("revert", *kinds)):  # the first one fills the bytecode cache
                entry, _ = prepared.prepare(kind)
                violation = Path(tmp) / f"violation-{i}.json"
                violation.write_text(json.dumps(entry))
                result = Path(tmp) / f"why-{i}.json"
                _spawn([py, "-m", "bench.coldstart", "--child", "breakdown", "--out", str(result),
                        "--irrelevant", str(violation), "--violation", str(violation)], env)
                if i:
                    out[kind] = json.loads(result.read_text())
        finally:
            slack.stop()
            standin.stop()
    return out


class _AdminOnly:
    """What ColdKinds needs of a LocalStack, over a bare stand-in and Slack receiver."""

    def __init__(self, admin: Any, url: str, slack: Any) -> None:
        self.admin, self.standin_url, self.slack = admin, url, slack

    def get(self, name: str) -> dict[str, Any]:
        import urllib.request

        version = "v1" if "/keyRings/" in name else "v2"
        with urllib.request.urlopen(f"{self.standin_url}/{version}/{name}", timeout=10) as resp:
            return json.loads(resp.read())


# Where each part of the first violation's time is counted (cProfile cumulative time; the
# outermost call of a recursive function counts once).
PARTS: dict[str, tuple[str, ...]] = {
    "imports": ("<frozen importlib._bootstrap>:_find_and_load",),
    "client_creation": ("services/services/client.py:__init__", "key_management_service/client.py:__init__"),
    "credentials_token": ("google/auth/_default.py:default", "credentials.py:before_request", "credentials.py:refresh"),
    "api_round_trips": ("requests/sessions.py:send",),
    "alert_delivery": ("slack_sdk/webhook/client.py:send", "smtplib.py:sendmail"),
}


def _heaviest_imports(stats: Any, top: int = 8) -> dict[str, float]:
    """The modules whose import took longest during the profiled call (inclusive of what each
    imported in turn, so a package and its submodules overlap), by their `<module>` code."""
    rows = []
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        if func != "<module>":
            continue
        path = Path(filename)
        parts = path.with_suffix("").parts
        anchor = parts.index("site-packages") if "site-packages" in parts else (parts.index(ROOT.name) if ROOT.name in parts else None)
        dotted = ".".join(parts[anchor + 1:] if anchor is not None else parts[-2:]).removesuffix(".__init__")
        rows.append((ct * 1000, dotted))
    rows.sort(reverse=True)
    out: dict[str, float] = {}
    for ms, name in rows:
        if any(name.startswith(other + ".") for other in out):
            continue  # inside a package already listed
        out[name] = round(ms, 1)
        if len(out) >= top:
            break
    return out


def _profile_parts(stats: Any) -> dict[str, float]:
    totals = dict.fromkeys(PARTS, 0.0)
    for (filename, _line, func), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
        where = f"{filename}:{func}"
        for part, needles in PARTS.items():
            if any(where.endswith(n) or (n.startswith("<") and where == n) for n in needles):
                totals[part] += ct * 1000
    return totals


# ---------------------------------------------------------------------------------------------
# The child process: one fresh interpreter per run.


def _ce(entry: dict[str, Any], n: int) -> Any:
    from bench.corpus import cloud_event, push_body

    return cloud_event(push_body(entry, f"cold-{n}"))


def _libraries() -> list[str]:
    libs = ("google.cloud.run_v2", "google.cloud.kms_v1", "google.cloud.pubsub_v1", "google.cloud.firestore", "slack_sdk")
    return [lib for lib in libs if lib in sys.modules]


def _child(mode: str, irrelevant_path: str, violation_path: str) -> dict[str, Any]:
    from shared import log

    log.set_stream(open(os.devnull, "w"))  # noqa: SIM115 — the child's whole life
    if mode == "main_only":
        import functions_framework  # noqa: F401 — loaded first, so only main's own modules are timed

        t = time.perf_counter()
        import main

        return {"import_ms": (time.perf_counter() - t) * 1000}
    if mode in ("run_v2", "services_only"):
        import main  # measured after it, as in a function instance

        t = time.perf_counter()
        if mode == "run_v2":
            import google.cloud.run_v2
        else:
            import google.cloud.run_v2.services.services  # noqa: F401
        return {"import_ms": (time.perf_counter() - t) * 1000}

    t = time.perf_counter()
    import main

    import_ms = (time.perf_counter() - t) * 1000
    if mode == "breakdown":
        return _child_breakdown(main, import_ms, violation_path)
    irrelevant = [_ce(e, n) for n, e in enumerate(json.loads(Path(irrelevant_path).read_text()))]
    violation = _ce(json.loads(Path(violation_path).read_text()), 999)
    out: dict[str, Any] = {"import_main_ms": import_ms}

    t = time.perf_counter()
    if mode == "warmed":
        main.rampart(irrelevant[0])  # the entry point: handles the event, then starts the warm-up
    else:
        main.handle_cloud_event(irrelevant[0])
    warm_started = time.perf_counter()
    out["first_irrelevant_ms"] = (warm_started - t) * 1000
    t = time.perf_counter()
    main.handle_cloud_event(irrelevant[1])
    out["second_irrelevant_ms"] = (time.perf_counter() - t) * 1000

    if mode == "warmed":
        warm = [th for th in threading.enumerate() if th.name == "rampart-warm-up"]
        during = []
        for ce in irrelevant[2:]:
            if not any(th.is_alive() for th in warm):
                break
            t = time.perf_counter()
            main.handle_cloud_event(ce)
            during.append((time.perf_counter() - t) * 1000)
            time.sleep(0.01)
        for th in warm:
            th.join(timeout=60)
        out["warm_up_ms"] = (time.perf_counter() - warm_started) * 1000 if warm else None
        out["irrelevant_during_warm_up_ms"] = sum(during) / len(during) if during else None
        out["irrelevant_during_warm_up_max_ms"] = max(during) if during else None

    t = time.perf_counter()
    result = main.handle_cloud_event(violation)
    out["first_remediation_ms"] = (time.perf_counter() - t) * 1000
    out["outcome"] = ",".join(r.outcome.value for r in result.records) if result is not None else "(skipped)"
    out["libraries"] = _libraries()
    return out


def _child_breakdown(main: Any, import_ms: float, violation_path: str) -> dict[str, Any]:
    import cProfile
    import pstats

    from shared import quarantine_store

    # No Firestore here (the breakdown runs against a bare stand-in): a quarantine keeps its record
    # in memory, so what is profiled is Rampart's own path, not a credentials lookup that fails.
    quarantine_store.set_default(quarantine_store.MemoryRecords())
    violation = _ce(json.loads(Path(violation_path).read_text()), 999)
    profiler = cProfile.Profile()
    t = time.perf_counter()
    profiler.enable()
    result = main.handle_cloud_event(violation)
    profiler.disable()
    profiled_ms = (time.perf_counter() - t) * 1000
    stats = pstats.Stats(profiler)
    parts = _profile_parts(stats)
    parts["rest"] = max(0.0, profiled_ms - sum(parts.values()))
    return {"import_main_ms": round(import_ms, 1), "profiled_ms": round(profiled_ms, 1),
            "parts_ms": {k: round(v, 1) for k, v in parts.items()},
            "heaviest_imports_ms": _heaviest_imports(stats),
            "parts_share": {k: round(v / profiled_ms, 3) for k, v in parts.items()},
            "outcome": ",".join(r.outcome.value for r in result.records) if result is not None else "(skipped)",
            "libraries": _libraries()}


def _vmhwm_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def _child_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.coldstart")
    p.add_argument("--child", required=True, choices=["on_demand", "warmed", "run_v2", "services_only", "main_only", "breakdown"])
    p.add_argument("--out", required=True)
    p.add_argument("--irrelevant", required=True)
    p.add_argument("--violation", required=True)
    a = p.parse_args(argv)
    Path(a.out).write_text(json.dumps(_child(a.child, a.irrelevant, a.violation)))
    sys.stderr.write(f"VmHWM: {_vmhwm_kib()} kB\n")
    return 0


if __name__ == "__main__":
    if "--child" in sys.argv:
        sys.exit(_child_main(sys.argv[1:]))
    print(json.dumps(measure(runs=int(os.environ.get("BENCH_RUNS", "5"))), indent=2))

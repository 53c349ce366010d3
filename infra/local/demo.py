"""`make demo` / `python main.py demo`: Rampart's main job, end to end, offline, on real parts.

Starts the Pub/Sub and Firestore emulators, the Cloud Run / KMS stand-in seeded with a demo
project, the functions-framework server running main.py, a Slack-webhook receiver and an
SMTP server; creates the audit topic and a push subscription to the function; then someone
opens doors and the audit entries arrive. It prints what was detected and done as it happens,
the alerts received, the final live state, and the time from publish to remediation. Every
process it started is stopped on every way out: at the end, on Ctrl-C, on SIGTERM or SIGHUP
(a `kill`, a closed terminal, a CI timeout), and on failure. The logs of every process are in
.local/demo/ (or $RAMPART_DEMO_DIR), and the demo says so.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from infra.local import scenario
from infra.local.stack import LocalStack, wait_until


@dataclass
class StepResult:
    name: str
    rule: str
    closed: bool
    seconds: float
    outcome: str
    expected: str
    state: str


@dataclass
class DemoReport:
    steps: list[StepResult] = field(default_factory=list)
    redelivery_writes: int = -1
    poison_acknowledged: bool = False
    slack: int = 0
    email: int = 0
    pubsub_alerts: int = 0
    noise_records: int = 0
    sweep_closed: dict[str, bool] = field(default_factory=dict)  # resource -> closed by the sweep

    @property
    def ok(self) -> bool:
        return (
            all(s.closed and s.outcome == s.expected for s in self.steps)
            and self.redelivery_writes == 0
            and self.poison_acknowledged
            and self.noise_records == 0
            and bool(self.sweep_closed) and all(self.sweep_closed.values())
        )


def _records_for(stack: LocalStack, rule: str) -> list[dict[str, Any]]:
    return [r for r in stack.records() if r.get("rule") == rule]


def run_scenario(stack: LocalStack, out: TextIO, timeout: float = 30.0) -> DemoReport:
    """Play the scenario against a started stack, printing as it goes."""
    report = DemoReport()

    def say(line: str = "") -> None:
        out.write(line + "\n")
        out.flush()

    say("▶ ordinary admin activity (noise): 4 entries")
    for entry in scenario.noise():
        stack.publish(entry)

    for step in scenario.steps():
        entry = step.open_door(stack)
        say(f"▶ {step.name}: {step.resource.split('/', 4)[-1]} by {scenario.DEVELOPER}")
        t0 = time.perf_counter()
        stack.publish(entry)
        try:
            wait_until(lambda s=step: s.compliant(stack), timeout, what=f"{step.rule} remediated")
            closed = True
        except TimeoutError:
            closed = False
        seconds = time.perf_counter() - t0
        recs = wait_until(lambda s=step: _records_for(stack, s.rule), 10, what=f"{step.rule} record") if closed else _records_for(stack, step.rule)
        outcome = recs[-1]["outcome"] if recs else "(no record)"
        state = step.describe(stack)
        mark = "✔" if closed and outcome == step.expected_outcome else "✘"
        say(f"  {mark} {step.rule}: {outcome} in {seconds * 1000:.0f} ms from publish; live: {state}")
        if recs and recs[-1].get("undo"):
            say(f"    undo: {recs[-1]['undo']}")
        report.steps.append(StepResult(step.name, step.rule, closed, seconds, outcome, step.expected_outcome, state))

    # A redelivered message: the same entry again changes nothing.
    say("▶ the first entry again (a redelivery)")
    stack.admin.clear_requests()
    stack.publish(scenario.replace_service_v1("patient-api", ingress="all"))
    before = len(stack.records())
    wait_until(lambda: len(stack.records()) > before, 10, what="redelivered entry handled")
    report.redelivery_writes = len([r for r in stack.admin.requests() if r["method"] in ("PATCH", "POST") and not r["path"].startswith("/_")
                                    and ":getIamPolicy" not in r["path"]])
    last = stack.records()[-1]
    say(f"  ✔ {last['rule']}: {last['outcome']} (live state re-read; {report.redelivery_writes} writes)")

    say("▶ a poison message (not an audit entry)")
    stack.publish(b"\x00not json{")
    try:
        wait_until(lambda: stack.log_lines("rampart.bad_input"), 10, what="poison message logged")
        report.poison_acknowledged = True
        reason = stack.log_lines("rampart.bad_input")[-1].get("reason", "")
        say(f"  ✔ acknowledged and logged: {reason}")
    except TimeoutError:
        say("  ✘ the poison message was not logged")

    report.noise_records = len([r for r in stack.records() if r.get("resource", "").endswith(("etl-1", "new-sa", "demo-exports"))])

    if stack.slack is not None:
        time.sleep(0.5)
        report.slack = len(stack.slack.posts)
        report.email = len(stack.smtp.mails)
        report.pubsub_alerts = len(stack.alert_messages(timeout=1.0))
        say("")
        say(f"Alerts received: Slack {report.slack}, email {report.email}, Pub/Sub {report.pubsub_alerts}")
        for post in stack.slack.posts:
            say(f"  slack: {post.body.get('text', '')[:110]}")
        for mail in stack.smtp.mails:
            say(f"  email: {mail.message['Subject']}")
    say("")
    say("Final live state:")
    for step in scenario.steps():
        say(f"  {step.resource.split('/', 4)[-1]:<62} {step.describe(stack)}")
    times = sorted(s.seconds * 1000 for s in report.steps)
    if times:
        say("")
        say(f"Publish → remediated: median {times[len(times) // 2]:.0f} ms, max {times[-1]:.0f} ms over {len(times)} violations")
    return report


# Doors open before Rampart was deployed: no audit entry will ever mention them.
LEGACY = f"{scenario.SVC}/legacy-portal"
REPORTS = f"{scenario.SVC}/reports-api"


def sweep_seed(path: Any) -> Any:
    """The demo project's seed plus two services that were non-compliant before Rampart started."""
    import json

    from infra.local.stack import SEED

    seed = json.loads(SEED.read_text())
    base = seed["services"][0]
    seed["services"] += [
        {**base, "name": LEGACY, "description": "Old partner portal, deployed by hand in 2023.",
         "ingress": "INGRESS_TRAFFIC_ALL", "labels": {"env": "demo", "team": "partners"}},
        {**base, "name": REPORTS, "description": "Reports API.", "invokerIamDisabled": True,
         "labels": {"env": "demo", "team": "reports"}},
    ]
    seed["policies"][LEGACY] = {"bindings": [{"role": "roles/run.invoker", "members": ["allUsers"]}]}
    path.write_text(json.dumps(seed))
    return path


def run_sweep_act(stack: LocalStack, out: TextIO, report: DemoReport, timeout: float = 120.0) -> None:
    """The posture sweep: doors opened before Rampart started and while its function was down are
    found and closed by one sweep, planned and judged by the rampart_sweep workers."""
    from shared.sweep.report import summary

    def say(line: str = "") -> None:
        out.write(line + "\n")
        out.flush()

    say("")
    say("▶ posture sweep: doors that no audit entry will ever mention")
    say(f"  open since before Rampart: {LEGACY.rsplit('/', 1)[1]} (ingress all, allUsers invoker), "
        f"{REPORTS.rsplit('/', 1)[1]} (invoker IAM check off)")
    stack.functions[0].stop()
    stack.admin.mutate(f"{scenario.SVC}/patient-api", patch={"ingress": "INGRESS_TRAFFIC_ALL"}, actor=scenario.DEVELOPER)
    say("  the function is stopped; meanwhile patient-api's ingress is opened again (its audit entry never arrives)")
    stack.start_function(0)
    slack_before = len(stack.slack.posts) if stack.slack is not None else 0
    t0 = time.perf_counter()
    sweep_id = stack.request_sweep()
    say(f"  function back; the daily Cloud Scheduler job publishes a sweep request (sweep {sweep_id})")
    rep = stack.wait_sweep(sweep_id, timeout=timeout)
    say(f"  sweep done in {time.perf_counter() - t0:.1f}s:")
    import io

    text = io.StringIO()
    summary(rep, text)
    for line in text.getvalue().splitlines():
        say("    " + line)
    legacy, reports, patient = stack.get(LEGACY), stack.get(REPORTS), stack.get(f"{scenario.SVC}/patient-api")
    legacy_invokers = [m for b in stack.iam(LEGACY).get("bindings", []) for m in b.get("members", [])]
    report.sweep_closed = {
        "legacy-portal ingress": legacy.get("ingress") == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
        "legacy-portal allUsers": "allUsers" not in legacy_invokers,
        "reports-api invoker IAM check": legacy is not None and not reports.get("invokerIamDisabled"),
        "patient-api ingress": patient.get("ingress") == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    }
    for what, closed in report.sweep_closed.items():
        say(f"  {'✔' if closed else '✘'} {what}: {'closed' if closed else 'STILL OPEN'}")
    if stack.slack is not None:
        time.sleep(0.5)
        for post in stack.slack.posts[slack_before:]:
            say(f"  slack: {post.body.get('text', '')[:110]}")
        if not any("patient-api" in p.body.get("text", "") for p in stack.slack.posts[slack_before:]):
            say("  (patient-api reopened within the alert window of its first incident: a repeat, counted, not re-alerted)")


class Stopped(BaseException):
    """A termination signal arrived: unwind so that `finally` stops every process."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _signals_unwind() -> Iterator[None]:
    """SIGTERM and SIGHUP raise Stopped (by default they end Python without running `finally`,
    which left the emulators, stand-in and function running in their own sessions)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, _frame: object) -> None:
        raise Stopped(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def logs_dir() -> Path:
    from infra.local.stack import ROOT

    return Path(os.environ.get("RAMPART_DEMO_DIR") or ROOT / ".local" / "demo")


def main(keep_going: bool = False, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    with _signals_unwind():
        return _main(keep_going, out)


def _main(keep_going: bool, out: TextIO) -> int:
    logs = logs_dir()
    out.write("Starting the local stack (Pub/Sub + Firestore emulators, stand-in API, function, receivers)...\n")
    out.write(f"Logs of every process: {logs}\n")
    out.flush()
    shutil.rmtree(logs, ignore_errors=True)
    logs.mkdir(parents=True, exist_ok=True)
    # One sweep worker; the demo lets the sweep enforce (the shipped default is dry-run).
    stack = LocalStack(logs, sweep_workers=1, seed=sweep_seed(logs / "seed.json"),
                       policy_overrides={"sweep": {"max_mode": "enforce"}})
    try:
        stack.start()
        out.write(f"  Pub/Sub emulator {stack.pubsub.host}, Firestore emulator {stack.firestore.host}, "
                  f"stand-in {stack.standin_url}, function http://127.0.0.1:{stack.function_ports[0]}, "
                  f"Slack receiver :{stack.slack.port}, SMTP :{stack.smtp.port}\n\n")
        report = run_scenario(stack, out)
        run_sweep_act(stack, out, report)
        out.write("\n" + ("Demo passed: every door closed." if report.ok else "Demo FAILED: see above.") + "\n")
        if keep_going:
            out.write(f"Stack left running; Ctrl-C (or kill {os.getpid()}) stops it. Logs: {logs}\n")
            out.flush()
            while True:
                time.sleep(3600)
        return 0 if report.ok else 1
    except KeyboardInterrupt:
        out.write("\nInterrupted.\n")
        return 130
    except Stopped as stopped:
        out.write(f"\nStopped by {signal.Signals(stopped.signum).name}.\n")
        return 128 + stopped.signum
    except Exception as exc:  # noqa: BLE001 — say what failed and where the logs are, then stop everything
        out.write(f"\nDemo failed: {type(exc).__name__}: {exc}\n")
        out.write(f"Logs of every process are in {logs}\n")
        return 1
    finally:
        # A second signal while stopping must not cut the stop short.
        with _signals_ignored():
            stack.stop()
        out.write(f"Stopped every process the demo started. Their logs are in {logs}\n")
        out.flush()


@contextmanager
def _signals_ignored() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())


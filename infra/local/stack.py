"""The whole local pipeline on loopback, as the demo, the end-to-end tests and the benchmarks use it.

    Pub/Sub emulator topic ──push subscription──▶ functions-framework server(s) running main.py
        ──real google-cloud clients──▶ Cloud Run / KMS stand-in
        ──alerts──▶ Slack-webhook receiver, SMTP receiver, Pub/Sub alert topic; dedupe in Firestore

Everything binds 127.0.0.1 on free ports, and `stop()` stops every process it started by PID
group, also after a failure (use it as a context manager).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

from infra.local.procs import LOOPBACK, Proc, free_port, port_open

ROOT = Path(__file__).resolve().parents[2]
SEED = ROOT / "infra" / "local" / "seed.example.json"
PROJECT = "demo-project"
AUDIT_TOPIC = "rampart-audit-logs"
ALERT_TOPIC = "rampart-alerts"
DLQ_TOPIC = "rampart-audit-logs-dlq"
ACTIONS_TOPIC = "rampart-actions"
SWEEP_TOPIC = "rampart-sweep"
SWEEP_DLQ_TOPIC = "rampart-sweep-dlq"
SWEEP_COLLECTION = "rampart_sweeps"
REMEDIATOR = "rampart-remediator@demo-project.iam.gserviceaccount.com"
PROJECT_NUMBER = "123456789012"  # infra/local/scenario.py PNUM


def _bin(name: str) -> str:
    """A console script of the running virtualenv (functions-framework)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"`{name}` is not installed in this environment: run `make venv` first")
    return found


class LocalStack:
    """Start the local pipeline; `publish()` audit entries into it; inspect live state and alerts."""

    def __init__(
        self,
        workdir: str | Path | None = None,
        *,
        functions: int = 1,
        firestore: bool = True,
        alerts: bool = True,
        policy_overrides: dict[str, Any] | None = None,
        ack_deadline: int = 20,
        min_backoff: int | None = None,
        max_backoff: int | None = None,
        max_delivery_attempts: int = 10,
        threads: int | None = None,
        sweep_workers: int = 0,
        sweep_max_delivery_attempts: int = 20,
        seed: str | Path | None = None,
        standin_log_size: int = 2000,
        policy_check_seconds: float | None = 0.0,
        split: bool = False,
    ) -> None:
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="rampart-stack-")
        self.workdir = Path(workdir or self._tmp.name)  # type: ignore[union-attr]
        self.workdir.mkdir(parents=True, exist_ok=True)
        # split: function 0 is the read-only detector on the audit topic; 1 and 2 the Cloud Run and
        # KMS writers on the actions topic (shared/split.py), as a split deployment runs them.
        self.split = split
        self.n_functions = 3 if split else functions
        self.use_firestore = firestore
        self.use_alerts = alerts
        self.policy_overrides = policy_overrides or {}
        self.ack_deadline = ack_deadline
        self.min_backoff, self.max_backoff = min_backoff, max_backoff
        self.max_delivery_attempts = max_delivery_attempts
        self.threads = threads
        self.n_sweep_workers = sweep_workers  # `rampart_sweep` instances behind one balancer
        # A shard whose alert waits for the record of the work (dedupe.settle_seconds) is redelivered
        # about once a second meanwhile: its budget is larger than the events'.
        self.sweep_max_delivery_attempts = sweep_max_delivery_attempts
        self.seed = Path(seed) if seed else SEED
        self.standin_log_size = standin_log_size  # the stand-in's request log (the bench counts API calls in it)
        self.sweep_workers: list[Proc] = []
        self.sweep_ports: list[int] = []
        self.balancer: Any = None
        # 0: the tests' policy edits take effect on the very next event; None: Rampart's default
        # interval (shared.config.DEFAULT_CHECK_SECONDS), as deployed.
        self.policy_check_seconds = policy_check_seconds
        self.pubsub: Any = None
        self.firestore: Any = None
        self.standin: Proc | None = None
        self.standin_url = ""
        self.admin: Any = None
        self.slack: Any = None
        self.smtp: Any = None
        self.functions: list[Proc] = []
        self.function_ports: list[int] = []
        self.dead_letter: Proc | None = None  # the rampart_dead_letter consumer
        self.dead_letter_port = 0
        self.alert_subscription = ""
        self.policy_path = self.workdir / "policy.yaml"
        self._publisher: Any = None
        self._firestore_client: Any = None
        self._started: list[Callable[[], None]] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        from infra.local.emulators import FirestoreEmulator, PubSubEmulator
        from infra.local.standin.client import StandinAdmin

        self.pubsub = PubSubEmulator(PROJECT, log_path=self.workdir / "pubsub-emulator.log").start()
        self._started.append(self.pubsub.stop)
        if self.use_firestore:
            self.firestore = FirestoreEmulator(log_path=self.workdir / "firestore-emulator.log").start()
            self._started.append(self.firestore.stop)

        port = free_port()
        self.standin = Proc(
            "stand-in",
            [sys.executable, "-m", "infra.local.standin", "--port", str(port), "--seed", str(self.seed),
             "--log-size", str(self.standin_log_size)],
            cwd=ROOT,
            log_path=self.workdir / "standin.log",
        ).start(ready=lambda: port_open(port), timeout=30)
        self._started.append(self.standin.stop)
        self.standin_url = f"http://{LOOPBACK}:{port}"
        self.admin = StandinAdmin(self.standin_url)

        if self.use_alerts:
            from infra.local.receivers import SlackReceiver, SmtpReceiver

            self.slack = SlackReceiver().start()
            self._started.append(self.slack.stop)
            self.smtp = SmtpReceiver().start()
            self._started.append(self.smtp.stop)

        self._write_policy()
        self._create_topics()
        self.start_dead_letter_consumer()  # first: its start must not hold up the functions' warm-up
        for i in range(self.n_functions):
            self.start_function(i)
        self._subscribe()
        if self.n_sweep_workers:
            self._start_sweep()

    def _create_topics(self) -> None:
        from infra.local.emulators import create_pull_subscription, create_topic

        if self.use_alerts:
            create_topic(self.pubsub.host, PROJECT, ALERT_TOPIC)
            self.alert_subscription = create_pull_subscription(self.pubsub.host, PROJECT, "rampart-alerts-pull", ALERT_TOPIC)
        create_topic(self.pubsub.host, PROJECT, AUDIT_TOPIC)
        if self.split:
            create_topic(self.pubsub.host, PROJECT, ACTIONS_TOPIC)
        create_topic(self.pubsub.host, PROJECT, DLQ_TOPIC)
        create_pull_subscription(self.pubsub.host, PROJECT, "rampart-dlq-pull", DLQ_TOPIC)
        if self.n_sweep_workers:
            create_topic(self.pubsub.host, PROJECT, SWEEP_TOPIC)
            create_topic(self.pubsub.host, PROJECT, SWEEP_DLQ_TOPIC)
            create_pull_subscription(self.pubsub.host, PROJECT, "rampart-sweep-dlq-pull", SWEEP_DLQ_TOPIC)

    def restart_pubsub(self) -> None:
        """Stop the Pub/Sub emulator and start it again on its port, then create the topics and
        subscriptions again (it keeps them in memory only; a deployment's survive an outage).
        Messages not yet delivered or pulled are gone. The function instances keep running."""
        self.pubsub.down()
        self.pubsub.up()
        self._create_topics()
        self._subscribe()

    def _subscribe(self) -> None:
        from infra.local.emulators import create_push_subscription

        # No retry policy unless asked for: the emulator (0.8.20) given one stops redelivering a
        # nacked message after 2-3 attempts whenever another message of the subscription is also
        # waiting for a retry (neither delivered nor dead-lettered: lost). Without one it
        # redelivers about every second, and the dead-letter policy still bounds the attempts.
        # One subscription shared by every function instance would need a load balancer in front;
        # the emulator pushes to one endpoint, so with several instances each gets its own
        # subscription on the same topic: every message reaches every instance, the harshest
        # duplicate delivery there is.
        # The dead-letter topic's consumer (rampart_dead_letter), as deploy.sh sets it up: what
        # Rampart never finished handling reaches a human. No dead-letter policy of its own.
        create_push_subscription(
            self.pubsub.host, PROJECT, "rampart-dead-letter-push", DLQ_TOPIC,
            f"http://{LOOPBACK}:{self.dead_letter_port}/projects/{PROJECT}/topics/{DLQ_TOPIC}",
            ack_deadline=self.ack_deadline,
        )
        for i, port in enumerate(self.function_ports):
            topic = ACTIONS_TOPIC if self.split and i > 0 else AUDIT_TOPIC
            create_push_subscription(
                self.pubsub.host,
                PROJECT,
                f"rampart-push-{i}",
                topic,
                f"http://{LOOPBACK}:{port}/projects/{PROJECT}/topics/{topic}",
                ack_deadline=self.ack_deadline,
                min_backoff_seconds=self.min_backoff,
                max_backoff_seconds=self.max_backoff,
                dead_letter_topic=DLQ_TOPIC,
                max_delivery_attempts=self.max_delivery_attempts,
            )

    def identity(self, i: int) -> str:
        """Function `i`'s part in a split stack ("" when one function does everything)."""
        return ("detect", "act-run", "act-kms")[i] if self.split else ""

    # -- the posture sweep (rampart_sweep workers) -----------------------------------------------

    def _start_sweep(self) -> None:
        from infra.local.balancer import Balancer
        from infra.local.emulators import create_push_subscription

        for i in range(self.n_sweep_workers):
            self.start_sweep_worker(i)
        self.balancer = Balancer([f"http://{LOOPBACK}:{p}" for p in self.sweep_ports]).start()
        self._started.append(self.balancer.stop)
        create_push_subscription(
            self.pubsub.host, PROJECT, "rampart-sweep-push", SWEEP_TOPIC,
            f"{self.balancer.url}/projects/{PROJECT}/topics/{SWEEP_TOPIC}",
            ack_deadline=120, dead_letter_topic=SWEEP_DLQ_TOPIC, max_delivery_attempts=self.sweep_max_delivery_attempts,
        )

    def start_sweep_worker(self, i: int) -> Proc:
        """Start (or restart) sweep worker `i` (functions-framework --target rampart_sweep)."""
        if i < len(self.sweep_ports):
            port = self.sweep_ports[i]
        else:
            port = free_port()
            self.sweep_ports.append(port)
        env = {**self.function_env(), "RAMPART_ASSET_ENDPOINT": self.standin_url}
        proc = Proc(
            f"sweep-{i}",
            [_bin("functions-framework"), "--target", "rampart_sweep", "--source", str(ROOT / "main.py"),
             "--signature-type", "cloudevent", "--host", LOOPBACK, "--port", str(port)],
            env=env, cwd=ROOT, log_path=self.sweep_log(i),
        ).start(ready=lambda: port_open(port), timeout=60)
        if i < len(self.sweep_workers):
            self.sweep_workers[i] = proc
        else:
            self.sweep_workers.append(proc)
        return proc

    def sweep_log(self, i: int = 0) -> Path:
        return self.workdir / f"sweep-{i}.log"

    def request_sweep(self, scopes: list[str] | None = None, sweep_id: str | None = None) -> str:
        """Publish a sweep request as the Cloud Scheduler job does; returns the sweep's id."""
        body: dict[str, Any] = {"type": "rampart.sweep.request"}
        if scopes:
            body["scopes"] = scopes
        if sweep_id:
            body["sweep_id"] = sweep_id
        if self._publisher is None:
            from infra.local.emulators import publisher

            self._publisher = publisher(self.pubsub.host)
        mid = str(self._publisher.publish(f"projects/{PROJECT}/topics/{SWEEP_TOPIC}", json.dumps(body).encode(),
                                          type="rampart.sweep.request").result(timeout=30))
        return sweep_id or mid

    def sweep_report(self, sweep_id: str) -> Any:
        """The sweep's report as its progress in Firestore has it (None before the planner starts)."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import firestore

        from shared.sweep.progress import FirestoreProgress

        if self._firestore_client is None:
            # The client reads the emulator's address from the environment when it is built: set it for
            # that moment only, so this process (and what it starts later) keeps its own environment.
            previous = os.environ.get("FIRESTORE_EMULATOR_HOST")
            os.environ["FIRESTORE_EMULATOR_HOST"] = self.firestore.host
            try:
                self._firestore_client = firestore.Client(project=PROJECT, credentials=AnonymousCredentials())
            finally:
                if previous is None:
                    os.environ.pop("FIRESTORE_EMULATOR_HOST", None)
                else:
                    os.environ["FIRESTORE_EMULATOR_HOST"] = previous
        return FirestoreProgress(SWEEP_COLLECTION, client=self._firestore_client).report(sweep_id)

    def wait_sweep(self, sweep_id: str, timeout: float = 120.0) -> Any:
        """Wait until the sweep is planned and every shard is done (or dead-lettered: then time out)."""
        return wait_until(lambda: (r := self.sweep_report(sweep_id)) is not None and r.plan_done
                          and r.shards_done >= r.shards_total and r, timeout, interval=0.2, what=f"sweep {sweep_id} done")

    def sweep_records(self) -> list[dict[str, Any]]:
        """Remediation records the sweep workers logged."""
        out = []
        for n in range(len(self.sweep_ports)):
            path = self.sweep_log(n)
            if path.exists():
                for line in path.read_text(errors="replace").splitlines():
                    if '"rampart.remediation"' in line:
                        try:
                            out.append(json.loads(line).get("rampart", {}))
                        except json.JSONDecodeError:
                            pass
        return out

    def function_env(self, i: int = 0) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RAMPART_", "PUBSUB_", "FIRESTORE_"))}
        env.update(
            {
                "RAMPART_POLICY": str(self.policy_path),
                "RAMPART_RUN_ENDPOINT": self.standin_url,
                "RAMPART_KMS_ENDPOINT": self.standin_url,
                "RAMPART_FUNCTIONS_ENDPOINT": self.standin_url,
                "RAMPART_RESOURCE_MANAGER_ENDPOINT": self.standin_url,
                "RAMPART_LOGGING_ENDPOINT": self.standin_url,
                "RAMPART_ORGPOLICY_ENDPOINT": self.standin_url,
                # What deploy.sh sets: Rampart's own account, exactly (the shipped policy ignores nobody).
                "RAMPART_OWN_PRINCIPALS": REMEDIATOR,
                "PUBSUB_EMULATOR_HOST": self.pubsub.host,
                "GOOGLE_CLOUD_PROJECT": PROJECT,
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                "RAMPART_MAX_DELIVERY_ATTEMPTS": str(self.max_delivery_attempts),
            }
        )
        if self.firestore is not None:
            env["FIRESTORE_EMULATOR_HOST"] = self.firestore.host
        if self.identity(i):
            env["RAMPART_IDENTITY"] = self.identity(i)
            env["RAMPART_ACTIONS_TOPIC"] = f"projects/{PROJECT}/topics/{ACTIONS_TOPIC}"
        if self.threads:
            env["THREADS"] = str(self.threads)
        if self.policy_check_seconds is not None:
            env["RAMPART_POLICY_CHECK_SECONDS"] = str(self.policy_check_seconds)
        return env

    def start_function(self, i: int) -> Proc:
        """Start (or restart) function instance `i` on its port."""
        if i < len(self.function_ports):
            port = self.function_ports[i]
        else:
            port = free_port()
            self.function_ports.append(port)
        proc = Proc(
            f"function-{i}",
            [_bin("functions-framework"), "--target", "rampart_act" if self.identity(i).startswith("act") else "rampart",
             "--source", str(ROOT / "main.py"), "--signature-type", "cloudevent", "--host", LOOPBACK, "--port", str(port)],
            env=self.function_env(i),
            cwd=ROOT,
            log_path=self.function_log(i),
        ).start(ready=lambda: port_open(port), timeout=60)
        if i < len(self.functions):
            self.functions[i] = proc
        else:
            self.functions.append(proc)
        return proc

    def start_dead_letter_consumer(self) -> Proc:
        """Start (or restart) the dead-letter consumer, the `rampart_dead_letter` entry point."""
        if not self.dead_letter_port:
            self.dead_letter_port = free_port()
        port = self.dead_letter_port
        if self.dead_letter is not None:
            self.dead_letter.stop()
        self.dead_letter = Proc(
            "dead-letter",
            [_bin("functions-framework"), "--target", "rampart_dead_letter", "--source", str(ROOT / "main.py"),
             "--signature-type", "cloudevent", "--host", LOOPBACK, "--port", str(port)],
            env=self.function_env(),
            cwd=ROOT,
            log_path=self.dead_letter_log(),
        ).start(ready=lambda: port_open(port), timeout=60)
        return self.dead_letter

    def dead_letter_log(self) -> Path:
        return self.workdir / "dead-letter.log"

    def function_log(self, i: int = 0) -> Path:
        return self.workdir / f"function-{i}.log"

    def kill_function(self, i: int = 0) -> None:
        """SIGKILL function instance `i`, as a crash would."""
        self.functions[i].kill()

    def stop(self) -> None:
        for proc in self.functions + self.sweep_workers:
            proc.stop()
        self.functions = []
        self.sweep_workers = []
        if self.dead_letter is not None:
            self.dead_letter.stop()
            self.dead_letter = None
        while self._started:
            stop = self._started.pop()
            try:
                stop()
            except Exception as exc:  # noqa: BLE001 — keep stopping the rest; report what failed
                sys.stderr.write(f"local stack: stopping {stop!r} failed: {exc}\n")
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- policy -------------------------------------------------------------------------------

    def _write_policy(self) -> None:
        import yaml

        policy = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text())
        # The demo organization: its people and its project's service accounts are insiders, and its
        # project's service agents (named by the project number) may be put back on its keys.
        policy["trusted_domains"] = [f"{PROJECT}.example"]
        policy["trusted_projects"] = [PROJECT, PROJECT_NUMBER]
        if self.use_alerts:
            secrets = self.workdir / "secrets"
            secrets.mkdir(exist_ok=True)
            webhook = secrets / "slack-webhook"
            webhook.write_text(self.slack.url + "\n")
            webhook.chmod(0o600)
            policy["alerts"] = {
                # The local receiver's host, allowed explicitly: the default allows hooks.slack.com only.
                "slack": {"webhook_url_file": str(webhook), "allowed_hosts": [LOOPBACK]},
                "email": {
                    "host": LOOPBACK,
                    "port": self.smtp.port,
                    "security": "none",
                    "sender": "rampart@demo-project.example",
                    "recipients": ["oncall@demo-project.example"],
                },
                "pubsub": {"topic": f"projects/{PROJECT}/topics/{ALERT_TOPIC}"},
                "retry": {"retries": 2, "backoff_seconds": 0.05, "max_backoff_seconds": 0.2},
                "dedupe": {"store": "firestore" if self.firestore is not None else "memory"},
            }
        if self.n_sweep_workers:
            policy["sweep"] = {"scopes": [f"projects/{PROJECT}"], "topic": f"projects/{PROJECT}/topics/{SWEEP_TOPIC}",
                               "progress_collection": SWEEP_COLLECTION, "qps": 6, "page_size": 50}
        deep_merge(policy, self.policy_overrides)
        self.write_policy(policy)

    def write_policy(self, policy: dict[str, Any] | str) -> None:
        """Replace the function's policy file (it takes effect on the next event)."""
        import yaml

        text = policy if isinstance(policy, str) else yaml.safe_dump(policy, sort_keys=False)
        tmp = self.policy_path.with_suffix(".tmp")
        tmp.write_text(text)
        os.replace(tmp, self.policy_path)

    # -- traffic ------------------------------------------------------------------------------

    def publish(self, entry: dict[str, Any] | bytes, *, attributes: dict[str, str] | None = None,
                logged: bool = True) -> str:
        """Publish a LogEntry to the audit topic the way a log sink does; returns the message id.
        `logged=False` publishes an entry Cloud Logging never held: a forged delivery."""
        if self._publisher is None:
            from infra.local.emulators import publisher

            self._publisher = publisher(self.pubsub.host)
        data = entry if isinstance(entry, bytes) else json.dumps(entry, separators=(",", ":")).encode()
        if isinstance(entry, dict) and logged:
            # Cloud Logging holds every entry its sink forwards: Rampart may look it up there.
            self.admin.log_entries([entry])
        attrs = attributes or {"logging.googleapis.com/timestamp": _now()}
        future = self._publisher.publish(f"projects/{PROJECT}/topics/{AUDIT_TOPIC}", data, **attrs)
        return str(future.result(timeout=30))

    # -- live state and what came out ---------------------------------------------------------

    def get(self, name: str) -> dict[str, Any]:
        """A resource's live state from the stand-in (GET through its REST surface)."""
        version = "v1" if "/keyRings/" in name else "v2"
        return self._get(f"/{version}/{name}")

    def iam(self, name: str) -> dict[str, Any]:
        version = "v1" if "/keyRings/" in name else "v2"
        return self._get(f"/{version}/{name}:getIamPolicy?options.requestedPolicyVersion=3")

    def _get(self, path: str) -> dict[str, Any]:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(self.standin_url + path, timeout=10) as resp:
            return json.loads(resp.read())

    def records(self) -> list[dict[str, Any]]:
        """Remediation records the function(s) logged (the `rampart` payload of each)."""
        return [entry.get("rampart", entry) for entry in self.log_lines("rampart.remediation")]

    def log_lines(self, message: str) -> list[dict[str, Any]]:
        out = []
        for path in [*(self.function_log(n) for n in range(self.n_functions)), self.dead_letter_log()]:
            if not path.exists():
                continue
            for line in path.read_text(errors="replace").splitlines():
                if f'"{message}"' in line:
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
        return out

    def alert_messages(self, timeout: float = 2.0) -> list[dict[str, Any]]:
        from infra.local.emulators import pull

        return [json.loads(m.data) for m in pull(self.pubsub.host, self.alert_subscription, max_messages=100, timeout=timeout)]


def wait_until(cond: Callable[[], Any], timeout: float, interval: float = 0.01, what: str = "condition") -> Any:
    """Poll `cond` until it is truthy; return its value, or raise TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = cond()
        except (urllib.error.URLError, OSError, KeyError):
            value = None
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.1f}s")
        time.sleep(interval)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1e6) % 1_000_000:06d}Z"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> None:
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            deep_merge(base[k], v)
        else:
            base[k] = v

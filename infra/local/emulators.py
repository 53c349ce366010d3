"""The Pub/Sub and Firestore emulators on loopback, and Pub/Sub topics/subscriptions on them.

Each emulator is a gcloud Python wrapper with a Java child, started through
`Proc` in its own process group on a free 127.0.0.1 port and stopped by group.
A missing gcloud, emulator component or Java is an error that says how to
install it: tests never skip because of it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Self

from infra.local.procs import LOOPBACK, Proc, free_port, http_ok

INSTALL_HINT = (
    "install the Google Cloud CLI, its emulators and Java 17 (Debian, with Google's apt repository "
    "packages.cloud.google.com/apt configured): apt-get install google-cloud-cli "
    "google-cloud-cli-pubsub-emulator google-cloud-cli-firestore-emulator openjdk-17-jre-headless "
    "(a tarball install of gcloud: gcloud components install pubsub-emulator cloud-firestore-emulator)"
)


class EmulatorMissing(RuntimeError):
    """gcloud, an emulator component or Java is not installed."""


def _sdk_root(gcloud: str) -> Path:
    # /usr/bin/gcloud is a symlink into <sdk>/bin/gcloud; components live in <sdk>/platform/.
    return Path(gcloud).resolve().parent.parent


def component_problem(component_dir: str, what: str) -> str | None:
    """What is missing for the `what` (gcloud, Java, or `platform/<component_dir>`), or None."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return f"expected the gcloud CLI on PATH for the {what}; found none"
    if shutil.which("java") is None:
        return f"expected Java (17 or newer) on PATH for the {what}; found none"
    # Only the platform/ of the SDK whose gcloud will run: another SDK's components are no use to it.
    platform = _sdk_root(gcloud) / "platform"
    if not (platform / component_dir).is_dir():
        return f"expected the {what} in {platform / component_dir}; found no such directory"
    return None


def require_component(component_dir: str, what: str) -> str:
    """The gcloud path, once gcloud, Java and `platform/<component_dir>` are all present."""
    problem = component_problem(component_dir, what)
    if problem is not None:
        raise EmulatorMissing(f"{problem}: {INSTALL_HINT}")
    return str(shutil.which("gcloud"))


def _wait_group_gone(pgid: int, timeout: float = 15.0) -> None:
    """Wait until no process is left in group `pgid`: SIGKILL is asynchronous and the Java child holds the port."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return  # the id was reused by someone else's group: ours is gone
        time.sleep(0.02)
    raise RuntimeError(f"expected process group {pgid} to be gone {timeout:.0f}s after SIGKILL; found it alive")


class _Emulator:
    """Common start/stop for a gcloud emulator bound to 127.0.0.1:PORT."""

    name = ""
    component_dir = ""
    env_var = ""

    def __init__(self, *, port: int | None = None, log_path: str | Path | None = None) -> None:
        self.port = port or free_port()
        # Default log and data live in a temporary directory removed by stop().
        self._tmp: tempfile.TemporaryDirectory[str] | None = tempfile.TemporaryDirectory(
            prefix=f"rampart-{self.component_dir}-"
        )
        self.workdir = Path(self._tmp.name)
        self.log_path = Path(log_path) if log_path is not None else self.workdir / "emulator.log"
        self.proc: Proc | None = None

    @property
    def host(self) -> str:
        """127.0.0.1:PORT, the value of the emulator's environment variable."""
        return f"{LOOPBACK}:{self.port}"

    def env(self) -> dict[str, str]:
        """The environment variable that points client libraries at this emulator."""
        return {self.env_var: self.host}

    def command(self, gcloud: str) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 90.0) -> Self:
        """Start and wait until `GET /` answers (about 3 s here)."""
        gcloud = require_component(self.component_dir, self.name)
        self.proc = Proc(self.name, self.command(gcloud), log_path=self.log_path)
        atexit.register(self.stop)  # a crashed test session still stops the Java child
        try:
            self.proc.start(ready=lambda: http_ok(f"http://{self.host}/"), timeout=timeout)
        except BaseException:
            try:
                self.stop()  # the wrapper may have died and left its Java child in the group
            except Exception as exc:  # noqa: BLE001 — the first error (or the signal) is the one to report
                sys.stderr.write(f"{self.name}: stopping after a failed start also failed: {exc}\n")
            raise
        return self

    def down(self) -> None:
        """Stop the process group (wrapper and Java child) but keep the port and directory, so
        `up()` brings the emulator back where clients look for it: an outage. The emulators keep
        their state in memory only, so what comes back is empty."""
        if self.proc is not None:
            pgid = self.proc.pid
            self.proc.stop()
            self.proc = None
            if pgid is not None:
                _wait_group_gone(pgid)

    def up(self, timeout: float = 90.0) -> Self:
        """Start again on the same port after `down()`."""
        if self.proc is None:
            self.start(timeout)
        return self

    def stop(self) -> None:
        """Stop the whole process group (wrapper and Java child) and remove the directory."""
        self.down()
        atexit.unregister(self.stop)
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PubSubEmulator(_Emulator):
    """`gcloud beta emulators pubsub start` on 127.0.0.1:PORT for one project."""

    name = "Pub/Sub emulator"
    component_dir = "pubsub-emulator"
    env_var = "PUBSUB_EMULATOR_HOST"

    def __init__(
        self,
        project: str = "rampart-local",
        *,
        port: int | None = None,
        data_dir: str | Path | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        super().__init__(port=port, log_path=log_path)
        self.project = project
        self.data_dir = Path(data_dir) if data_dir is not None else self.workdir / "data"

    def command(self, gcloud: str) -> list[str]:
        self.data_dir.mkdir(parents=True, exist_ok=True)  # the emulator refuses a missing --data-dir
        return [
            gcloud, "beta", "emulators", "pubsub", "start",
            f"--host-port={self.host}", f"--project={self.project}", f"--data-dir={self.data_dir}",
        ]  # fmt: skip


class FirestoreEmulator(_Emulator):
    """`gcloud beta emulators firestore start` (native mode) on 127.0.0.1:PORT."""

    name = "Firestore emulator"
    component_dir = "cloud-firestore-emulator"
    env_var = "FIRESTORE_EMULATOR_HOST"

    def command(self, gcloud: str) -> list[str]:
        return [gcloud, "beta", "emulators", "firestore", "start", f"--host-port={self.host}"]


# ---- Pub/Sub admin helpers (real clients, insecure channel to the emulator) ------------------------


def publisher(host: str) -> Any:
    """A pubsub_v1.PublisherClient talking to the emulator at `host`, whatever os.environ says."""
    import grpc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport

    return pubsub_v1.PublisherClient(transport=PublisherGrpcTransport(channel=grpc.insecure_channel(host)))


def subscriber(host: str) -> Any:
    """A pubsub_v1.SubscriberClient talking to the emulator at `host`, whatever os.environ says."""
    import grpc
    from google.cloud import pubsub_v1
    from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

    return pubsub_v1.SubscriberClient(transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(host)))


def create_topic(host: str, project: str, topic: str) -> str:
    """Create `projects/P/topics/T` (names need 3+ characters) and return its path."""
    path = f"projects/{project}/topics/{topic}"
    publisher(host).create_topic(request={"name": path})
    return path


def create_pull_subscription(host: str, project: str, name: str, topic: str, *, ack_deadline: int = 10) -> str:
    """A pull subscription on `topic` (a name or a path); returns its path."""
    path = f"projects/{project}/subscriptions/{name}"
    subscriber(host).create_subscription(
        request={"name": path, "topic": _topic_path(project, topic), "ack_deadline_seconds": ack_deadline}
    )
    return path


def create_push_subscription(
    host: str,
    project: str,
    name: str,
    topic: str,
    push_endpoint: str,
    *,
    ack_deadline: int = 10,
    min_backoff_seconds: int | None = None,
    max_backoff_seconds: int | None = None,
    dead_letter_topic: str | None = None,
    max_delivery_attempts: int = 5,
) -> str:
    """A push subscription with ack deadline, optional retry policy and dead-letter policy; returns its path."""
    path = f"projects/{project}/subscriptions/{name}"
    request: dict[str, Any] = {
        "name": path,
        "topic": _topic_path(project, topic),
        "push_config": {"push_endpoint": push_endpoint},
        "ack_deadline_seconds": ack_deadline,
    }
    if min_backoff_seconds is not None or max_backoff_seconds is not None:
        request["retry_policy"] = {
            "minimum_backoff": {"seconds": min_backoff_seconds if min_backoff_seconds is not None else 10},
            "maximum_backoff": {"seconds": max_backoff_seconds if max_backoff_seconds is not None else 600},
        }
    if dead_letter_topic is not None:
        request["dead_letter_policy"] = {
            "dead_letter_topic": _topic_path(project, dead_letter_topic),
            "max_delivery_attempts": max_delivery_attempts,
        }
    subscriber(host).create_subscription(request=request)
    return path


def pull(host: str, subscription: str, *, max_messages: int = 10, timeout: float = 10.0) -> list[Any]:
    """Pull up to `max_messages` (waiting at most `timeout`), ack them, return the PubsubMessages."""
    sub = subscriber(host)
    deadline = time.monotonic() + timeout
    while True:
        resp = sub.pull(request={"subscription": subscription, "max_messages": max_messages}, timeout=timeout)
        if resp.received_messages or time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    if resp.received_messages:
        sub.acknowledge(request={"subscription": subscription, "ack_ids": [m.ack_id for m in resp.received_messages]})
    return [m.message for m in resp.received_messages]


def _topic_path(project: str, topic: str) -> str:
    return topic if topic.startswith("projects/") else f"projects/{project}/topics/{topic}"

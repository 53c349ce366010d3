"""Start and stop the local stack's processes on loopback, by PID, always.

Every server the demo or a test starts goes through `Proc`: it runs in its own
process group (the Pub/Sub emulator is a Python wrapper with a Java child), it is
reachable only on 127.0.0.1, and `stop()` kills the whole group.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Self

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def http_ok(url: str, timeout: float = 0.5) -> bool:
    """True when `url` (a loopback URL) answers with a 2xx status."""
    if not url.startswith(f"http://{LOOPBACK}:"):
        raise ValueError(f"expected a loopback URL http://{LOOPBACK}:PORT/..., found {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except (urllib.error.URLError, OSError, http.client.HTTPException):
        # HTTPException: seen from the Pub/Sub emulator while it starts, its port answering
        # HTTP/1 with an HTTP/2 error ("Unexpected HTTP/1.x request: GET /"): not ready yet.
        return False


def port_open(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=timeout):
            return True
    except OSError:
        return False


class Proc:
    """A child process in its own process group, stopped (group and all) by `stop()`."""

    def __init__(
        self,
        name: str,
        cmd: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.name = name
        self.cmd = list(cmd)
        self.env = env
        self.cwd = cwd
        self.log_path = Path(log_path) if log_path else None
        self.popen: subprocess.Popen[bytes] | None = None
        self._log = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self, ready: Callable[[], bool] | None = None, timeout: float = 30.0) -> Proc:
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(self.log_path, "ab")  # noqa: SIM115 (closed in stop)
        out = self._log if self._log else subprocess.DEVNULL
        self.popen = subprocess.Popen(
            self.cmd,
            env=self.env,
            cwd=self.cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        if ready is not None:
            try:
                self.wait_ready(ready, timeout)
            except BaseException:
                # Not ready, or interrupted (Ctrl-C, SIGTERM) while waiting: nobody else holds this
                # process yet, so stop it here or it outlives us in its own session. A failure to
                # stop must not replace the first error (or the signal the caller unwinds on).
                try:
                    self.stop()
                except Exception as exc:  # noqa: BLE001
                    sys.stderr.write(f"{self.name}: stopping after a failed start also failed: {exc}\n")
                raise
        return self

    def wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with code {self.popen.returncode} before it was ready"
                    f"{self._tail()}"
                )
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} was not ready after {timeout:.0f}s{self._tail()}")

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the whole process group: SIGTERM, then SIGKILL after `timeout`."""
        p = self.popen
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=5)
        if p is not None:
            # Children that outlived the leader (a Java emulator) still hold the group id.
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if self._log:
            self._log.close()
            self._log = None

    def kill(self) -> None:
        """SIGKILL the group at once, as a crash would (for fault tests)."""
        if self.popen is not None and self.popen.poll() is None:
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=5)

    def _tail(self, n: int = 20) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        lines = self.log_path.read_text(errors="replace").splitlines()[-n:]
        return "\n--- last lines of " + str(self.log_path) + " ---\n" + "\n".join(lines)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

"""`python main.py demo`, stopped the ways a user stops it: every process it started must go.

A user's `demo --keep-going` stopped with SIGTERM once left 8 processes running (emulators, the
stand-in, the function), each in its own session. Leaks are found by the demo's unique log
directory, which every process it starts carries in its environment or command line.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.helpers import ROOT


def _carrying(marker: str) -> list[tuple[int, str]]:
    """Live processes whose environment or command line names `marker` (our demo's directory)."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit() or int(d.name) == os.getpid():
            continue
        try:
            blob = (d / "environ").read_bytes() + (d / "cmdline").read_bytes()
            state = (d / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in blob and state != "Z":
            found.append((int(d.name), (d / "cmdline").read_bytes().replace(b"\0", b" ")[:120].decode(errors="replace")))
    return found


def _start_demo(logs: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "RAMPART_DEMO_DIR": str(logs), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "main.py", "demo", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _read_until(proc: subprocess.Popen[str], text: str, timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip("\n"))
        if text in line:
            return lines
    raise AssertionError(f"{text!r} not printed within {timeout:.0f}s: {lines[-20:]}")


def _stop_and_collect(proc: subprocess.Popen[str], sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out


def _kill_leftovers(marker: str) -> None:
    for pid, _ in _carrying(marker):
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def test_demo_keep_going_stopped_by_sigterm_leaves_no_process(tmp_path) -> None:
    logs = tmp_path / "demo-logs"
    proc = _start_demo(logs, "--keep-going")
    try:
        lines = _read_until(proc, "Stack left running", timeout=400)
        assert any(f"Logs of every process: {logs}" in ln for ln in lines), lines
        running = _carrying(str(logs))
        assert len(running) >= 4, running  # emulators (+ Java children), stand-in, function
        rc, out = _stop_and_collect(proc, signal.SIGTERM)
        time.sleep(0.5)
        left = _carrying(str(logs))
    finally:
        if proc.poll() is None:
            proc.kill()
        _kill_leftovers(str(logs))
    assert left == [], left
    assert rc == 128 + signal.SIGTERM, (rc, out)
    assert "Stopped by SIGTERM" in out and f"Their logs are in {logs}" in out
    assert (logs / "function-0.log").exists()


def test_demo_stopped_by_sigterm_while_starting_leaves_no_process(tmp_path) -> None:
    logs = tmp_path / "demo-logs"
    proc = _start_demo(logs)
    try:
        _read_until(proc, "Logs of every process", timeout=60)
        # Wait until something is running, then stop it mid-start.
        deadline = time.monotonic() + 60
        while not _carrying(str(logs)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _carrying(str(logs)), "nothing started"
        rc, out = _stop_and_collect(proc, signal.SIGTERM)
        time.sleep(0.5)
        left = _carrying(str(logs))
    finally:
        if proc.poll() is None:
            proc.kill()
        _kill_leftovers(str(logs))
    assert left == [], left
    assert rc == 128 + signal.SIGTERM, (rc, out)
    assert "Stopped every process the demo started" in out

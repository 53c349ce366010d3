"""Fixtures for the Cloud Run / KMS stand-in (the package infra/local/standin/).

`standin_proc` runs one stand-in subprocess per test session (started and stopped through
`infra.local.procs.Proc`); `standin` gives each test a reset stand-in, points
RAMPART_RUN_ENDPOINT / RAMPART_KMS_ENDPOINT at it and drops cached clients.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.local.procs import Proc, http_ok
from infra.local.standin.client import StandinAdmin
from infra.local.standin.seeding import load_seed
from shared import clients

ROOT = Path(__file__).resolve().parents[2]
SEED_EXAMPLE = ROOT / "infra" / "local" / "seed.example.json"


@dataclass
class StandinProc:
    """The running stand-in subprocess: where it listens and how to administer it."""

    url: str
    port: int
    admin: StandinAdmin
    proc: Proc
    log: Path


@dataclass
class Standin:
    """A reset stand-in that the client factory already points at."""

    url: str
    port: int
    admin: StandinAdmin

    def seed_example(self) -> dict[str, Any]:
        """Load infra/local/seed.example.json (the demo project)."""
        return self.admin.seed(load_seed(SEED_EXAMPLE))


def _tail(log: Path, lines: int = 20) -> str:
    text = log.read_text(errors="replace") if log.exists() else ""
    return f"\n--- last lines of {log} ---\n" + "\n".join(text.splitlines()[-lines:])


def _read_port(port_file: Path, proc: Proc, log: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if not proc.alive():
            break
        time.sleep(0.02)
    proc.stop()
    raise RuntimeError(f"stand-in did not report its port in {port_file} within {timeout:.0f}s"
                       f"{_tail(log)}")


@pytest.fixture(scope="session")
def standin_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StandinProc]:
    """One `python -m infra.local.standin` per session, on a port the OS picks (no race)."""
    workdir = tmp_path_factory.mktemp("standin")
    port_file = workdir / "port"
    log = workdir / "standin.log"
    proc = Proc(
        "standin",
        [sys.executable, "-m", "infra.local.standin", "--port", "0", "--port-file", str(port_file)],
        cwd=ROOT,
        log_path=log,
    )
    proc.start()
    try:
        port = _read_port(port_file, proc, log, timeout=15)
        url = f"http://127.0.0.1:{port}"
        proc.wait_ready(lambda: http_ok(f"{url}/_standin/health"), timeout=15)
        yield StandinProc(url=url, port=port, admin=StandinAdmin(url), proc=proc, log=log)
    finally:
        proc.stop()


@pytest.fixture
def standin(standin_proc: StandinProc, monkeypatch: pytest.MonkeyPatch) -> Iterator[Standin]:
    """A stand-in with empty state, no faults and an empty request log; clients point at it."""
    if not standin_proc.proc.alive():
        raise RuntimeError(f"the stand-in subprocess died{_tail(standin_proc.log)}")
    standin_proc.admin.reset()
    monkeypatch.setenv(clients.RUN_ENDPOINT_ENV, standin_proc.url)
    monkeypatch.setenv(clients.KMS_ENDPOINT_ENV, standin_proc.url)
    monkeypatch.setenv(clients.FUNCTIONS_ENDPOINT_ENV, standin_proc.url)
    monkeypatch.setenv(clients.RESOURCE_MANAGER_ENDPOINT_ENV, standin_proc.url)
    monkeypatch.setenv(clients.LOGGING_ENDPOINT_ENV, standin_proc.url)
    monkeypatch.setenv(clients.ORGPOLICY_ENDPOINT_ENV, standin_proc.url)
    clients.reset()
    try:
        yield Standin(url=standin_proc.url, port=standin_proc.port, admin=standin_proc.admin)
    finally:
        clients.reset()


def proto_enum_paths(descriptor: Any) -> dict[str, dict[int, str]]:
    """Every enum field reachable from a message descriptor, by JSON path, with its values.

    Tests compare this with the stand-in's hand-copied tables, so a client library upgrade that
    adds an enum field or value fails loudly instead of answering 400 to a valid request.
    """
    from google.protobuf.descriptor import FieldDescriptor

    out: dict[str, dict[int, str]] = {}

    def walk(d: Any, prefix: str, seen: tuple[str, ...]) -> None:
        for f in d.fields:
            path = prefix + f.json_name
            if f.type == FieldDescriptor.TYPE_ENUM:
                out[path] = {v.number: v.name for v in f.enum_type.values}
            elif f.type == FieldDescriptor.TYPE_MESSAGE and not f.message_type.GetOptions().map_entry:
                mt = f.message_type
                if mt.full_name.startswith("google.protobuf.") or mt.full_name in seen:
                    continue
                walk(mt, path + ".", (*seen, mt.full_name))

    walk(descriptor, "", (descriptor.full_name,))
    return out

"""What every benchmark shares: the machine description, percentiles, and target checks."""

from __future__ import annotations

import datetime as dt
import os
import platform
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _cpuinfo() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mem_total_mib() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return 0


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, Any]:
    """The machine a figure was measured on, and how busy it was when the run started."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    return {
        "cpu_model": _cpuinfo(),
        "cores": os.cpu_count() or 0,
        "cores_usable": usable,
        "memory_mib": _mem_total_mib(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "os": f"{platform.system()} {platform.release()}",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100), linear between the two nearest ranks; nan when empty."""
    if not values:
        return float("nan")
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (k - lo))


def summary(values: Sequence[float], digits: int = 1) -> dict[str, float | int]:
    """n, min, p50, p95, p99, max and mean of `values`, rounded."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": round(min(values), digits),
        "p50": round(percentile(values, 50), digits),
        "p95": round(percentile(values, 95), digits),
        "p99": round(percentile(values, 99), digits),
        "max": round(max(values), digits),
        "mean": round(statistics.fmean(values), digits),
    }


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


@dataclass
class Target:
    """One figure checked against its goal: `value <op> goal`."""

    name: str
    value: float
    goal: float
    unit: str
    op: str = "<="  # "<=" or ">=" or "<"
    note: str = ""

    @property
    def met(self) -> bool:
        if self.value != self.value:  # nan: not measured
            return False
        if self.op == "<=":
            return self.value <= self.goal
        if self.op == "<":
            return self.value < self.goal
        return self.value >= self.goal

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}

    def line(self) -> str:
        mark = "met   " if self.met else "MISSED"
        return f"  [{mark}] {self.name}: {fmt(self.value)} {self.unit} (target {self.op} {fmt(self.goal)} {self.unit})" + (
            f"  {self.note}" if self.note else ""
        )


def fmt(x: float) -> str:
    if x != x:
        return "n/a"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def vm_status(pid: int) -> dict[str, int]:
    """VmHWM / VmRSS of a process in KiB, from /proc (empty once it is gone)."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmHWM:", "VmRSS:")):
                key, value = line.split(":", 1)
                out[key] = int(value.split()[0])
    except OSError:
        pass
    return out


def children(pid: int) -> list[int]:
    """Direct children of `pid` (gunicorn's worker under the functions-framework arbiter)."""
    kids: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            text = (task / "children").read_text().split()
            kids.extend(int(x) for x in text)
    except OSError:
        pass
    return kids


def new_lines(path: Path, pos: int) -> tuple[list[bytes], int]:
    """The complete lines `path` gained after byte `pos`, and the position after the last of them
    (a line still being written is left for the next call). A missing file has none yet."""
    if not path.exists():
        return [], pos
    with open(path, "rb") as f:
        f.seek(pos)
        chunk = f.read()
    end = chunk.rfind(b"\n") + 1
    return chunk[:end].splitlines(), pos + end

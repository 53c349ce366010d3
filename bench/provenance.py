"""Which commit a recorded figure describes, and whether the code it describes has changed since.

Every results file (bench/results.json, tests/reliability/results.json, bench/mutate_results.json)
names the commit it was measured at and whether the core (shared/, functions/, main.py) had
uncommitted changes then. `python -m bench.provenance` says, for each, whether the core has
changed between that commit and the working tree, i.e. whether the figure is stale.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORE = ("shared", "functions", "main.py")
RESULTS = {
    "performance": ROOT / "bench" / "results.json",
    "reliability": ROOT / "tests" / "reliability" / "results.json",
    "mutation": ROOT / "bench" / "mutate_results.json",
}


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)


def measured_at() -> dict[str, Any]:
    """For a results file being written now: the commit, and whether the core differs from it."""
    commit = _git("rev-parse", "--short", "HEAD").stdout.strip()
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no", "--", *CORE).stdout.strip())
    return {"commit": commit, "core_uncommitted_changes": dirty}


def recorded(data: dict[str, Any]) -> dict[str, Any]:
    """The provenance a results file carries (bench's older files keep it under `machine`)."""
    if "provenance" in data:
        return data["provenance"]
    m = data.get("machine", {})
    return {"commit": m.get("git_commit", ""), "core_uncommitted_changes": m.get("uncommitted_changes", False)}


def oldest(commits: list[str]) -> str:
    """The commit, among `commits`, that is an ancestor of the others ('' for none)."""
    found = ""
    for c in commits:
        if not found or (c != found and _git("merge-base", "--is-ancestor", c, found).returncode == 0):
            found = c
    return found


def core_changed_since(commit: str) -> bool:
    """Whether shared/, functions/ or main.py differ between `commit` and the working tree."""
    if _git("cat-file", "-e", f"{commit}^{{commit}}").returncode != 0:
        raise ValueError(f"commit {commit!r} is not in this repository's history")
    return _git("diff", "--quiet", commit, "--", *CORE).returncode != 0


def modules_changed_since(data: dict[str, Any]) -> list[str]:
    """The counted modules of a mutation results file whose code differs from the commit each was
    measured at (that file is measured module by module, so the core as a whole may move on)."""
    return [m for m in data.get("scope", {}).get("measured", [])
            if _git("diff", "--quiet", data["modules"][m]["commit"], "--", m).returncode != 0]


def main() -> int:
    for name, path in RESULTS.items():
        data = json.loads(path.read_text())
        prov = recorded(data)
        if name == "mutation":
            changed = modules_changed_since(data)
            state = (f"{len(changed)} of its modules changed since: re-measure {', '.join(changed)}" if changed
                     else "every counted module unchanged since the commit it was measured at")
            print(f"{name}: {path.relative_to(ROOT)}, modules measured at {prov['commit']} or later ({state})")
            continue
        if "sections" in prov:  # merged runs: each section names the commit it was measured at
            changed = sorted(k for k, c in prov["sections"].items() if core_changed_since(c))
            state = (f"core changed since for {', '.join(changed)}: re-measure those" if changed
                     else "core unchanged since for every section")
            print(f"{name}: {path.relative_to(ROOT)}, sections measured at {prov['commit']} or later ({state})")
            continue
        stale = core_changed_since(prov["commit"]) or prov["core_uncommitted_changes"]
        state = "core changed since: re-measure" if stale else "core unchanged since"
        print(f"{name}: {path.relative_to(ROOT)} at commit {prov['commit']} ({state})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

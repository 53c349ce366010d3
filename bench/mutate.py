"""`make mutate`: mutation testing of the core with mutmut, as a measured figure (not a gate).

mutmut (settings in setup.cfg) copies the tree to mutants/, makes small changes to the core
(event intake shared/event.py, rules functions/ and shared/rules.py, decision shared/pipeline.py,
views and actions shared/views/ and shared/actions/, dedupe shared/alerts/dedupe.py, config
shared/config.py) and runs, for each, the fast tests that cover the
changed function. A mutant the tests pass on survived; one no test reaches has "no tests" (a
survivor too: nothing would notice it). This writes bench/mutate_results.json: counts per module,
the killed share, the commit, and every survivor's name (`mutmut show NAME` prints its diff).

    python -m bench.mutate               # run mutmut (about 70 minutes on a shared 2-core machine), then collect
    python -m bench.mutate --collect     # only collect what the last run left in mutants/
    python -m bench.mutate --readme      # the README's block, from bench/mutate_results.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from bench.provenance import ROOT, measured_at

RESULTS = ROOT / "bench" / "mutate_results.json"
MUTANTS = ROOT / "mutants"
# mutmut's exit codes per mutant (mutmut/stats.py); anything else is "suspicious".
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no_tests", 33: "no_tests", 34: "skipped",
          36: "timeout", 24: "timeout", -24: "timeout", 152: "timeout", 255: "timeout",
          37: "caught_by_type_check", -11: "segfault", -9: "segfault", None: "not_checked"}
NOT_KILLED = ("survived", "no_tests")


def run_mutmut(children: int) -> int:
    return subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(children)], cwd=ROOT).returncode


def collect(fill_from: Path | None = None, *, partial: bool = False) -> dict[str, Any]:
    """Counts and survivors from the .meta files mutmut left in mutants/. With `fill_from` (a copy
    of an earlier full run's mutants/), a mutant this run did not check takes that run's verdict:
    for a run restricted to named mutants (the earlier survivors, against tests added since)."""
    metas = sorted(MUTANTS.rglob("*.py.meta"))
    if not metas:
        raise FileNotFoundError(f"no mutmut results under {MUTANTS}: run `make mutate` first")
    modules: dict[str, dict[str, Any]] = {}
    survivors: dict[str, list[str]] = {}
    for meta in metas:
        module = meta.relative_to(MUTANTS).as_posix().removesuffix(".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"]
        if fill_from is not None:
            earlier = json.loads((fill_from / meta.relative_to(MUTANTS)).read_text())["exit_code_by_key"]
            codes = {k: earlier.get(k) if code is None else code for k, code in codes.items()}
        if not codes:
            continue
        counts = Counter(STATUS.get(code, "suspicious") for code in codes.values())
        modules[module] = dict(sorted(counts.items()))
        survivors[module] = sorted(k for k, code in codes.items() if STATUS.get(code, "suspicious") in NOT_KILLED)
    totals: Counter[str] = Counter()
    for counts in modules.values():
        totals.update(counts)
    if totals["not_checked"] and not partial:
        raise RuntimeError(f"{totals['not_checked']} mutants were never run: the mutmut run did not finish (--partial counts the rest)")
    not_checked = totals.pop("not_checked", 0)
    for counts in modules.values():
        counts.pop("not_checked", None)
    unreached = sorted(m for m, counts in modules.items() if not counts)
    modules = {m: counts for m, counts in modules.items() if counts}
    total = sum(totals.values())
    return {
        "command": "make mutate (mutmut run over the core; settings in setup.cfg)",
        "tool": f"mutmut {_version()}",
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "provenance": measured_at(),
        "totals": dict(sorted(totals.items())),
        "mutants": total,
        "not_checked": not_checked,  # a run stopped before the end (--partial): not in any figure
        "modules_not_checked": unreached,
        "killed_percent": round(100 * (totals["killed"] + totals["timeout"]) / total, 1),
        "modules": modules,
        "definitions": {
            "killed": "a test failed with the mutant in place",
            "timeout": "the tests ran over 15x their usual time with the mutant (an infinite loop, say): counted as killed",
            "survived": "every test covering the mutated function passed with the mutant in place",
            "no_tests": "no test of the selection calls the mutated function: a survivor nothing would notice",
            "killed_percent": "(killed + timeout) / all mutants checked",
            "not_checked": "mutants generated but not run before the run was stopped (--partial); counted nowhere else",
        },
        "survivors": survivors,
    }


def _version() -> str:
    from importlib.metadata import version

    return version("mutmut")


def summary(data: dict[str, Any]) -> str:
    t = data["totals"]
    text = (f"{data['killed_percent']}% of {data['mutants']:,} mutants killed ({t.get('killed', 0):,} killed, "
            f"{t.get('timeout', 0):,} timed out, {t.get('survived', 0):,} survived, {t.get('no_tests', 0):,} reached by no test)")
    if data.get("not_checked"):
        text += f"; the run was stopped with {data['not_checked']:,} mutants not yet checked"
    return text


def render(data: dict[str, Any]) -> str:
    """The README's mutation block (tests/test_readme.py checks the README carries exactly this)."""
    prov = data["provenance"]
    rows = [f"`make mutate` ({data['tool']}) at commit {prov['commit']}: **{summary(data)}**.", "",
            "| module | mutants | killed | survived | reached by no test | killed % |", "|---|---|---|---|---|---|"]
    for module, c in data["modules"].items():
        n = sum(c.values())
        killed = c.get("killed", 0) + c.get("timeout", 0)
        rows.append(f"| `{module}` | {n:,} | {killed:,} | {c.get('survived', 0):,} | {c.get('no_tests', 0):,} | {100 * killed / n:.1f} |")
    if data.get("modules_not_checked"):
        rows += ["", "Not reached before the run was stopped: " + ", ".join(f"`{m}`" for m in data["modules_not_checked"]) + "."]
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--collect", action="store_true", help="only collect the last run's results from mutants/")
    p.add_argument("--max-children", type=int, default=2)
    p.add_argument("--commit", help="with --collect: the commit the collected run was made at (default: HEAD)")
    p.add_argument("--fill-from", type=Path, help="with --collect: an earlier full run's mutants/ copy, for the mutants this run skipped")
    p.add_argument("--partial", action="store_true", help="with --collect: count a run stopped before the end (say so)")
    p.add_argument("--readme", action="store_true", help="print the README's mutation block from the results file")
    a = p.parse_args(argv)
    if a.readme:
        sys.stdout.write(render(json.loads(RESULTS.read_text())))
        return 0
    if not a.collect:
        rc = run_mutmut(a.max_children)
        if rc not in (0, 1):  # mutmut exits 1 when a mutant survived
            print(f"mutmut run failed ({rc})", file=sys.stderr)
            return rc
    data = collect(a.fill_from, partial=a.partial)
    if a.commit:
        data["provenance"] = {"commit": a.commit, "core_uncommitted_changes": False,
                              "note": "collected later from the run made at this commit (make mutate --collect --commit)"}
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    print(summary(data))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

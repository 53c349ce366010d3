"""The README is the front door: its rule table and commands must match the code."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.helpers import ROOT

README = (ROOT / "README.md").read_text()


def test_rule_table_is_generated_from_the_code() -> None:
    table = subprocess.run(
        [sys.executable, "main.py", "rules", "--markdown"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    start = README.index("<!-- rules:start -->\n") + len("<!-- rules:start -->\n")
    end = README.index("<!-- rules:end -->")
    assert README[start:end] == table, "README rule table is stale: paste `python main.py rules --markdown`"


def test_test_command_is_what_ci_runs() -> None:
    assert "make test" in README
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert "make demo" in README


def test_every_cli_command_is_documented() -> None:
    from shared.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert f"`{name}" in README, f"README does not document `python main.py {name}`"


def test_reliability_table_is_the_last_soak() -> None:
    from tests.reliability.report import RESULTS, render

    start = README.index("<!-- reliability:start -->\n") + len("<!-- reliability:start -->\n")
    end = README.index("<!-- reliability:end -->")
    table = render(json.loads(RESULTS.read_text()))
    assert README[start:end] == table, "README reliability table is stale: paste `python -m tests.reliability.report`"
    assert json.loads(RESULTS.read_text())["run"] == "soak"

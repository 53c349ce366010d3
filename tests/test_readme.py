"""The README is the front door: its rule table and commands must match the code."""

from __future__ import annotations

import json
import re
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


def _guide_commands() -> list[str]:
    start = README.index("### The deploy guide")
    end = README.index("\n## ", start)
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", README[start:end], flags=re.S):
        text = re.sub(r"\\\n\s*", "", block)  # join continued lines
        commands += [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return commands


def test_the_deploy_guide_runs_as_written_in_dry_run(tmp_path) -> None:
    """Each command of README "The deploy guide", after step 1's policy edit (alert channels),
    in a copy of the repository: deploy.sh commands carry --dry-run; gcloud is a stand-in that
    serves `logging read` from the example export and fails anything else (nothing may call it)."""
    import os
    import shutil

    from tests.test_deploy import ALERTS_POLICY, copy_source

    commands = _guide_commands()
    assert any(c.startswith("./deploy.sh") and "--stage dry-run" in c for c in commands)
    for needed in ("--stage alert", "--stage enforce", "--uninstall", "policy push", "replay -", "check-config"):
        assert any(needed in c for c in commands), f"the guide has no `{needed}` step"
    src = copy_source(tmp_path / "src")
    shutil.copytree(ROOT / "examples", src / "examples")
    (src / ".venv").symlink_to(ROOT / ".venv")
    # Step 1: the operator adds alert channels to the policy.
    (src / "config" / "policy.yaml").write_text(ALERTS_POLICY.replace("rampart-prod", "my-rampart-prod"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "gcloud-calls"
    (bin_dir / "gcloud").write_text(
        "#!/bin/sh\n"
        f'echo "$@" >> "{calls}"\n'
        f'case "$1 $2" in "logging read") cat "{src}/examples/audit-sample.jsonl"; exit 0 ;; esac\n'
        "exit 97\n"
    )
    (bin_dir / "gcloud").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    env.pop("RAMPART_WORK_DIR", None)
    env.pop("RAMPART_GCLOUD_LOCAL", None)
    for command in commands:
        if command.startswith("./deploy.sh"):
            assert "--dry-run" in command, f"a deploy.sh command in the guide without --dry-run: {command}"
        result = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=src, env=env, capture_output=True,
                                text=True, timeout=300, check=False)
        assert result.returncode == 0, (command, result.stdout[-2000:], result.stderr[-3000:])
    called = calls.read_text().splitlines() if calls.exists() else []
    assert all(c.startswith("logging read") for c in called), called


def test_every_rule_and_the_readme_cite_googles_documentation_not_seeds() -> None:
    import functions

    for r in functions.all_rules():
        assert re.search(r"\(https://cloud\.google\.com/[a-z0-9/_#-]+\)\.$", r.why), (r.id, r.why)
        assert "seed" not in r.why.lower(), r.id
    for doc in (README, (ROOT / "infra" / "README.md").read_text(), (ROOT / "config" / "policy.yaml").read_text()):
        assert not re.search(r"(?i)\bseed (0|§)|HIPAA seed|seed's", doc)

def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def _provenance(name: str) -> dict:
    from bench.provenance import RESULTS, recorded

    return recorded(json.loads(RESULTS[name].read_text()))


def test_performance_figures_name_the_commit_they_were_measured_at() -> None:
    commit = _provenance("performance")["commit"]
    assert commit and f"commit {commit}" in _section("Performance"), f"README's Performance section does not say commit {commit}"


def test_reliability_figures_name_the_commit_they_were_measured_at() -> None:
    commit = _provenance("reliability")["commit"]
    assert commit and f"commit {commit}" in _section("Reliability"), f"README's Reliability section does not say commit {commit}"


def test_mutation_block_is_the_last_make_mutate() -> None:
    from bench.mutate import RESULTS, render

    start = README.index("<!-- mutation:start -->\n") + len("<!-- mutation:start -->\n")
    end = README.index("<!-- mutation:end -->")
    assert README[start:end] == render(json.loads(RESULTS.read_text())), (
        "README mutation figures are stale: paste `python -m bench.mutate --readme`"
    )


def test_every_recorded_figure_names_a_commit_of_this_repository() -> None:
    from bench.provenance import RESULTS, core_changed_since

    for name in RESULTS:
        commit = _provenance(name)["commit"]
        assert isinstance(core_changed_since(commit), bool), name  # raises when the commit is unknown

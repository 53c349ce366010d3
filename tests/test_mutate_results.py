"""bench/mutate.py merges per-module mutmut runs honestly: a module counts only when every one of
its mutants was checked, an earlier measurement of a module changed since is stale, a module
never measured is listed, and the figure is computed over the measured, current modules only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import mutate


def _meta(root: Path, module: str, codes: dict[str, int | None]) -> None:
    path = root / f"{module}.meta"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"exit_code_by_key": codes}))


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(mutate, "MUTANTS", tmp_path)
    monkeypatch.setattr(mutate, "core_modules", lambda: ["shared/a.py", "shared/b.py", "shared/c.py"])
    monkeypatch.setattr(mutate, "EQUIVALENT", {"shared.a.x_f__mutmut_3": "changes nothing"})
    return tmp_path


def test_a_module_counts_only_when_every_mutant_was_checked(tree: Path) -> None:
    _meta(tree, "shared/a.py", {"shared.a.x_f__mutmut_1": 1, "shared.a.x_f__mutmut_2": 0, "shared.a.x_f__mutmut_3": 0,
                                "shared.a.x_f__mutmut_4": 33})
    _meta(tree, "shared/b.py", {"shared.b.x_g__mutmut_1": 1, "shared.b.x_g__mutmut_2": None})
    fresh = mutate.measured("abc1234", tests_dirty=False)
    assert list(fresh) == ["shared/a.py"]
    a = fresh["shared/a.py"]
    assert a["counts"] == {"equivalent": 1, "killed": 1, "no_tests": 1, "survived": 1} and a["mutants"] == 4
    assert a["survivors"] == ["shared.a.x_f__mutmut_2", "shared.a.x_f__mutmut_4"]
    assert a["equivalent"] == {"shared.a.x_f__mutmut_3": "changes nothing"} and a["commit"] == "abc1234"


def _entry(commit: str, **counts: int) -> dict[str, Any]:
    return {"commit": commit, "date": "d", "module_uncommitted_changes": False, "tests_uncommitted_changes": False,
            "mutants": sum(counts.values()), "counts": counts, "survivors": [], "equivalent": {}}


def test_the_figure_is_over_measured_current_modules_and_says_what_is_left_out(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mutate, "changed_since", lambda commit, path: path == "shared/b.py")
    monkeypatch.setattr(mutate.provenance, "oldest", lambda commits: min(commits, default=""))
    earlier = {"modules": {"shared/b.py": _entry("old0001", killed=1, survived=9),  # changed since: stale
                           "shared/gone.py": _entry("old0001", killed=5)}}  # no longer in the core
    fresh = {"shared/a.py": _entry("new0002", killed=9, timeout=1, survived=1, equivalent=1) | {"module_uncommitted_changes": False}}
    data = mutate.merge(earlier, fresh)
    assert data["scope"] == {"core_modules": 3, "measured": ["shared/a.py"], "stale": ["shared/b.py"],
                             "not_measured": ["shared/c.py"], "nothing_to_mutate": []}
    assert data["mutants"] == 12 and data["killed_percent"] == round(100 * 10 / 12, 1)
    assert data["explained_percent"] == round(100 * 11 / 12, 1)
    assert data["modules"]["shared/b.py"]["stale"] is True and "shared/gone.py" not in data["modules"]
    assert data["provenance"]["commit"] == "new0002"
    block = mutate.render(data)
    assert "| `shared/b.py` | old0001 (stale) |" in block
    assert "Not measured (1 of 3 core modules, not in the figure): `shared/c.py`." in block
    assert "in the 1 of 3 core modules measured" in block


def test_a_module_measured_with_uncommitted_changes_is_not_counted(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mutate, "changed_since", lambda commit, path: False)
    fresh = {"shared/a.py": _entry("new0002", killed=3) | {"module_uncommitted_changes": True}}
    data = mutate.merge({}, fresh)
    assert data["scope"]["stale"] == ["shared/a.py"] and data["mutants"] == 0 and data["killed_percent"] is None
    assert "no module measured" in mutate.render(data)


def test_results_from_other_clones_merge_module_by_module_the_newest_winning(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mutate, "changed_since", lambda commit, path: False)
    monkeypatch.setattr(mutate.provenance, "oldest", lambda commits: min(commits, default=""))
    here = {"modules": {"shared/a.py": _entry("aaa0001", killed=1, survived=1) | {"date": "2026-12-01T07:00:00Z"},
                        "shared/b.py": _entry("aaa0001", killed=2) | {"date": "2026-12-01T07:00:00Z"}}}
    clone_a = {"modules": {"shared/a.py": _entry("bbb0002", killed=2) | {"date": "2026-12-01T09:00:00Z"},
                           "shared/b.py": _entry("aaa0001", killed=2) | {"date": "2026-12-01T07:00:00Z"}}}
    clone_b = {"modules": {"shared/c.py": _entry("ccc0003", killed=3, survived=1) | {"date": "2026-12-01T09:30:00Z"},
                           "shared/a.py": _entry("old0000", survived=2) | {"date": "2026-12-01T06:00:00Z"}}}
    combined = mutate.newest(here, clone_a, clone_b)["modules"]
    assert {m: e["commit"] for m, e in combined.items()} == {"shared/a.py": "bbb0002", "shared/b.py": "aaa0001",
                                                              "shared/c.py": "ccc0003"}
    data = mutate.merge(mutate.newest(here, clone_a, clone_b), {})
    assert data["scope"]["measured"] == ["shared/a.py", "shared/b.py", "shared/c.py"] and data["mutants"] == 8
    assert data["killed_percent"] == round(100 * 7 / 8, 1)


def test_provenance_judges_a_mutation_figure_module_by_module() -> None:
    from bench.provenance import modules_changed_since

    head = mutate._git("rev-parse", "--short", "HEAD").stdout.strip()
    # shared/views/run.py changed after c19ba68 (issue 18's views work); nothing changes from HEAD.
    data = {"scope": {"measured": ["shared/views/run.py", "shared/rules.py"]},
            "modules": {"shared/views/run.py": {"commit": "c19ba68"}, "shared/rules.py": {"commit": head}}}
    assert modules_changed_since(data) == ["shared/views/run.py"]

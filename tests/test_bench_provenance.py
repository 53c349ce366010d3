"""A merged bench results file names, per section, the commit that section was measured at, and
its provenance is the oldest of them (a re-run of one section does not make the others current)."""

from __future__ import annotations

from typing import Any

from bench import run


def _machine(commit: str) -> dict[str, Any]:
    return {"git_commit": commit, "uncommitted_changes": False}


def test_each_section_of_a_merged_file_names_the_run_that_measured_it(monkeypatch: Any) -> None:
    import bench.provenance

    order = ["c0", "c1", "c2"]  # c0 oldest
    monkeypatch.setattr(bench.provenance, "oldest", lambda commits: min(commits, key=order.index))
    # c0 ran a, b, c; c1 re-ran b (kept a, c); c2 re-ran c (kept a, b).
    data = {"provenance": {"commit": "c2", "core_uncommitted_changes": False},
            "sections": {"a": {}, "b": {}, "c": {}},
            "merged_into": {"machine": _machine("c1"), "kept": ["a", "b"],
                            "earlier": {"machine": _machine("c0"), "kept": ["a", "c"], "earlier": None}}}
    out = run.section_provenance(data)
    assert {k: v["provenance"]["commit"] for k, v in out["sections"].items()} == {"a": "c0", "b": "c1", "c": "c2"}
    prov = run.oldest_provenance(out)
    assert prov["commit"] == "c0" and prov["sections"] == {"a": "c0", "b": "c1", "c": "c2"}
    # A section that already names its provenance keeps it.
    again = run.section_provenance({**data, "sections": {"a": {"provenance": {"commit": "c1", "core_uncommitted_changes": False}}}})
    assert again["sections"]["a"]["provenance"]["commit"] == "c1"

"""Small helpers shared by tests: fixture paths, corpus access, loaded policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# Real audit-log entries, copied into the repository (a clone has nothing beside it): their
# source and licence in PROVENANCE.tsv, what each must become in MANIFEST.tsv.
CORPUS_DIR = ROOT / "tests" / "data" / "corpus"
CORPUS = CORPUS_DIR / "events"
RULE_FIXTURES = ROOT / "tests" / "rules"


def corpus_files(*folders: str) -> list[Path]:
    """The corpus entries under `folders` (all if none). Never empty: a missing corpus is an
    error, not a test that quietly runs over nothing."""
    dirs = [CORPUS / f for f in folders] or [CORPUS]
    files = sorted(p for d in dirs for p in d.rglob("*.json"))
    if not files:
        raise FileNotFoundError(f"no corpus entries in {', '.join(map(str, dirs))}")
    return files


def load_json(path: Path) -> Any:
    return json.loads(path.read_text())


def default_policy() -> Any:
    from shared.config import load_policy

    return load_policy(ROOT / "config" / "policy.yaml")


def rule_fixtures() -> list[tuple[str, str, Path]]:
    """(rule id, positive|negative, path) for every fixture under tests/rules/<rule id>/."""
    out = []
    for folder in sorted(p for p in RULE_FIXTURES.iterdir() if p.is_dir() and not p.name.startswith("_")):
        for f in sorted(folder.glob("*.json")):
            out.append((folder.name, f.name.split("_", 1)[0], f))
    return out

"""Small helpers shared by tests: fixture paths, corpus access, loaded policies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpus" / "events"
RULE_FIXTURES = ROOT / "tests" / "rules"


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

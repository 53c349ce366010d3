"""One name per thing: a rule's id is its module name, its policy key and its test folder."""

from __future__ import annotations

import inspect
from pathlib import Path

import functions
from tests.helpers import ROOT, RULE_FIXTURES, default_policy


def test_id_is_module_name_and_folder_name() -> None:
    modules = sorted(p.stem for p in (ROOT / "functions").glob("*.py") if not p.stem.startswith("_"))
    folders = sorted(p.name for p in RULE_FIXTURES.iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert modules == sorted(functions.RULE_IDS)
    assert folders == sorted(functions.RULE_IDS)
    for rid in functions.RULE_IDS:
        r = functions.rule(rid)
        assert r.id == rid
        assert Path(inspect.getfile(r.check)).stem == rid


def test_shipped_policy_names_every_rule() -> None:
    assert sorted(default_policy().policy.rules) == sorted(functions.RULE_IDS)


def test_static_trigger_table_matches_rule_declarations() -> None:
    declared: dict[tuple[str, str], set[str]] = {}
    for r in functions.all_rules():
        for t in r.triggers:
            declared.setdefault(t, set()).add(r.id)
    assert {k: set(v) for k, v in functions.TRIGGERS.items()} == declared


def test_every_rule_documents_itself() -> None:
    for r in functions.all_rules():
        module = inspect.getmodule(r.check)
        assert module is not None and module.__doc__ and len(module.__doc__.strip()) > 20, r.id
        assert r.why, r.id
        assert r.action in r.actions, r.id
        for action in r.actions:
            if action.value != "alert":
                assert r.permissions.get(action.value), f"{r.id}: action {action.value} lists no IAM permissions"

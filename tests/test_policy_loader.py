"""The policy loader survives anything a person (or an intruder) writes into the file (issue 15 §4),
and regular expressions in it run on RE2 (§3)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from shared import log
from shared.config import ConfigError, PolicyStore, parse_policy
from shared.model import Mode
from tests.helpers import ROOT

SECRET = "https://hooks.slack.com/services/T000/B000/s3cr3tXYZ"


def errors(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "team.yaml")
    return str(info.value)


@pytest.mark.parametrize("text", ["", "\n\n", "# all rules\n# disabled for now\n", "---\n# nothing\n"])
def test_empty_or_comments_only_policy_is_an_error(text: str) -> None:
    assert errors(text) == "team.yaml: empty policy: the file has no settings (write at least `version: 1`)"


def test_empty_policy_keeps_the_last_good_one_in_force(tmp_path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text("rules: {run_ingress_open: {mode: alert}}\n")
    store = PolicyStore(path, check_seconds=0)
    assert store.current().settings("run_ingress_open").mode is Mode.ALERT
    path.write_text("# truncated upload\n")
    with log.captured() as out:
        loaded = store.current()
    assert loaded.settings("run_ingress_open").mode is Mode.ALERT
    assert "empty policy" in out.getvalue() and "rampart.policy_rejected" in out.getvalue()


def test_duplicate_keys_are_errors_with_path_and_lines() -> None:
    msg = errors("version: 1\nrules:\n  run_ingress_open: {mode: alert}\n  run_ingress_open: {mode: enforce}\n")
    assert "team.yaml: rules.run_ingress_open: duplicate key (lines 3 and 4)" in msg
    msg = errors("default_mode: alert\ndefault_mode: enforce\n")
    assert "default_mode: duplicate key (lines 1 and 2)" in msg


@pytest.mark.parametrize("word", ["off", "no", "false", "Off"])
def test_unquoted_off_gets_a_hint_to_quote_it(word: str) -> None:
    msg = errors(f"rules:\n  run_ingress_open:\n    mode: {word}\n")
    assert 'rules.run_ingress_open.mode: YAML reads an unquoted off' in msg and 'quote it, e.g. mode: "off"' in msg
    assert 'default_mode: "off"' in errors(f"default_mode: {word}\n")
    assert parse_policy('rules: {run_ingress_open: {mode: "off"}}').settings("run_ingress_open").mode is Mode.OFF


def test_unknown_rule_id_gets_did_you_mean() -> None:
    assert "unknown rule 'run_ingres_open': did you mean 'run_ingress_open'?" in errors("rules: {run_ingres_open: {}}\n")
    assert "unknown rule 'zzz': `python main.py rules` lists them" in errors("rules: {zzz: {}}\n")


def test_every_error_in_the_file_in_one_pass() -> None:
    msg = errors(
        "default_mode: off\n"
        "remediation: {max_attempts: 99}\n"
        "rules:\n"
        "  run_ingres_open: {mode: alert}\n"
        "  run_plaintext_secrets: {params: {value_patterns: ['(a)\\1']}}\n"
        "  kms_rotation: {params: {max_rotation_days: nope}}\n"
        "alerts: {retry: {retries: -1}}\n"
    )
    lines = msg.splitlines()
    assert all(line.startswith("team.yaml: ") for line in lines)
    for expected in ("default_mode:", "remediation.max_attempts:", "did you mean 'run_ingress_open'",
                     "rules.run_plaintext_secrets.params.value_patterns[0]: RE2 cannot use this pattern",
                     "rules.kms_rotation.params.max_rotation_days:", "alerts.retry.retries:"):
        assert any(expected in line for line in lines), (expected, msg)


def test_alias_bomb_is_refused_before_it_expands() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for i in range(1, 10):
        prev, cur = chr(96 + i), chr(97 + i)
        text += f"{cur}: &{cur} [{', '.join([f'*{prev}'] * 10)}]\n"
    t0 = time.perf_counter()
    msg = errors(text)
    assert time.perf_counter() - t0 < 1.0
    assert "expands to more than 100000 values" in msg


def test_too_many_aliases_and_recursive_alias_are_refused() -> None:
    text = "a: &a x\nb: [" + ", ".join(["*a"] * 300) + "]\n"
    assert "more than 200 aliases" in errors(text)
    assert "refers to its own anchor" in errors("a: &a [*a]\n")


def test_huge_document_is_refused_unread() -> None:
    msg = errors("version: 1\n" + "# " + "x" * (600 * 1024) + "\n")
    assert "over the 524288-byte limit" in msg and len(msg) < 200


def test_a_large_value_is_never_echoed() -> None:
    msg = errors("ignore_principals: " + "y" * 100_000 + "\napproved_regions: {" + ", ".join(f"k{i}: v" for i in range(5000)) + "}\n")
    assert len(msg) < 600, msg
    assert "y" * 100 not in msg


@pytest.mark.parametrize(
    "text",
    [
        f"alerts:\n  slack: {{webhook_url: '{SECRET}'}}\n",  # a misspelled key holding the secret itself
        f"alerts:\n  slack: {{webhook_url_file: ['{SECRET}']}}\n",
        f"alerts:\n  email: {{host: h, sender: a@b.example, recipients: [x@y.example], password_file: {{v: '{SECRET}'}}}}\n",
        f"alerts:\n  email: {{host: h, sender: a@b.example, recipients: [x@y.example], password: '{SECRET}'}}\n",
        f"rules:\n  run_ingress_open:\n    params: {{api_key: '{SECRET}'}}\n",
        f"rules:\n  run_ingress_open:\n    token: '{SECRET}'\n",
    ],
)
def test_secret_values_are_never_echoed(text: str) -> None:
    msg = errors(text)
    assert "s3cr3t" not in msg and "hooks.slack.com" not in msg, msg


def test_secret_like_path_shows_redacted() -> None:
    msg = errors("alerts:\n  slack: {webhook_url_file: 12345}\n")
    assert "alerts.slack.webhook_url_file:" in msg and "<redacted>" in msg and "12345" not in msg


def test_check_config_cli_reports_all_errors_without_secrets(tmp_path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"default_mode: off\nalerts:\n  slack: {{webhook: '{SECRET}'}}\nrules: {{run_ingres_open: {{}}}}\n")
    p = subprocess.run([sys.executable, "main.py", "check-config", str(bad)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120, check=False)
    assert p.returncode == 1
    assert "s3cr3t" not in p.stderr + p.stdout
    assert 'default_mode: "off"' in p.stderr and "did you mean 'run_ingress_open'" in p.stderr
    assert "alerts.slack.webhook: unknown key" in p.stderr


def test_patterns_re2_cannot_express_are_rejected_with_key_path() -> None:
    msg = errors("rules:\n  run_plaintext_secrets:\n    params: {name_patterns: [TOKEN, '(?<=x)PASS']}\n")
    assert "team.yaml: rules.run_plaintext_secrets.params.name_patterns[1]: RE2 cannot use this pattern" in msg
    assert "name_patterns[0]" not in msg


def test_shipped_patterns_compile_with_re2() -> None:
    from functions.run_plaintext_secrets import Params
    from shared.patterns import any_of, problems

    assert problems(Params().name_patterns, "n") == [] and problems(Params().value_patterns, "v") == []
    rx = any_of(Params().value_patterns)
    assert rx.search("postgres://u:pw@db/x") and not rx.search("plain value")
    rx = any_of(("(a+)+$",))
    t0 = time.perf_counter()
    assert rx.search("a" * 40 + "b") is None
    assert time.perf_counter() - t0 < 0.1

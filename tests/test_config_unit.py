"""shared/config.py one function at a time: validation messages, rule settings, exemptions, reloads.

Written against the mutants `make mutate` found surviving: each test pins one behaviour with a
hand-written expected value (the whole message, not a part of it: a message that names the wrong
key path, or a secret's value, is a bug too).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

import shared.config as config
from shared import log
from shared.config import ConfigError, Exemption, PolicyStore, exemption_for, load_policy, parse_policy
from shared.model import Mode

TODAY = dt.date(2026, 6, 1)
GOOD = "trusted_domains: [example.com]\nrules: {run_ingress_open: {mode: alert}}\n"
ENFORCE = "trusted_domains: [example.com]\nrules: {run_ingress_open: {mode: enforce}}\n"


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_policy(text, "p.yaml")
    return str(info.value).split("\n")


# --- exemption_for ----------------------------------------------------------------------------------------


def test_exemption_expiring_today_still_applies() -> None:
    loaded = parse_policy(
        "trusted_domains: [example.com]\n"
        "rules: {run_ingress_open: {exemptions: [{projects: [p-123456], owner: o, reason: r, expires: 2026-06-01}]}}")
    live, expired = exemption_for(loaded, loaded.settings("run_ingress_open"), "projects/p-123456/x", "p-123456", TODAY)
    assert live is not None and live.owner == "o"
    assert expired == []


def test_resource_exemption_covers_only_the_resources_it_names() -> None:
    loaded = parse_policy(
        "trusted_domains: [example.com]\nrules: {run_ingress_open: {exemptions: [{resources:"
        " [projects/p-123456/locations/*/services/bot], owner: o, reason: r, expires: 2099-01-01}]}}")
    s = loaded.settings("run_ingress_open")
    assert exemption_for(loaded, s, "projects/p-123456/locations/us-east1/services/web", "p-123456", TODAY) == (None, [])
    live, _ = exemption_for(loaded, s, "projects/p-123456/locations/us-east1/services/bot", "p-123456", TODAY)
    assert live is not None and live.owner == "o"


# --- _unknown_rule: the name shown at most 60 characters long ----------------------------------------------


def test_unknown_rule_of_60_characters_is_shown_whole() -> None:
    assert _problems("rules: {" + "z" * 60 + ": {}}") == [
        "p.yaml: rules: unknown rule '" + "z" * 60 + "': `python main.py rules` lists them"]


def test_unknown_rule_of_61_characters_is_cut_to_57_and_dots() -> None:
    assert _problems("rules: {" + "z" * 61 + ": {}}") == [
        "p.yaml: rules: unknown rule '" + "z" * 57 + "...': `python main.py rules` lists them"]


# --- _format_errors: the key path, what was expected, and what was found (never a secret) ------------------


def test_top_level_unknown_key_has_a_bare_path() -> None:
    assert _problems("colour: blue") == [
        "p.yaml: colour: unknown key (check the spelling against the policy reference in README.md)"]


def test_top_level_wrong_type_shows_the_size_of_a_container() -> None:
    assert _problems("rules: [1, 2]") == ["p.yaml: rules: Input should be a valid dictionary; found a list of 2 item(s)"]


def test_unquoted_on_for_a_mode_is_explained() -> None:
    assert _problems("rules: {run_ingress_open: {mode: on}}") == [
        'p.yaml: rules.run_ingress_open.mode: YAML reads an unquoted on (or no/yes, false/true) as true:'
        ' quote it, e.g. mode: "on"']


def test_unquoted_off_for_the_default_mode_is_explained() -> None:
    assert _problems("default_mode: off") == [
        'p.yaml: default_mode: YAML reads an unquoted off (or no/yes, false/true) as false:'
        ' quote it, e.g. default_mode: "off"']


def test_error_under_a_secret_like_key_shows_neither_message_nor_value() -> None:
    assert _problems("alerts: {slack: {webhook_url_file: 5}}") == [
        "p.yaml: alerts.slack.webhook_url_file: invalid value (string_type); found <redacted>"]


def test_error_of_a_model_check_has_the_top_level_path_and_no_prefix() -> None:
    with pytest.raises(ValidationError) as info:
        Exemption.model_validate({"owner": "o", "reason": "r", "expires": "2030-01-01"})
    assert config._format_errors(info.value) == ["(top level): an exemption must name resources, projects or folders"]


def test_error_of_a_model_check_under_a_prefix_is_the_prefix() -> None:
    with pytest.raises(ValidationError) as info:
        Exemption.model_validate({"owner": "o", "reason": "r", "expires": "2030-01-01"})
    assert config._format_errors(info.value, "rules.x.exemptions.0") == [
        "rules.x.exemptions.0: an exemption must name resources, projects or folders"]


# --- _section_errors: every rule's params checked even when the top level is wrong -------------------------


def test_every_rules_params_are_reported_beside_a_top_level_error() -> None:
    assert _problems(
        "rules: {run_ingress_open: 5, kms_rotation: {params: {max_rotation_days: many}},"
        " run_unapproved_region: {params: {approved_regions: 7}}}") == [
        "p.yaml: rules.run_ingress_open: Input should be a valid dictionary or instance of RuleConfig; found 5",
        "p.yaml: rules.kms_rotation.params.max_rotation_days: Input should be a valid integer, unable to parse string"
        " as an integer; found 'many'",
        "p.yaml: rules.run_unapproved_region.params.approved_regions: Input should be a valid tuple; found 7"]


def test_params_of_an_unknown_rule_are_not_checked() -> None:
    assert _problems("rules: {nope: {params: {a: 1}}, kms_rotation: {params: {max_rotation_days: many}}}") == [
        "p.yaml: rules: unknown rule 'nope': `python main.py rules` lists them",
        "p.yaml: rules.kms_rotation.params.max_rotation_days: Input should be a valid integer, unable to parse string"
        " as an integer; found 'many'"]


# --- load_policy ------------------------------------------------------------------------------------------


def test_loaded_policy_names_its_file(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(GOOD)
    assert load_policy(path).source == str(path)


def test_invalid_policy_file_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text("version: 2\n")
    with pytest.raises(ConfigError) as info:
        load_policy(path)
    assert str(info.value) == f"{path}: version: Input should be 1; found 2"


def test_unreadable_policy_file_names_the_error_kind(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_policy(tmp_path)
    assert str(info.value) == f"{tmp_path}: cannot read the policy file: IsADirectoryError"


# --- _check_seconds: RAMPART_POLICY_CHECK_SECONDS ------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [(None, 3.0), ("", 3.0), ("0.5", 0.5), ("-2", 0.0), ("soon", 3.0)])
def test_check_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch, raw: str | None, expected: float) -> None:
    if raw is None:
        monkeypatch.delenv("RAMPART_POLICY_CHECK_SECONDS", raising=False)
    else:
        monkeypatch.setenv("RAMPART_POLICY_CHECK_SECONDS", raw)
    assert config._check_seconds() == expected


# --- PolicyStore ------------------------------------------------------------------------------------------


class Clock:
    """time.monotonic for the store: each call takes the next reading, the last one repeats."""

    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)

    def __call__(self) -> float:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]

    def then(self, *readings: float) -> None:
        self.readings = list(readings)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Clock]:
    c = Clock(1000.0)
    monkeypatch.setattr(config.time, "monotonic", c)
    yield c


def _lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


def test_store_logs_each_event_of_a_policy_life(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("rules: {run_ingress_open: {mode: alert}}\n")
    store = PolicyStore(path, check_seconds=3)
    with log.captured() as out:
        assert store.current().settings("run_ingress_open").mode is Mode.ALERT
        clock.then(1003.0)  # the interval is over at 1003, not after it
        path.write_text(ENFORCE)
        assert store.current().settings("run_ingress_open").mode is Mode.ENFORCE
        clock.then(1006.0)
        path.write_text("version: 2\n")
        assert store.current().settings("run_ingress_open").mode is Mode.ENFORCE
    assert _lines(out.getvalue()) == [
        {"severity": "WARNING", "message": "rampart.policy_warning",
         "detail": "trusted_domains is empty: every user, group and domain member in an IAM policy is an outsider"
                   " to the outsider rules; list your organization's domains"},
        {"severity": "INFO", "message": "rampart.policy_reloaded", "source": str(path),
         "digest": hashlib.sha256(ENFORCE.encode()).hexdigest()[:12]},
        {"severity": "ERROR", "message": "rampart.policy_rejected", "reason": f"{path}: version: Input should be 1; found 2",
         "in_force": str(path), "action": "keeping the last good policy"},
    ]


def test_store_does_not_reload_an_unchanged_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    store = PolicyStore(path, check_seconds=3)
    first = store.current()
    with log.captured() as out:
        for t in (1004.0, 1008.0, 1012.0):
            clock.then(t)
            assert store.current() is first
    assert out.getvalue() == ""


def test_store_logs_an_invalid_first_policy_once_and_keeps_refusing(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 2\n")
    store = PolicyStore(path, check_seconds=3)
    with log.captured() as out:
        with pytest.raises(ConfigError) as first:
            store.current()
        path.write_text(GOOD)  # fixed, but not looked at before the interval is over
        clock.then(1002.0)
        with pytest.raises(ConfigError) as again:
            store.current()
    assert again.value is first.value
    assert _lines(out.getvalue()) == [
        {"severity": "ERROR", "message": "rampart.policy_invalid", "reason": f"{path}: version: Input should be 1; found 2",
         "action": "refusing to act until fixed"}]
    clock.then(1003.0)
    assert store.current().settings("run_ingress_open").mode is Mode.ALERT


def test_store_whose_file_disappears_keeps_its_policy_and_says_so(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    store = PolicyStore(path, check_seconds=3)
    first = store.current()
    path.unlink()
    with log.captured() as out:
        clock.then(1004.0)
        assert store.current() is first
        clock.then(1008.0)
        assert store.current() is first
    assert _lines(out.getvalue()) == [
        {"severity": "ERROR", "message": "rampart.policy_rejected",
         "reason": f"{path}: policy file not found (set RAMPART_POLICY or create config/policy.yaml)",
         "in_force": str(path), "action": "keeping the last good policy"}]


def test_store_checked_by_another_thread_meanwhile_answers_the_policy_in_force(tmp_path: Path, clock: Clock) -> None:
    # Past the interval when first asked (1004), within it once the lock is held (1001): another
    # thread re-read it in between, so this one answers the policy in force without a read.
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    store = PolicyStore(path, check_seconds=3)
    first = store.current()
    path.write_text(ENFORCE)
    clock.then(1004.0, 1001.0)
    assert store.current() is first


def test_store_checked_by_another_thread_meanwhile_raises_the_error_in_force(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("version: 2\n")
    store = PolicyStore(path, check_seconds=3)
    with pytest.raises(ConfigError) as first:
        store.current()
    path.write_text(GOOD)
    clock.then(1004.0, 1001.0)
    with pytest.raises(ConfigError) as again:
        store.current()
    assert again.value is first.value


def test_store_whose_first_load_crashed_tries_again_at_once(tmp_path: Path, clock: Clock,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(GOOD)
    real = config.load_policy
    calls = []

    def crash_once(p: Path) -> config.LoadedPolicy:
        calls.append(p)
        if len(calls) == 1:
            raise RuntimeError("disk went away")
        return real(p)

    monkeypatch.setattr(config, "load_policy", crash_once)
    store = PolicyStore(path, check_seconds=3)
    with pytest.raises(RuntimeError):
        store.current()
    assert store.current().settings("run_ingress_open").mode is Mode.ALERT
    assert len(calls) == 2


def test_pinned_policy_is_in_force_and_never_read_from_a_file(tmp_path: Path, clock: Clock) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(ENFORCE)
    pinned = parse_policy(GOOD, "pinned.yaml")
    store = PolicyStore(path, check_seconds=3)
    store.set(pinned)
    clock.then(10_000_000.0)
    assert store.current() is pinned
    assert store.path == Path("/nonexistent/<pinned>")


# --- _params_model: each rule's Params as a strict pydantic model, built once -------------------------------


@pytest.fixture
def no_param_models(monkeypatch: pytest.MonkeyPatch) -> None:
    # Importing the tests parses policies, which fills the cache: start from none.
    monkeypatch.setattr(config, "_param_models", {})


@pytest.mark.usefixtures("no_param_models")
def test_params_default_to_the_rules_own_defaults() -> None:
    loaded = parse_policy(GOOD, "p.yaml")
    assert loaded.settings("run_ingress_open").params.revert_to == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert loaded.settings("iam_agent_binding_removed").params.required == {}  # a default_factory
    assert loaded.settings("kms_version_disabled").params.allow_disable == ()


@pytest.mark.usefixtures("no_param_models")
def test_params_refuse_an_unknown_key() -> None:
    assert _problems("rules: {run_ingress_open: {params: {revert_too: X}}}") == [
        "p.yaml: rules.run_ingress_open.params.revert_too: unknown key (check the spelling against the policy"
        " reference in README.md)"]


@pytest.mark.usefixtures("no_param_models")
def test_params_model_is_built_once_per_rule() -> None:
    first = config._params_model("kms_rotation")
    assert config._params_model("kms_rotation") is first
    assert first.__name__ == "kms_rotation.params"


@pytest.mark.usefixtures("no_param_models")
def test_params_model_values_are_typed() -> None:
    loaded = parse_policy("trusted_domains: [example.com]\nrules: {kms_rotation: {params: {max_rotation_days: '30'}}}")
    assert loaded.settings("kms_rotation").params.max_rotation_days == 30


# --- _resolve: every rule's settings, and every problem in the file at once ---------------------------------


def test_params_errors_of_two_rules_are_both_reported() -> None:
    assert _problems("rules: {run_ingress_open: {params: {revert_too: X}}, kms_rotation: {params: {max_rotation_days: many}}}") == [
        "p.yaml: rules.run_ingress_open.params.revert_too: unknown key (check the spelling against the policy"
        " reference in README.md)",
        "p.yaml: rules.kms_rotation.params.max_rotation_days: Input should be a valid integer, unable to parse string"
        " as an integer; found 'many'"]


def test_regex_error_and_a_later_rules_params_error_are_both_reported() -> None:
    problems = _problems("rules: {run_plaintext_secrets: {params: {name_patterns: ['(']}},"
                         " kms_rotation: {params: {max_rotation_days: many}}}")
    assert len(problems) == 2
    assert problems[0].startswith("p.yaml: rules.run_plaintext_secrets.params.name_patterns[0]: RE2 cannot use this pattern")
    assert problems[1] == ("p.yaml: rules.kms_rotation.params.max_rotation_days: Input should be a valid integer,"
                           " unable to parse string as an integer; found 'many'")


def test_action_errors_of_two_rules_list_the_allowed_actions() -> None:
    assert _problems("rules: {run_ingress_open: {action: restore}, kms_rotation: {action: revert}}") == [
        "p.yaml: rules.run_ingress_open.action: expected one of revert, quarantine, alert; found 'restore'",
        "p.yaml: rules.kms_rotation.action: expected one of alert; found 'revert'"]


def test_unlisted_folder_in_an_exemption_says_where_to_list_it() -> None:
    assert _problems("folders: {folders/1: [p-1]}\nrules: {run_ingress_open: {exemptions:"
                     " [{folders: [folders/2], owner: o, reason: r, expires: 2030-01-01}]}}") == [
        "p.yaml: rules.run_ingress_open.exemptions[0].folders: folders/2 is not listed under the top-level `folders:`"
        " (audit entries do not name a project's folder; list its projects there)"]


def test_outsider_rule_trusts_the_policys_lists_unless_it_names_its_own() -> None:
    loaded = parse_policy("trusted_domains: [example.com]\ntrusted_projects: [phi-prod]\n", "p.yaml")
    params = loaded.settings("iam_outsider_member").params
    assert (params.trusted_domains, params.trusted_projects) == (("example.com",), ("phi-prod",))
    own = parse_policy("trusted_domains: [example.com]\ntrusted_projects: [phi-prod]\nrules: {iam_outsider_member:"
                       " {params: {trusted_domains: [partner.example], trusted_projects: [lab-1]}}}", "p.yaml")
    params = own.settings("iam_outsider_member").params
    assert (params.trusted_domains, params.trusted_projects) == (("partner.example",), ("lab-1",))


def test_destroy_rule_reads_allow_disable_from_the_disabled_rule() -> None:
    loaded = parse_policy("trusted_domains: [example.com]\nrules: {kms_version_disabled: {params: {allow_disable:"
                          " ['projects/p/locations/global/keyRings/r/cryptoKeys/k']}}}", "p.yaml")
    s = loaded.settings("kms_version_destroy_scheduled")
    assert s.rule_id == "kms_version_destroy_scheduled"
    assert s.params.allow_disable == ("projects/p/locations/global/keyRings/r/cryptoKeys/k",)
    assert s.params.reenable_after_restore is True


def test_destroy_rule_keeps_its_own_allow_disable() -> None:
    loaded = parse_policy("trusted_domains: [example.com]\nrules: {kms_version_disabled: {params: {allow_disable: [a]}},"
                          " kms_version_destroy_scheduled: {params: {allow_disable: [b]}}}", "p.yaml")
    assert loaded.settings("kms_version_destroy_scheduled").params.allow_disable == ("b",)
    assert loaded.settings("kms_version_disabled").params.allow_disable == ("a",)


def test_settings_name_their_rule_and_the_policy_its_source() -> None:
    loaded = parse_policy(GOOD, "team.yaml")
    assert loaded.source == "team.yaml"
    assert [loaded.settings(i).rule_id for i in ("run_ingress_open", "iam_deny_policy")] == ["run_ingress_open", "iam_deny_policy"]


def test_exemption_expiring_today_is_not_warned_about(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "date_today", lambda: TODAY)
    text = ("trusted_domains: [example.com]\nrules: {run_ingress_open: {exemptions: ["
            "{projects: [a-123456], owner: today@example.com, reason: r, expires: 2026-06-01},"
            " {projects: [b-123456], owner: gone@example.com, reason: r, expires: 2026-05-31}]}}")
    assert parse_policy(text, "p.yaml").warnings == (
        "rules.run_ingress_open.exemptions[1] (owner gone@example.com) expired on 2026-05-31: no longer applies",)


def test_empty_trusted_domains_warning_in_full() -> None:
    assert parse_policy("version: 1\n", "p.yaml").warnings == (
        "trusted_domains is empty: every user, group and domain member in an IAM policy is an outsider"
        " to the outsider rules; list your organization's domains",)


# --- parse_policy -----------------------------------------------------------------------------------------


def test_every_yaml_problem_is_one_line_naming_the_file() -> None:
    assert _problems("version: 1\nversion: 1\ndefault_mode: alert\ndefault_mode: alert\n") == [
        "p.yaml: version: duplicate key (lines 1 and 2): YAML would silently keep the last one; keep one",
        "p.yaml: default_mode: duplicate key (lines 3 and 4): YAML would silently keep the last one; keep one"]


def test_top_level_list_names_its_kind() -> None:
    assert _problems("- a\n") == ["p.yaml: expected a mapping at the top level, found list"]


def test_policy_text_without_a_source_is_called_policy() -> None:
    assert parse_policy(GOOD).source == "<policy>"
    with pytest.raises(ConfigError) as info:
        parse_policy("version: 2\n")
    assert str(info.value) == "<policy>: version: Input should be 1; found 2"


def test_policy_file_is_read_as_utf8_whatever_the_locale(tmp_path: Path) -> None:
    import locale

    path = tmp_path / "policy.yaml"
    path.write_bytes("trusted_domains: [example.com]\nrules: {run_ingress_open: {exemptions: [{projects: [p-123456],"
                     " owner: zoë@example.com, reason: café menu, expires: 2099-01-01}]}}\n".encode())
    before = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale: a read in the locale's encoding fails
    try:
        loaded = load_policy(path)
    finally:
        locale.setlocale(locale.LC_CTYPE, before)
    (ex,) = loaded.settings("run_ingress_open").exemptions
    assert (ex.owner, ex.reason) == ("zoë@example.com", "café menu")

"""The security team's toggles: validation with clear errors, exemptions, hot reload."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from shared import log
from shared.config import ConfigError, PolicyStore, exemption_for, parse_policy
from shared.model import Action, Mode, Severity
from shared.pipeline import decide
from tests.helpers import ROOT


def test_shipped_policy_is_the_hipaa_profile() -> None:
    from tests.helpers import default_policy

    p = default_policy()
    assert p.policy.approved_regions == ("us-central1", "us-east1", "us-east4", "us-west1", "us-west2")
    assert p.settings("run_ingress_open").mode is Mode.ENFORCE
    assert p.settings("run_ingress_open").params.revert_to == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
    assert p.settings("run_default_service_account").action is Action.QUARANTINE
    assert p.settings("run_unapproved_region").params.approved_regions == p.policy.approved_regions


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("rules: {run_ingress_open: {mode: enforced}}", "rules.run_ingress_open.mode: Input should be 'off', 'alert', 'dry-run' or 'enforce'; found 'enforced'"),
        ("rules: {run_ingres_open: {mode: alert}}", "unknown rule 'run_ingres_open': did you mean 'run_ingress_open'?"),
        ("rules: {run_ingress_open: {modee: alert}}", "rules.run_ingress_open.modee: unknown key"),
        ("rules: {run_ingress_open: {params: {revert_too: X}}}", "rules.run_ingress_open.params.revert_too: unknown key"),
        ("rules: {kms_rotation: {params: {max_rotation_days: many}}}", "rules.kms_rotation.params.max_rotation_days: Input should be a valid integer"),
        ("rules: {kms_rotation: {action: revert}}", "rules.kms_rotation.action: expected one of alert; found 'revert'"),
        ("rules: {run_ingress_open: {severity: urgent}}", "rules.run_ingress_open.severity"),
        ("remediation: {max_attempts: 0}", "remediation.max_attempts: Input should be greater than or equal to 1"),
        ("version: 2", "version: Input should be 1"),
        ("colour: blue", "colour: unknown key"),
        ("rules: [1, 2]", "rules: Input should be a valid dictionary"),
        ("- just a list", "expected a mapping at the top level"),
        ("rules: {run_ingress_open: {mode: alert", "not valid YAML at line 1"),
        ("rules: {run_ingress_open: {exemptions: [{resources: [x], reason: r, expires: 2030-01-01}]}}", "exemptions.0.owner: required, missing"),
        ("rules: {run_ingress_open: {exemptions: [{owner: o, reason: r, expires: 2030-01-01}]}}", "must name resources, projects or folders"),
        ("rules: {run_ingress_open: {exemptions: [{folders: [folders/1], owner: o, reason: r, expires: 2030-01-01}]}}", "folders/1 is not listed"),
        ("folders: {'123': [p]}", "expected keys like folders/123456789"),
    ],
)
def test_invalid_policies_name_file_path_and_expectation(yaml_text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_policy(yaml_text, "team.yaml")
    msg = str(info.value)
    assert msg.startswith("team.yaml: ")
    assert expected in msg, msg


def test_exemptions_apply_until_they_expire(tmp_path) -> None:
    from shared.event import parse
    from shared.pipeline import evaluate, triage
    from tests.helpers import RULE_FIXTURES, load_json

    text = """
rules:
  run_ingress_open:
    exemptions:
      - resources: ["projects/test-project-1234/locations/*/services/cloud-run-slack-bot"]
        owner: web-team@example.com
        reason: public marketing bot, no PHI
        expires: 2030-01-01
      - projects: [test-project-1234]
        owner: old@example.com
        reason: migration
        expires: 2020-01-01
"""
    loaded = parse_policy(text, "p.yaml")
    assert any("expired on 2020-01-01" in w for w in loaded.warnings)
    event = parse(load_json(RULE_FIXTURES / "run_ingress_open" / "positive_v1_replace_all.json"))
    (f, s), *_ = [x for x in evaluate(event, triage(event), loaded) if x[0].rule == "run_ingress_open"]
    ex, expired = exemption_for(loaded, s, f.resource, f.project, dt.date(2026, 11, 23))
    assert ex is not None and ex.owner == "web-team@example.com"
    assert [e.owner for e in expired] == ["old@example.com"]
    record = decide(f, s, loaded, dt.date(2026, 11, 23))
    assert record is not None and record.outcome.value == "exempt" and "web-team@example.com" in record.reason
    # The day after it expires, it stops applying.
    record = decide(f, s, loaded, dt.date(2030, 1, 2))
    assert record is None  # remediate, since the rule is enforced and reverts


def test_folder_exemption_through_folders_map() -> None:
    text = """
folders: {folders/42: [sandbox-1]}
rules:
  run_ingress_open:
    exemptions: [{folders: [folders/42], owner: o, reason: sandbox folder, expires: 2099-01-01}]
"""
    loaded = parse_policy(text)
    s = loaded.settings("run_ingress_open")
    assert exemption_for(loaded, s, "projects/sandbox-1/locations/us-central1/services/x", "sandbox-1")[0] is not None
    assert exemption_for(loaded, s, "projects/prod/locations/us-central1/services/x", "prod")[0] is None


def test_modes_severity_and_params_resolve() -> None:
    loaded = parse_policy(
        """
default_mode: dry-run
approved_regions: [europe-west4]
rules:
  run_ingress_open: {severity: critical, params: {revert_to: INGRESS_TRAFFIC_INTERNAL_ONLY}}
  run_unapproved_region: {mode: alert}
  kms_rotation: {mode: "off"}
"""
    )
    s = loaded.settings("run_ingress_open")
    assert (s.mode, s.severity, s.params.revert_to) == (Mode.DRY_RUN, Severity.CRITICAL, "INGRESS_TRAFFIC_INTERNAL_ONLY")
    assert loaded.settings("run_unapproved_region").params.approved_regions == ("europe-west4",)
    assert "kms_rotation" not in loaded.enabled()


def test_hot_reload_and_last_good_policy_survives_a_bad_edit(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("rules: {run_ingress_open: {mode: alert}}\n")
    store = PolicyStore(path, check_seconds=0)
    assert store.current().settings("run_ingress_open").mode is Mode.ALERT

    with log.captured() as out:
        path.write_text("rules: {run_ingress_open: {mode: enforce}}\n")
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 1_000_000))
        assert store.current().settings("run_ingress_open").mode is Mode.ENFORCE

        path.write_text("rules: {run_ingress_open: {mode: sometimes}}\n")
        os.utime(path, ns=(time.time_ns(), time.time_ns() + 2_000_000))
        assert store.current().settings("run_ingress_open").mode is Mode.ENFORCE  # last good stays
        assert "rampart.policy_rejected" in out.getvalue()
        assert "sometimes" in out.getvalue()  # the reason names what was wrong
        assert store.current().settings("run_ingress_open").mode is Mode.ENFORCE  # and is not re-logged
        assert out.getvalue().count("rampart.policy_rejected") == 1


def test_a_same_size_edit_with_the_same_mtime_takes_effect(tmp_path) -> None:
    # A Secret Manager volume mount need not change size or mtime: the content digest decides.
    path = tmp_path / "policy.yaml"
    path.write_text("rules: {run_ingress_open: {mode: alert}}\n")
    st = path.stat()
    store = PolicyStore(path, check_seconds=0)
    assert store.current().settings("run_ingress_open").mode is Mode.ALERT
    path.write_text("rules: {run_ingress_open: {mode: off  }}\n".replace("off  ", '"off"'))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    with log.captured() as out:
        assert store.current().settings("run_ingress_open").mode is Mode.OFF
    assert "rampart.policy_reloaded" in out.getvalue()


def test_the_file_is_read_at_most_once_per_check_interval(tmp_path, monkeypatch) -> None:
    import shared.config as config

    path = tmp_path / "policy.yaml"
    path.write_text("rules: {run_ingress_open: {mode: alert}}\n")
    clock = [1000.0]
    monkeypatch.setattr(config.time, "monotonic", lambda: clock[0])
    reads = []
    real_read = Path.read_bytes
    monkeypatch.setattr(Path, "read_bytes", lambda self: reads.append(self) or real_read(self))
    store = PolicyStore(path, check_seconds=3)
    for _ in range(50):
        assert store.current().settings("run_ingress_open").mode is Mode.ALERT
    assert len(reads) == 1
    path.write_text("rules: {run_ingress_open: {mode: enforce}}\n")
    clock[0] += 2.9
    assert store.current().settings("run_ingress_open").mode is Mode.ALERT  # not yet re-read
    clock[0] += 0.2
    assert store.current().settings("run_ingress_open").mode is Mode.ENFORCE
    assert len(reads) == 2


def test_broken_policy_at_start_refuses_to_run(tmp_path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text("rules: {nope: {}}\n")
    with log.captured() as out, pytest.raises(ConfigError, match="unknown rule"):
        PolicyStore(path).current()
    assert "rampart.policy_invalid" in out.getvalue()


def test_missing_policy_file_says_how_to_fix(tmp_path) -> None:
    with pytest.raises(ConfigError, match="RAMPART_POLICY"):
        PolicyStore(tmp_path / "none.yaml").current()


def test_example_policies_are_valid() -> None:
    from shared.config import load_policy

    for p in [*(ROOT / "examples").glob("*.yaml"), ROOT / "config" / "policy.yaml"]:
        load_policy(p)


def test_trusted_domains_and_projects_are_read_and_warned_about_while_empty() -> None:
    empty = parse_policy("version: 1\n", "p.yaml")
    assert empty.policy.trusted_domains == () and empty.policy.trusted_projects == ()
    assert any(w.startswith("trusted_domains is empty") for w in empty.warnings)
    loaded = parse_policy("trusted_domains: [example.com]\ntrusted_projects: [phi-prod]\n", "p.yaml")
    assert loaded.policy.trusted_domains == ("example.com",)
    assert loaded.policy.trusted_projects == ("phi-prod",)
    assert not any("trusted_domains" in w for w in loaded.warnings)
    with pytest.raises(ConfigError, match="trusted_domains"):
        parse_policy("trusted_domains: example.com\n", "p.yaml")

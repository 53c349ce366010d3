"""The operator CLI, run as a user runs it: `python main.py ...` in a subprocess."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import functions
from shared.cli import sink_filter
from tests.helpers import ROOT, default_policy

SAMPLE = ROOT / "examples" / "audit-sample.jsonl"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "main.py", *args], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_lists_every_rule_with_permissions() -> None:
    p = run("rules", "--json")
    assert p.returncode == 0, p.stderr
    rows = json.loads(p.stdout)
    assert [r["id"] for r in rows] == list(functions.RULE_IDS)
    ingress = rows[0]
    assert ingress["mode"] == "enforce" and ingress["action"] == "revert"
    assert "run.services.update" in ingress["permissions"]
    assert {"serviceName": "run.googleapis.com", "methodName": "google.cloud.run.v2.Services.UpdateService"} in ingress["triggers"]
    text = run("rules").stdout
    assert "kms_version_disabled  [critical]" in text


def test_check_config_accepts_the_default_and_rejects_a_bad_file(tmp_path) -> None:
    assert run("check-config").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  run_ingress_open:\n    mode: maybe\n")
    p = run("check-config", str(bad))
    assert p.returncode == 1
    assert f"{bad}: rules.run_ingress_open.mode" in p.stderr and "'maybe'" in p.stderr


def test_replay_table_json_summary_and_fail_on() -> None:
    p = run("replay", str(SAMPLE))
    assert p.returncode == 0, p.stderr
    assert "run_ingress_open" in p.stdout and "RESOURCE" in p.stdout
    assert "11 events read" in p.stderr and "failed_call 1" in p.stderr and "compliant 1" in p.stderr

    p = run("replay", str(SAMPLE), "--json")
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    for row in rows:
        assert {"rule", "severity", "resource", "project", "principal", "action", "mode", "event_id"} <= row.keys()
    assert {r["rule"] for r in rows} >= {"run_ingress_open", "run_public_invoker", "kms_version_disabled"}

    assert run("replay", str(SAMPLE), "--fail-on", "critical").returncode == 3
    assert run("replay", str(SAMPLE), "--fail-on", "critical", "--policy", str(ROOT / "examples" / "policy-quiet.yaml")).returncode == 0


def test_replay_from_stdin_accepts_push_bodies_and_rejects_garbage() -> None:
    import base64

    entry = SAMPLE.read_text().splitlines()[1]
    push = json.dumps({"message": {"data": base64.b64encode(entry.encode()).decode(), "messageId": "1"}})
    p = run("replay", "-", "--json", stdin=push + "\nnot json at all\n")
    assert p.returncode == 0
    assert json.loads(p.stdout.splitlines()[0])["rule"] == "run_ingress_open"
    assert "rejected: 1× not JSON (Expecting value at position 0) (line 2)" in p.stderr
    assert "at all" not in p.stderr  # the reason, never the payload


def test_replay_names_where_each_rejected_document_was() -> None:
    lines = ['{"a": 1}', "not json", '{"b": 2}'] + ["[1"] * 7
    p = run("replay", "-", stdin="\n".join(lines) + "\n")
    assert p.returncode == 4  # nothing valid: see test_replay_exits_4_when_nothing_valid_was_read
    assert "10 events read" in p.stderr
    assert "2× no protoPayload: not a Cloud Audit Log entry (line 1, line 3)" in p.stderr
    assert "line 2" in p.stderr and "(line 4, line 5, line 6, line 7, line 8, ... 2 more)" in p.stderr
    p = run("replay", "-", stdin='[{"a": 1}, 3]')
    assert "1× expected a JSON object (LogEntry or envelope), found int (item 2)" in p.stderr


def test_replay_exits_4_when_nothing_valid_was_read(tmp_path) -> None:
    # An empty export (a failed `gcloud logging read` in a pipeline) or garbage must not pass a gate.
    for stdin in ("", "not json\n{also not\n", "[]", '{"a": 1}\n'):
        p = run("replay", "-", "--fail-on", "low", stdin=stdin)
        assert p.returncode == 4, (stdin, p.returncode, p.stderr)
        assert "no valid audit log entry in standard input" in p.stderr
    empty = tmp_path / "export.json"
    empty.write_text("")
    p = run("replay", str(empty))
    assert p.returncode == 4 and f"no valid audit log entry in {empty}" in p.stderr
    # One valid entry with no finding is something checked: exit 0, even with garbage beside it.
    p = run("replay", "-", "--fail-on", "low", stdin=SAMPLE.read_text().splitlines()[0] + "\nnot json\n")
    assert p.returncode == 0 and "0 findings" in p.stderr, p.stderr


def test_replay_fail_on_is_case_insensitive() -> None:
    for sev in ("CRITICAL", "Critical", "critical"):
        assert run("replay", str(SAMPLE), "--fail-on", sev).returncode == 3, sev
    p = run("replay", str(SAMPLE), "--fail-on", "urgent")
    assert p.returncode == 2 and "low" in p.stderr and "critical" in p.stderr


def test_replay_table_keeps_both_ends_of_long_resource_names() -> None:
    from shared.cli import shorten_middle

    p = run("replay", str(SAMPLE))
    rows = [line for line in p.stdout.splitlines() if "kms_version_disabled" in line]
    assert rows and "cryptoKeyVersions/1" in rows[0] and "projects/test-project" in rows[0]
    assert any("services/cloud-run-slack-bot" in line for line in p.stdout.splitlines())
    name = "projects/p/locations/us-central1/keyRings/ring/cryptoKeys/" + "k" * 80 + "/cryptoKeyVersions/7"
    short = shorten_middle(name, 70)
    assert len(short) == 70 and short.startswith("projects/p/") and short.endswith("cryptoKeyVersions/7") and "…" in short
    assert shorten_middle("short", 70) == "short"


def test_replay_json_timestamps_are_rfc3339() -> None:
    from shared.cli import rfc3339

    rfc = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$"
    p = run("replay", str(SAMPLE), "--json")
    stamps = [json.loads(line)["timestamp"] for line in p.stdout.splitlines()]
    assert stamps and all(re.match(rfc, t) for t in stamps), stamps
    # The sample holds BigQuery-style "2024-02-02 09:44:26.029835000" stamps (UTC, no zone).
    assert "2024-02-02T09:44:26.029835Z" in stamps
    assert rfc3339("2025-12-15 15:40:47.284488263") == "2025-12-15T15:40:47.284488263Z"
    assert rfc3339("2024-05-06T22:58:04Z") == "2024-05-06T22:58:04Z"
    assert rfc3339("2024-05-06T22:58:04.500+0200") == "2024-05-06T22:58:04.5+02:00"
    assert rfc3339("yesterday") is None


def test_replay_counts_rules_set_off_as_off_not_compliant(tmp_path) -> None:
    off = tmp_path / "off.yaml"
    off.write_text("default_mode: \"off\"\n")
    p = run("replay", str(SAMPLE), "--policy", str(off))
    assert p.returncode == 0, p.stderr
    assert "rule_off" in p.stderr and "compliant" not in p.stderr.replace("rule_off", ""), p.stderr
    assert "0 findings" in p.stderr


def test_release_without_credentials_says_how_to_log_in(tmp_path) -> None:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "CLOUDSDK_", "RAMPART_"))}
    env.update({"HOME": str(tmp_path), "CLOUDSDK_CONFIG": str(tmp_path / "gcloud"), "GCE_METADATA_HOST": "127.0.0.1:9",
                "GCE_METADATA_IP": "127.0.0.1:9", "NO_GCE_CHECK": "True"})
    p = subprocess.run([sys.executable, "main.py", "release", "projects/p-123456/locations/us-central1/services/api"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "gcloud auth application-default login" in lines[0] and "Traceback" not in p.stderr


def _fake_gcloud(tmp_path, rc: int = 0):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls"
    gcloud = bin_dir / "gcloud"
    # Records its argv and the data file it was given, as Secret Manager would store it.
    gcloud.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nfor a in "$@"; do case "$a" in --data-file=*) '
                      f'cat "${{a#--data-file=}}" > "{tmp_path}/pushed";; esac; done\n'
                      f'[ {rc} = 0 ] || echo "ERROR: (gcloud.secrets.versions.add) NOT_FOUND: Secret [rampart-policy] not found" >&2\n'
                      f'exit {rc}\n')
    gcloud.chmod(0o755)
    import os

    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}, log


def test_policy_push_validates_then_adds_a_secret_version(tmp_path) -> None:
    env, log = _fake_gcloud(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text("default_mode: dry-run\n")
    p = subprocess.run([sys.executable, "main.py", "policy", "push", str(policy), "--project", "sec-prod"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 0, p.stderr
    assert log.read_text().split() == ["secrets", "versions", "add", "rampart-policy", "--project=sec-prod",
                                       f"--data-file={policy}"]
    assert (tmp_path / "pushed").read_text() == "default_mode: dry-run\n"
    assert "new version of secret rampart-policy" in p.stdout
    assert "no alert channel" not in p.stderr  # nothing acts in dry-run
    policy.write_text("default_mode: enforce\n")
    p = subprocess.run([sys.executable, "main.py", "policy", "push", str(policy), "--project", "sec-prod"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    import functions
    from shared.model import Action

    acting = len([r for r in functions.all_rules() if r.action is not Action.ALERT])  # every rule enforced, its own action
    assert p.returncode == 0 and f"{acting} rules will change resources and the policy has no alert channel" in p.stderr


def test_policy_push_refuses_an_invalid_policy_and_calls_nothing(tmp_path) -> None:
    env, log = _fake_gcloud(tmp_path)
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules: {run_ingress_open: {mode: sometimes}}\n")
    p = subprocess.run([sys.executable, "main.py", "policy", "push", str(policy), "--project", "sec-prod"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 1
    assert "rules.run_ingress_open.mode" in p.stderr and "nothing was pushed" in p.stderr
    assert not log.exists()


def test_policy_push_reports_a_gcloud_failure_in_one_line(tmp_path) -> None:
    env, _log = _fake_gcloud(tmp_path, rc=1)
    p = subprocess.run([sys.executable, "main.py", "policy", "push", "config/policy.yaml", "--project", "sec-prod"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert p.returncode == 1
    assert "NOT_FOUND" in p.stderr and "the policy in force is unchanged" in p.stderr


def test_sink_filter_matches_the_rules() -> None:
    text = sink_filter(functions.RULE_IDS, default_policy())
    for r in functions.all_rules():
        for service, method in r.triggers:
            assert f'protoPayload.methodName="{method}"' in text
            assert f'protoPayload.serviceName="{service}"' in text
    assert text.startswith('logName:"/logs/cloudaudit.googleapis.com%2Factivity"')
    one = run("sink-filter", "kms_version_disabled").stdout
    assert '"UpdateCryptoKeyVersion"' in one and "run.googleapis.com" not in one
    assert run("sink-filter", "nope").returncode == 2


def test_iam_role_is_the_union_of_enabled_actions() -> None:
    p = run("iam-role", "--format", "list")
    perms = p.stdout.split()
    assert "run.services.update" in perms and "cloudkms.cryptoKeyVersions.restore" in perms
    assert perms == sorted(set(perms))
    assert not any(x.endswith(".delete") for x in perms)
    only = run("iam-role", "kms_rotation", "--format", "list").stdout.split()
    assert only == []  # alert-only rule: no permissions at all


def test_iam_role_fits_iam_limits_and_includes_act_as() -> None:
    role = json.loads(run("iam-role", "--format", "json").stdout)
    assert len(role["description"].encode()) <= 256  # IAM rejects longer descriptions
    assert len(role["title"]) <= 100
    # Updating a Cloud Run service re-attaches its service identity: actAs is required.
    assert "iam.serviceAccounts.actAs" in role["includedPermissions"]

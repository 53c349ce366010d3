"""The operator CLI, run as a user runs it: `python main.py ...` in a subprocess."""

from __future__ import annotations

import json
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
    assert p.returncode == 0
    assert "10 events read" in p.stderr
    assert "2× no protoPayload: not a Cloud Audit Log entry (line 1, line 3)" in p.stderr
    assert "line 2" in p.stderr and "(line 4, line 5, line 6, line 7, line 8, ... 2 more)" in p.stderr
    p = run("replay", "-", stdin='[{"a": 1}, 3]')
    assert "1× expected a JSON object (LogEntry or envelope), found int (item 2)" in p.stderr


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

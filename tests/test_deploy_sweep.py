"""deploy.sh's posture sweep (infra/sweep.sh), checked in dry-run and against a scripted gcloud:
the scheduler job (daily by default, --sweep-schedule), the sweep topic and its dead-letter topic,
the sweep identity's role at the scope (asset search + the rules' reads; writes only when the
policy lets the sweep enforce), and a function deployed as the HIPAA seed asks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.model import Mode
from shared.sweep.permissions import ASSET_SEARCH, is_read, sweep_permissions
from tests.test_deploy import APPROVED, ORG, PROJECT, Plan, cli_output, dry_run, flag, scripted_run, split_commands

ENFORCING = """\
version: 1
ignore_principals: ["rampart-*@rampart-prod.iam.gserviceaccount.com"]
sweep: {max_mode: enforce}
"""


@pytest.fixture(scope="module")
def sweep_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return dry_run(tmp_path_factory.mktemp("sweep-plan"), "--scope", "org", "--scope-id", ORG, "--stage", "dry-run", sweep=True)


def role_permissions(plan: Plan) -> list[str]:
    import yaml

    role = yaml.safe_load((plan.src / ".local" / "deploy" / "sweep.role.yaml").read_text())
    return role["includedPermissions"]


def test_the_scheduler_publishes_a_sweep_request_daily_over_the_scope(sweep_plan: Plan) -> None:
    [job] = sweep_plan.find("scheduler", "jobs", "create", "pubsub")
    assert flag(job, "schedule") == "0 6 * * *" and flag(job, "time-zone") == "Etc/UTC"
    assert flag(job, "topic") == f"projects/{PROJECT}/topics/rampart-sweep"
    assert json.loads(flag(job, "message-body") or "") == {"type": "rampart.sweep.request", "scopes": [f"organizations/{ORG}"]}
    # Nothing publishes a request before the worker and its subscription exist.
    [deploy] = [c for c in sweep_plan.find("run", "deploy") if c[3] == "rampart-sweep"]
    [push] = [c for c in sweep_plan.find("pubsub", "subscriptions", "create") if c[4] == "rampart-sweep-push"]
    assert sweep_plan.commands.index(deploy) < sweep_plan.commands.index(push) < sweep_plan.commands.index(job)


def test_sweep_schedule_is_an_option_and_checked(tmp_path: Path) -> None:
    plan = dry_run(tmp_path / "hourly", "--sweep-schedule", "15 */4 * * 1-5", "--stage", "dry-run", sweep=True)
    [job] = plan.find("scheduler", "jobs", "create", "pubsub")
    assert flag(job, "schedule") == "15 */4 * * 1-5"
    assert json.loads(flag(job, "message-body") or "")["scopes"] == [f"projects/{PROJECT}"]
    from tests.test_deploy import copy_source, run_script

    src = copy_source(tmp_path / "bad")
    for bad in ("daily", "0 6 * *", "0 6 * * *; rm -rf /", '0 6 * * "'):
        result = run_script(src, "deploy.sh", "--project", PROJECT, "--dry-run", "--stage", "dry-run", "--sweep-schedule", bad)
        assert result.returncode == 2 and "--sweep-schedule" in result.stderr and result.stdout == ""


def test_sweep_topic_has_a_dead_letter_topic_held_a_week(sweep_plan: Plan) -> None:
    [topics] = [c for c in sweep_plan.find("pubsub", "topics", "create") if "rampart-sweep" in c]
    assert "rampart-sweep-dead-letter" in topics and flag(topics, "message-storage-policy-allowed-regions") in APPROVED
    [push] = [c for c in sweep_plan.find("pubsub", "subscriptions", "create") if c[4] == "rampart-sweep-push"]
    assert flag(push, "dead-letter-topic") == f"projects/{PROJECT}/topics/rampart-sweep-dead-letter"
    assert int(flag(push, "max-delivery-attempts") or 0) >= 5 and flag(push, "ack-deadline") == "600"
    [hold] = [c for c in sweep_plan.find("pubsub", "subscriptions", "create") if c[4] == "rampart-sweep-dead-letter-hold"]
    assert flag(hold, "message-retention-duration") == "7d"


def test_the_sweep_identity_reads_but_does_not_write_in_dry_run(sweep_plan: Plan) -> None:
    perms = role_permissions(sweep_plan)
    rules = cli_output("iam-role", "--format", "list").split()
    assert perms == sweep_permissions(rules, Mode.DRY_RUN)
    assert set(ASSET_SEARCH) <= set(perms) and all(is_read(p) for p in perms)
    assert not {"run.services.update", "run.services.setIamPolicy", "cloudkms.cryptoKeyVersions.update"} & set(perms)
    [binding] = [c for c in sweep_plan.find("organizations", "add-iam-policy-binding")
                 if flag(c, "member") == f"serviceAccount:rampart-sweep@{PROJECT}.iam.gserviceaccount.com"]
    assert flag(binding, "role") == f"organizations/{ORG}/roles/rampart_sweep"


def test_writes_only_when_the_policy_lets_the_sweep_enforce(tmp_path: Path) -> None:
    plan = dry_run(tmp_path / "enforce", "--policy", "config/alerts.yaml", "--no-alerts", policy_text=ENFORCING, sweep=True)
    perms = role_permissions(plan)
    assert {"run.services.update", "cloudkms.cryptoKeyVersions.update"} <= set(perms)
    assert set(cli_output("iam-role", "--format", "list", "--policy", str(plan.src / "config" / "alerts.yaml")).split()) <= set(perms)


def test_stage_caps_the_sweep_as_it_caps_every_rule(tmp_path: Path) -> None:
    # A first rollout (--stage dry-run or alert) of a policy that lets the sweep enforce: the
    # sweep's role gets no write permission, and the policy it reads says so.
    for stage in ("dry-run", "alert"):
        plan = dry_run(tmp_path / stage, "--policy", "config/alerts.yaml", "--no-alerts", "--stage", stage,
                       policy_text=ENFORCING, sweep=True)
        perms = role_permissions(plan)
        assert set(ASSET_SEARCH) <= set(perms) and all(is_read(x) for x in perms if x not in ASSET_SEARCH), stage
        assert f"at most {stage}" in plan.result.stderr


def test_the_sweep_function_is_deployed_as_the_seed_asks(sweep_plan: Plan) -> None:
    [argv] = [c for c in sweep_plan.find("run", "deploy") if c[3] == "rampart-sweep"]
    assert flag(argv, "function") == "rampart_sweep" and flag(argv, "region") in APPROVED
    assert "--no-allow-unauthenticated" in argv and "--invoker-iam-check" in argv and flag(argv, "ingress") == "internal"
    assert flag(argv, "service-account") == f"rampart-sweep@{PROJECT}.iam.gserviceaccount.com"
    env = dict(kv.split("=", 1) for kv in (flag(argv, "set-env-vars") or "").split(","))
    assert env == {"RAMPART_POLICY": "/etc/rampart/policy/policy.yaml",
                   "RAMPART_SWEEP_TOPIC": f"projects/{PROJECT}/topics/rampart-sweep"}
    assert (flag(argv, "set-secrets") or "").startswith("/etc/rampart/policy/policy.yaml=rampart-policy:latest")
    assert flag(argv, "concurrency") == "1" and int(flag(argv, "max-instances") or 0) <= 100


def test_no_sweep_leaves_it_out(tmp_path: Path) -> None:
    plan = dry_run(tmp_path / "none", "--stage", "dry-run")
    assert not [c for c in plan.commands if "rampart-sweep" in " ".join(c) or c[1:2] == ["scheduler"]]


def test_a_real_run_with_the_sweep_executes_exactly_what_the_dry_run_prints(tmp_path: Path) -> None:
    result, calls = scripted_run(tmp_path / "real")
    assert result.returncode == 0, result.stderr
    from tests.test_deploy import copy_source, run_script

    dry = run_script(copy_source(tmp_path / "dry"), "deploy.sh", "--project", PROJECT, "--project-number", "123456789012",
                     "--dry-run", "--stage", "dry-run")
    assert dry.returncode == 0, dry.stderr
    assert calls == split_commands(dry.stdout)
    assert any(c[1:4] == ["scheduler", "jobs", "create"] for c in calls)


def test_sweep_documents_expire_under_a_ttl_policy(sweep_plan: Plan) -> None:
    ttls = sweep_plan.find("firestore", "fields", "ttls", "update")
    groups = {flag(c, "collection-group") for c in ttls if c[5] == "expire_at" and "--enable-ttl" in c}
    assert {"rampart_sweeps", "shards"} <= groups

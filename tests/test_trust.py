"""Who and what Rampart believes (issue 14, findings 2 and 3): ignored principals cannot switch it
off, impersonation is judged by its first caller, and only Admin Activity audit entries count.
Pipeline cases run the shipped policy through the real clients against the stand-in."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from infra.local import scenario
from shared import principals
from shared.alerts.dedupe import MemoryStore
from shared.cli import sink_filter
from shared.config import ConfigError, parse_policy
from shared.event import NOT_ADMIN_ACTIVITY, parse, skip_reason
from shared.pipeline import Pipeline

ROOT = Path(__file__).resolve().parent.parent
SVC = f"{scenario.SVC}/patient-api"
OUTSIDER_SA = "rampart-x@attacker-project.iam.gserviceaccount.com"
OWN = "rampart-runtime@demo-project.iam.gserviceaccount.com"


def shipped(slack_url: str | None = None, tmp_path: Path | None = None, **over: object) -> object:
    """config/policy.yaml as shipped, with a Slack channel to see alerts on."""
    policy = yaml.safe_load((ROOT / "config" / "policy.yaml").read_text())
    if slack_url and tmp_path:
        hook = tmp_path / "slack-webhook"
        hook.write_text(slack_url)
        policy["alerts"] = {"slack": {"webhook_url_file": str(hook), "allowed_hosts": ["127.0.0.1"]},
                            "retry": {"retries": 0}, "dedupe": {"store": "memory"}}
    policy.update(over)
    return parse_policy(yaml.safe_dump(policy), "config/policy.yaml (shipped)")


class Pinned:
    def __init__(self, loaded) -> None:
        self.loaded = loaded

    def current(self):
        return self.loaded


# -- finding 2: ignore_principals ---------------------------------------------------------------


def test_shipped_policy_ignores_no_pattern_of_rampart_names() -> None:
    loaded = shipped()
    assert all("*" not in p for p in loaded.policy.ignore_principals)
    assert not principals.is_ignored(OUTSIDER_SA, loaded.policy.ignore_principals)


@pytest.mark.parametrize("pattern", ["rampart-*@*.iam.gserviceaccount.com", "*@*", "*", "ops@exam?le.com", "a@[x].com"])
def test_a_domain_wildcard_in_ignore_principals_is_an_error(pattern: str) -> None:
    with pytest.raises(ConfigError, match="ignore_principals"):
        parse_policy(f"ignore_principals: [{pattern!r}]\n", "p.yaml")


def test_a_pattern_pinned_to_one_domain_is_accepted() -> None:
    loaded = parse_policy('ignore_principals: ["rampart-*@sec-prod.iam.gserviceaccount.com"]\n', "p.yaml")
    assert principals.is_ignored("rampart-a@sec-prod.iam.gserviceaccount.com", loaded.policy.ignore_principals)
    assert not principals.is_ignored("rampart-a@other.iam.gserviceaccount.com", loaded.policy.ignore_principals)


def test_own_principals_come_exact_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(principals.OWN_PRINCIPALS_ENV, f"{OWN} rampart-kms@demo-project.iam.gserviceaccount.com")
    principals.reset()
    try:
        assert principals.is_ignored(OWN, ())
        assert not principals.is_ignored("rampart-runtime@evil.iam.gserviceaccount.com", ())
        monkeypatch.setenv(principals.OWN_PRINCIPALS_ENV, "rampart-*@demo-project.iam.gserviceaccount.com")
        principals.reset()
        with pytest.raises(ValueError, match="exact emails"):
            principals.is_ignored(OWN, ())
    finally:
        principals.reset()


def _impersonating(entry: dict, caller: str, sa: str) -> dict:
    e = copy.deepcopy(entry)
    auth = e["protoPayload"]["authenticationInfo"]
    auth["principalEmail"] = sa
    # AuditLog AuthenticationInfo: "sorted based on the original ordering of the identity delegation events".
    auth["serviceAccountDelegationInfo"] = [{"firstPartyPrincipal": {"principalEmail": caller}}]
    return e


def test_impersonation_is_judged_by_the_first_principal_in_the_chain() -> None:
    event = parse(_impersonating(scenario.replace_service_v1("patient-api"), scenario.DEVELOPER, OWN))
    assert event.actor == scenario.DEVELOPER and event.principal != scenario.DEVELOPER


def _handle(standin, loaded, entry):
    standin.seed_example()
    standin.admin.mutate(SVC, patch={"ingress": "INGRESS_TRAFFIC_ALL"})
    standin.admin.clear_requests()
    result = Pipeline(Pinned(loaded), dedupe=MemoryStore()).handle(parse(entry))
    writes = [r for r in standin.admin.requests() if r["method"] in ("PATCH", "POST")]
    return result, writes


@pytest.mark.integration
def test_an_ignored_principals_violating_change_is_alerted_not_acted_on(standin, slack_receiver, tmp_path) -> None:
    loaded = shipped(slack_receiver.url, tmp_path, ignore_principals=[OWN])
    result, writes = _handle(standin, loaded, scenario.replace_service_v1("patient-api", ingress="all", principal=OWN))
    (record,) = result.records
    assert writes == [] and record.outcome.value == "alerted"
    assert principals.IGNORED_VIOLATION in record.reason
    text = slack_receiver.wait_for(1)[0].body["text"]
    assert "An ignored principal made a violating change" in text


@pytest.mark.integration
def test_impersonating_an_ignored_account_does_not_switch_rampart_off(standin, slack_receiver, tmp_path) -> None:
    loaded = shipped(slack_receiver.url, tmp_path, ignore_principals=[OWN])
    entry = _impersonating(scenario.replace_service_v1("patient-api", ingress="all"), scenario.DEVELOPER, OWN)
    result, writes = _handle(standin, loaded, entry)
    (record,) = result.records
    assert record.outcome.value == "remediated" and len(writes) == 1
    assert record.finding.principal == scenario.DEVELOPER and record.finding.observed["acting_as"] == OWN


@pytest.mark.integration
def test_a_service_account_named_rampart_in_another_project_is_not_ignored(standin) -> None:
    entry = scenario.replace_service_v1("patient-api", ingress="all", principal=OUTSIDER_SA)
    result, writes = _handle(standin, shipped(), entry)
    assert [r.outcome.value for r in result.records] == ["remediated"] and len(writes) == 1


# -- finding 3: forged or out-of-place entries --------------------------------------------------


FORGED_LOGS = [
    "projects/demo-project/logs/cloudaudit.googleapis.com%2Fdata_access_x",
    "projects/demo-project/logs/evil-cloudaudit.googleapis.com%2Factivity",
    "projects/demo-project/logs/my-app",
    "projects/demo-project/logs/cloudaudit.googleapis.com%2Factivity/x",
    "",
]


@pytest.mark.parametrize("log_name", FORGED_LOGS)
def test_only_the_admin_activity_log_is_believed(log_name: str) -> None:
    entry = scenario.replace_service_v1("patient-api", ingress="all")
    entry["logName"] = log_name
    assert skip_reason(parse(entry)) == NOT_ADMIN_ACTIVITY


def test_a_payload_that_is_not_an_audit_log_is_not_believed() -> None:
    entry = scenario.replace_service_v1("patient-api", ingress="all")
    entry["protoPayload"]["@type"] = "type.googleapis.com/google.appengine.logging.v1.RequestLog"
    assert skip_reason(parse(entry)) == NOT_ADMIN_ACTIVITY
    del entry["protoPayload"]["@type"]  # Eventarc's audit.log.v1.written data carries none: believed
    assert skip_reason(parse(entry)) is None


@pytest.mark.integration
@pytest.mark.parametrize("log_name", FORGED_LOGS[:2])
def test_a_forged_entry_changes_nothing(standin, log_name: str) -> None:
    entry = scenario.replace_service_v1("patient-api", ingress="all")
    entry["logName"] = log_name
    result, writes = _handle(standin, shipped(), entry)
    assert result.skipped == NOT_ADMIN_ACTIVITY and writes == []


def test_the_sink_filter_matches_the_log_and_payload_exactly() -> None:
    text = sink_filter(["run_ingress_open"], shipped())
    assert 'log_id("cloudaudit.googleapis.com/activity")' in text
    assert 'protoPayload."@type"="type.googleapis.com/google.cloud.audit.AuditLog"' in text
    assert "logName:" not in text  # ":" is a substring test


# -- finding 6: endpoints and the Slack webhook host --------------------------------------------


@pytest.mark.parametrize("value", [
    "https://run.googleapis.com", "https://attacker.example", "http://10.0.0.5:8080", "http://127.0.0.1.evil.com:80",
    "https://private.googleapis.com:443", "http://127.0.0.1:80@evil.com",
])
def test_an_endpoint_override_that_is_not_loopback_stops_the_function_starting(value: str) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("RAMPART_")}
    env["RAMPART_KMS_ENDPOINT"] = value
    proc = subprocess.run([sys.executable, "-c", "import main"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode != 0 and "RAMPART_KMS_ENDPOINT: expected a loopback endpoint" in proc.stderr


def test_any_rampart_endpoint_variable_is_checked() -> None:
    from shared.clients import check_endpoints

    check_endpoints({"RAMPART_RUN_ENDPOINT": "http://127.0.0.1:8089", "RAMPART_LOGGING_ENDPOINT": "http://[::1]:9"})
    with pytest.raises(ValueError, match="RAMPART_SWEEP_ENDPOINT"):
        check_endpoints({"RAMPART_SWEEP_ENDPOINT": "https://cloudasset.googleapis.com"})


@pytest.mark.integration
def test_a_webhook_file_naming_another_host_is_refused(slack_receiver, tmp_path) -> None:
    from shared.alerts.channels import ChannelError, send_slack
    from shared.alerts.config import SlackConfig

    hook = tmp_path / "webhook"
    hook.write_text(slack_receiver.url)
    with pytest.raises(ChannelError, match="allowed_hosts") as exc:
        send_slack(SlackConfig(webhook_url_file=str(hook)), {"text": "x", "blocks": []})  # default: hooks.slack.com
    assert exc.value.transient is False and slack_receiver.posts == []
    assert slack_receiver.url.split("/", 3)[3] not in str(exc.value)  # the token-bearing path is never shown
    send_slack(SlackConfig(webhook_url_file=str(hook), allowed_hosts=("127.0.0.1",)), {"text": "x", "blocks": []})
    assert len(slack_receiver.wait_for(1)) == 1


def test_the_default_slack_allowlist_is_slacks_own_host() -> None:
    from shared.alerts.config import SlackConfig

    assert SlackConfig(webhook_url_file="/secrets/slack/webhook-url").allowed_hosts == ("hooks.slack.com",)
    with pytest.raises(ValueError):
        SlackConfig(webhook_url_file="/x", allowed_hosts=("https://hooks.slack.com/",))


# -- finding 7: least privilege ---------------------------------------------------------------


def _role(*args: str) -> list[str]:
    import io

    from shared.cli import main as cli

    out = io.StringIO()
    assert cli(["iam-role", *args, "--policy", str(ROOT / "config" / "policy.yaml")], out=out) == 0
    return out.getvalue().split()


def test_the_identity_that_reads_untrusted_input_can_write_nothing() -> None:
    detect = _role("--identity", "detect", "--format", "list")
    assert detect and all(p.endswith((".get", ".getIamPolicy", ".list")) for p in detect), detect
    assert "iam.serviceAccounts.actAs" not in detect and "logging.logEntries.list" in detect


def test_each_writer_holds_only_its_products_permissions() -> None:
    run, kms = _role("--identity", "act-run", "--format", "list"), _role("--identity", "act-kms", "--format", "list")
    assert run and not any(p.startswith("cloudkms.") for p in run)
    assert all(p.startswith("cloudkms.") for p in kms) and "iam.serviceAccounts.actAs" not in kms
    assert set(run) | set(kms) | set(_role("--identity", "detect", "--format", "list")) >= set(_role("--format", "list"))


def test_act_as_only_where_a_service_update_needs_it() -> None:
    # An IAM-only revert (run_public_invoker) attaches no identity; an ingress revert updates the service.
    assert "iam.serviceAccounts.actAs" not in _role("run_public_invoker", "--format", "list")
    assert "iam.serviceAccounts.actAs" in _role("run_ingress_open", "--format", "list")
    assert "iam.serviceAccounts.actAs" not in _role("--identity", "act-run", "run_public_invoker", "--format", "list")


def test_the_kms_writers_org_binding_is_conditioned_on_kms_resource_types() -> None:
    (line,) = [" ".join(_role("--identity", "act-kms", "--format", "condition"))]
    assert 'resource.type == "cloudkms.googleapis.com/CryptoKey"' in line
    assert _role("--identity", "act-run", "--format", "condition") == []  # Cloud Run: no resource attributes

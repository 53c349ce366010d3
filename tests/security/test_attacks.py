"""Issue 14's attacks, replayed end to end on the local pipeline (Pub/Sub emulator push →
functions-framework → main.py → real Google clients → stand-in; Slack, SMTP and Pub/Sub alert
receivers) with the shipped policy. Each shows the attack refused, and the alert or log line that
names it. Judged from the outside only: the stand-in's request log, the alert channels, the
function's log lines."""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import pytest

from infra.local import scenario as S
from infra.local.stack import REMEDIATOR, LocalStack, wait_until

pytestmark = pytest.mark.integration
SVC = f"{S.SVC}/patient-api"


def _writes(stack: LocalStack) -> list[dict[str, Any]]:
    return [r for r in stack.admin.requests() if r["method"] in ("PATCH", "POST", "DELETE") and "entries:list" not in r["path"]]


def _ingress(stack: LocalStack) -> str:
    return stack.get(SVC)["ingress"]


def _fresh(entry: dict[str, Any]) -> dict[str, Any]:
    entry["insertId"] = f"atk{uuid.uuid4().hex[:12]}"
    return entry


def _slack_texts(stack: LocalStack) -> list[str]:
    return [str(p.body.get("text", "")) for p in stack.slack.posts]


def _open_ingress(stack: LocalStack) -> None:
    stack.admin.mutate(SVC, patch={"ingress": "INGRESS_TRAFFIC_ALL"}, actor=S.DEVELOPER)
    stack.admin.clear_requests()


# -- finding 2 -------------------------------------------------------------------------------


def test_a_rampart_named_account_in_another_project_is_not_ignored(stack: LocalStack) -> None:
    """The shipped wildcard ignored rampart-*@*: any such account, anywhere, switched Rampart off."""
    _open_ingress(stack)
    attacker = "rampart-helper@attacker-project.iam.gserviceaccount.com"
    entry = _fresh(S.replace_service_v1("patient-api", ingress="all", principal=attacker))
    stack.publish(entry)
    wait_until(lambda: _ingress(stack) != "INGRESS_TRAFFIC_ALL", 20, what="ingress closed")
    rec = wait_until(lambda: [r for r in stack.records() if r["event_id"] == entry["insertId"]], 10, what="record")[0]
    assert rec["outcome"] == "remediated" and rec["principal"] == attacker


def test_an_ignored_accounts_violating_change_is_alerted_and_left_alone(stack: LocalStack) -> None:
    """Someone holding (or impersonated as) an ignored account opens a door: not undone, but seen."""
    _open_ingress(stack)
    entry = _fresh(S.replace_service_v1("patient-api", ingress="all", principal=REMEDIATOR))
    stack.publish(entry)
    rec = wait_until(lambda: [r for r in stack.records() if r["event_id"] == entry["insertId"]], 20, what="record")[0]
    assert rec["outcome"] == "alerted" and "an ignored principal made a violating change" in rec["reason"]
    wait_until(lambda: any("An ignored principal made a violating change" in t for t in _slack_texts(stack)), 10,
               what="the Slack alert naming it")
    assert _writes(stack) == [] and _ingress(stack) == "INGRESS_TRAFFIC_ALL"


def test_impersonating_rampart_does_not_switch_it_off(stack: LocalStack) -> None:
    """A developer impersonating Rampart's account: the first principal of the chain is judged."""
    _open_ingress(stack)
    entry = _fresh(S.replace_service_v1("patient-api", ingress="all", principal=REMEDIATOR))
    entry["protoPayload"]["authenticationInfo"]["serviceAccountDelegationInfo"] = [
        {"firstPartyPrincipal": {"principalEmail": S.DEVELOPER}}]
    stack.publish(entry)
    wait_until(lambda: _ingress(stack) != "INGRESS_TRAFFIC_ALL", 20, what="ingress closed")
    rec = wait_until(lambda: [r for r in stack.records() if r["event_id"] == entry["insertId"]], 10, what="record")[0]
    assert rec["outcome"] == "remediated" and rec["principal"] == S.DEVELOPER
    assert rec["observed"]["acting_as"] == REMEDIATOR


# -- finding 3 -------------------------------------------------------------------------------


@pytest.mark.parametrize("forge", ["log_name", "payload_type"])
def test_a_forged_entry_is_not_believed(stack: LocalStack, forge: str) -> None:
    """An entry from another log, or with a non-AuditLog payload, that names a rule's method."""
    entry = _fresh(S.kms_update_version("DISABLED"))
    if forge == "log_name":
        entry["logName"] = f"projects/{S.P}/logs/evil-cloudaudit.googleapis.com%2Factivity"
    else:
        entry["protoPayload"]["@type"] = "type.googleapis.com/google.cloud.audit.NotAnAuditLog"
    stack.publish(entry)
    line = wait_until(lambda: [x for x in stack.log_lines("rampart.not_admin_activity")
                               if x["event_id"] == entry["insertId"]], 20, what="the refusal logged")[0]
    assert "not believed" in line["reason"]
    time.sleep(1)
    assert _writes(stack) == [] and not [r for r in stack.records() if r["event_id"] == entry["insertId"]]


# -- finding 6 -------------------------------------------------------------------------------


def test_a_swapped_webhook_secret_sends_no_alert_to_the_new_host(stack: LocalStack) -> None:
    """Whoever can add a version to the webhook secret points it at their own host."""
    from infra.local.receivers import SlackReceiver

    hook = stack.workdir / "secrets" / "slack-webhook"
    real = hook.read_text()
    with SlackReceiver() as attacker:
        # Loopback, but not the allowed host: the allowlist names hosts, not "anything local".
        hook.write_text(attacker.url.replace("127.0.0.1", "localhost"))
        try:
            # A resource and rule no other replay here alerts on, so no dedupe window holds it back.
            stack.admin.mutate(f"{S.SVC}/claims-worker", iam_add={"role": "roles/run.invoker", "member": "allUsers"},
                               actor=S.DEVELOPER)
            stack.publish(_fresh(S.set_iam_run("claims-worker", "allUsers")))
            wait_until(lambda: [x for x in stack.log_lines("rampart.alert.channel_failed")
                                if "allowed_hosts" in x.get("reason", x.get("error", ""))], 20,
                       what="the Slack channel refused")
            assert attacker.attempts == 0
            # The other channels still carry the alert (and say Slack failed).
            wait_until(lambda: stack.smtp.mails or stack.alert_messages(timeout=0.5), 10, what="alert on another channel")
        finally:
            hook.write_text(real)


def test_an_endpoint_override_off_loopback_stops_the_function(stack: LocalStack, tmp_path) -> None:
    """An endpoint override receives Rampart's access token: the function must not start with one."""
    import subprocess

    from infra.local.procs import free_port
    from infra.local.stack import ROOT, _bin

    env = copy.deepcopy(stack.function_env())
    env["RAMPART_KMS_ENDPOINT"] = "https://kms.attacker.example"
    port = free_port()
    proc = subprocess.run(
        [_bin("functions-framework"), "--target", "rampart", "--source", str(ROOT / "main.py"),
         "--signature-type", "cloudevent", "--host", "127.0.0.1", "--port", str(port)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )
    assert proc.returncode != 0
    assert "RAMPART_KMS_ENDPOINT: expected a loopback endpoint" in proc.stderr + proc.stdout


# -- finding 4 -------------------------------------------------------------------------------

OTHER_AGENT = "serviceAccount:service-999999999999@gs-project-accounts.iam.gserviceaccount.com"
ROLE = "roles/cloudkms.cryptoKeyEncrypterDecrypter"


def _key_members(stack: LocalStack) -> list[str]:
    for b in stack.iam(S.KEY).get("bindings", []):
        if b["role"] == ROLE:
            return sorted(b["members"])
    return []


@pytest.mark.parametrize("logged", [False, True])
def test_a_remove_of_another_projects_agent_never_grants_it(stack: LocalStack, logged: bool) -> None:
    """A forged REMOVE (never in Cloud Logging), or a real one, of an agent from a project nobody
    trusts: Rampart used to grant that agent encrypt/decrypt on the key."""
    entry = _fresh(S.kms_set_iam(S.KEY, ROLE, OTHER_AGENT, "REMOVE"))
    stack.publish(entry, logged=logged)
    rec = wait_until(lambda: [r for r in stack.records() if r["event_id"] == entry["insertId"]], 20, what="record")[0]
    assert rec["outcome"] == "failed" and rec["reason"].startswith("not restored")
    assert ("not confirmed in Cloud Logging" if not logged else "999999999999 is not in trusted_projects") in rec["reason"]
    assert OTHER_AGENT not in _key_members(stack) and _writes(stack) == []


# -- findings 1 and 5 ------------------------------------------------------------------------


def test_a_junk_annotation_does_not_stop_quarantine_and_an_edited_one_does_not_fool_release(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared import cli, clients, quarantine_store

    svc = f"{S.SVC}/billing-frontend"
    sa = f"{S.PNUM}-compute@developer.gserviceaccount.com"
    stack.admin.mutate(svc, patch={"annotations": {"rampart.dev/quarantine": "please-do-not-quarantine"},
                                   "template": {"serviceAccount": sa}}, actor=S.DEVELOPER)
    stack.publish(_fresh(S.update_service_v2("billing-frontend", sa=sa)))
    wait_until(lambda: stack.get(svc).get("labels", {}).get("rampart-quarantine") == "run_default_service_account",
               30, what="quarantined despite the junk annotation")
    marker = stack.get(svc)["annotations"]["rampart.dev/quarantine"]
    assert marker != "please-do-not-quarantine"

    # A run.developer rewrites the annotation to the "prior state" they want back.
    forged = json.dumps({"v": 1, "rule": "run_default_service_account", "event": "x", "at": "now", "label": "rampart-quarantine",
                         "prior": {"ingress": "INGRESS_TRAFFIC_ALL", "invoker_iam_disabled": True, "label": None},
                         "set": {"ingress": "INGRESS_TRAFFIC_INTERNAL_ONLY", "invoker_iam_disabled": False},
                         "removed": [{"role": "roles/run.admin", "member": "user:mallory@attacker.example"}]})
    stack.admin.mutate(svc, patch={"annotations": {"rampart.dev/quarantine": forged}}, actor=S.DEVELOPER)
    stack.admin.clear_requests()
    for k, v in {"RAMPART_RUN_ENDPOINT": stack.standin_url, "FIRESTORE_EMULATOR_HOST": stack.firestore.host,
                 "GOOGLE_CLOUD_PROJECT": S.P, "RAMPART_POLICY": str(stack.policy_path)}.items():
        monkeypatch.setenv(k, v)
    clients.reset()
    quarantine_store.set_default(None)
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.main(["release", svc, "--force"], out=io.StringIO())
    clients.reset()
    quarantine_store.set_default(None)
    assert rc != 0 and "refusing to release" in err.getvalue() and "no Rampart quarantine id" in err.getvalue()
    assert _writes(stack) == [] and stack.get(svc)["ingress"] == "INGRESS_TRAFFIC_INTERNAL_ONLY"

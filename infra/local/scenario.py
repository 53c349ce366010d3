"""The demo scenario: someone opens doors in the demo project, and audit entries say so.

Each step makes a change to the stand-in as a person would through the API (the door really
is open in the live state), then publishes the audit entry that change produces, shaped like
the real entries in tests/data/corpus (v1 ReplaceService, SetIamPolicy with a policyDelta, v2
UpdateService, KMS UpdateCryptoKeyVersion / DestroyCryptoKeyVersion / SetIamPolicy).
`compliant(stack)` says whether the live state is closed again.
"""

from __future__ import annotations

import itertools
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

P, L = "demo-project", "us-central1"
PNUM = "123456789012"
SVC = f"projects/{P}/locations/{L}/services"
RING = f"projects/{P}/locations/{L}/keyRings/demo-ring"
KEY = f"{RING}/cryptoKeys/phi-key"
VERSION = f"{KEY}/cryptoKeyVersions/1"
AGENT = f"serviceAccount:service-{PNUM}@gcp-sa-financialservices.iam.gserviceaccount.com"
DEVELOPER = "dev-on-call@demo-project.example"

_ids = itertools.count(1)


def _ts() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1e6) % 1_000_000:06d}Z"


def _entry(service: str, method: str, resource: str, request: dict[str, Any], *, principal: str = DEVELOPER,
           response: dict[str, Any] | None = None, service_data: dict[str, Any] | None = None,
           resource_type: str = "cloud_run_revision", labels: dict[str, str] | None = None,
           permission: str = "", operation: dict[str, Any] | None = None) -> dict[str, Any]:
    pp: dict[str, Any] = {
        "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "status": {},
        "authenticationInfo": {"principalEmail": principal, "principalSubject": f"user:{principal}"},
        "requestMetadata": {"callerIp": "gce-internal-ip", "callerSuppliedUserAgent": "google-cloud-sdk gcloud/528.0.0"},
        "serviceName": service,
        "methodName": method,
        "authorizationInfo": [{"resource": resource, "permission": permission, "granted": True,
                               "permissionType": "ADMIN_WRITE", "resourceAttributes": {}}],
        "resourceName": resource,
        "resourceLocation": {"currentLocations": [L]},
        "request": request,
    }
    if response is not None:
        pp["response"] = response
    if service_data is not None:
        pp["serviceData"] = service_data
    entry: dict[str, Any] = {
        "protoPayload": pp,
        "insertId": f"demo{next(_ids):06d}{int(time.time() * 1000) % 100000:05d}",
        "resource": {"type": resource_type, "labels": {"project_id": P, "location": L, **(labels or {})}},
        "timestamp": _ts(),
        "severity": "NOTICE",
        "logName": f"projects/{P}/logs/cloudaudit.googleapis.com%2Factivity",
        "receiveTimestamp": _ts(),
    }
    if operation:
        entry["operation"] = operation
    return entry


# -- audit entries, shaped like the corpus -----------------------------------------------------

def replace_service_v1(service: str, *, ingress: str = "all", sa: str | None = None,
                       invoker_iam_disabled: bool = False, principal: str = DEVELOPER) -> dict[str, Any]:
    """A v1 ReplaceService, like run/slackbot-replaceservice-success.json."""
    ann = {"run.googleapis.com/ingress": ingress, "run.googleapis.com/client-name": "gcloud"}
    if invoker_iam_disabled:
        ann["run.googleapis.com/invoker-iam-disabled"] = "true"
    body = {
        "apiVersion": "serving.knative.dev/v1", "kind": "Service",
        "metadata": {"name": service, "namespace": PNUM, "annotations": ann, "labels": {"cloud.googleapis.com/location": L}},
        "spec": {"template": {
            "metadata": {"annotations": {
                "run.googleapis.com/encryption-key": KEY,
                "run.googleapis.com/network-interfaces": '[{"network":"demo-vpc","subnetwork":"demo-run-us-central1"}]',
                "run.googleapis.com/vpc-access-egress": "private-ranges-only"}},
            "spec": {"serviceAccountName": sa or f"{service}@{P}.iam.gserviceaccount.com", "containerConcurrency": 80,
                     "containers": [{"image": f"us-central1-docker.pkg.dev/{P}/apps/{service}:1"}]}}},
    }
    return _entry("run.googleapis.com", "google.cloud.run.v1.Services.ReplaceService", f"namespaces/{P}/services/{service}",
                  {"@type": "type.googleapis.com/google.cloud.run.v1.ReplaceServiceRequest",
                   "name": f"{SVC}/{service}", "region": L, "service": body},
                  principal=principal, permission="run.services.update", labels={"service_name": service})


def update_service_v2(service: str, *, sa: str, principal: str = DEVELOPER) -> dict[str, Any]:
    """A v2 UpdateService (the `last` record of its long-running operation), per the v2 proto."""
    name = f"{SVC}/{service}"
    body = {"name": name, "ingress": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
            "template": {"serviceAccount": sa, "encryptionKey": KEY,
                         "vpcAccess": {"networkInterfaces": [{"network": "demo-vpc"}], "egress": "PRIVATE_RANGES_ONLY"},
                         "containers": [{"image": f"us-central1-docker.pkg.dev/{P}/apps/{service}:1"}]}}
    return _entry("run.googleapis.com", "google.cloud.run.v2.Services.UpdateService", name,
                  {"@type": "type.googleapis.com/google.cloud.run.v2.UpdateServiceRequest", "service": body},
                  principal=principal, permission="run.services.update", labels={"service_name": service},
                  operation={"id": f"projects/{P}/locations/{L}/operations/{next(_ids)}", "producer": "run.googleapis.com", "last": True})


def set_iam_run(service: str, member: str, *, action: str = "ADD", role: str = "roles/run.invoker",
                policy_members: list[str] | None = None, principal: str = DEVELOPER) -> dict[str, Any]:
    """A v1 SetIamPolicy on a service, like run/panther-gcp-cloud-run-set-iam-policy-*.json, with a policyDelta."""
    name = f"{SVC}/{service}"
    members = policy_members if policy_members is not None else [member]
    return _entry("run.googleapis.com", "google.cloud.run.v1.Services.SetIamPolicy", name,
                  {"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": name,
                   "policy": {"bindings": [{"role": role, "members": members}]}},
                  service_data={"@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                                "policyDelta": {"bindingDeltas": [{"action": action, "role": role, "member": member}]}},
                  principal=principal, permission="run.services.setIamPolicy")


def kms_update_version(state: str, *, principal: str = DEVELOPER, version: str = VERSION) -> dict[str, Any]:
    """UpdateCryptoKeyVersion, like cloudkms/panther-gcp-kms-erase-key-kms-key-version-disabled.json."""
    return _entry("cloudkms.googleapis.com", "UpdateCryptoKeyVersion", version,
                  {"@type": "type.googleapis.com/google.cloud.kms.v1.UpdateCryptoKeyVersionRequest",
                   "cryptoKeyVersion": {"name": version, "state": state}, "updateMask": "state"},
                  principal=principal, permission="cloudkms.cryptoKeyVersions.update", resource_type="cloudkms_cryptokeyversion")


def kms_destroy(destroy_time: str, *, principal: str = DEVELOPER, version: str = VERSION) -> dict[str, Any]:
    return _entry("cloudkms.googleapis.com", "DestroyCryptoKeyVersion", version,
                  {"@type": "type.googleapis.com/google.cloud.kms.v1.DestroyCryptoKeyVersionRequest", "name": version},
                  response={"@type": "type.googleapis.com/google.cloud.kms.v1.CryptoKeyVersion", "name": version,
                            "state": "DESTROY_SCHEDULED", "destroyTime": destroy_time},
                  principal=principal, permission="cloudkms.cryptoKeyVersions.destroy", resource_type="cloudkms_cryptokeyversion")


def kms_set_iam(resource: str, role: str, member: str, action: str, *, principal: str = DEVELOPER) -> dict[str, Any]:
    return _entry("cloudkms.googleapis.com", "SetIamPolicy", resource,
                  {"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": resource,
                   "policy": {"bindings": [], "version": 1}},
                  service_data={"@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
                                "policyDelta": {"bindingDeltas": [{"action": action, "role": role, "member": member}]}},
                  principal=principal, permission="cloudkms.cryptoKeys.setIamPolicy", resource_type="cloudkms_cryptokey")


def create_function(function: dict[str, Any], *, principal: str = DEVELOPER) -> dict[str, Any]:
    """The `operation.last` entry of a Cloud Functions v2 CreateFunction, like
    cloudfunctions/mybazaar-updatefunction-8mcj5xd2pm2.json: no request, the whole Function as response."""
    name = function["name"]
    entry = _entry("cloudfunctions.googleapis.com", "google.cloud.functions.v2.FunctionService.CreateFunction", name, {},
                   principal=principal, permission="cloudfunctions.functions.create", resource_type="cloud_function",
                   response={"@type": "type.googleapis.com/google.cloud.functions.v2.Function", **function},
                   labels={"function_name": name.rsplit("/", 1)[1], "region": L},
                   operation={"id": f"projects/{P}/locations/{L}/operations/operation-{next(_ids)}",
                              "producer": "cloudfunctions.googleapis.com", "last": True})
    del entry["protoPayload"]["request"]
    return entry


def noise() -> list[dict[str, Any]]:
    """Ordinary admin activity that concerns no rule."""
    return [
        _entry("compute.googleapis.com", "v1.compute.instances.stop", f"projects/{P}/zones/us-central1-a/instances/etl-1",
               {"@type": "type.googleapis.com/compute.instances.stop"}, resource_type="gce_instance"),
        _entry("iam.googleapis.com", "google.iam.admin.v1.CreateServiceAccount", f"projects/{P}/serviceAccounts/new-sa",
               {"account_id": "new-sa"}, resource_type="service_account"),
        replace_service_v1("patient-api", ingress="internal-and-cloud-load-balancing"),  # a compliant deploy
        _entry("storage.googleapis.com", "storage.buckets.create", "projects/_/buckets/demo-exports", {}, resource_type="gcs_bucket"),
    ]


# -- the scenario --------------------------------------------------------------------------------

def _post(url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    import json

    req = urllib.request.Request(url, data=json.dumps(body or {}).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return json.loads(resp.read() or b"{}")


@dataclass
class Step:
    name: str
    rule: str
    resource: str
    open_door: Callable[[Any], dict[str, Any]]  # makes the change, returns the audit entry it produced
    compliant: Callable[[Any], bool]
    expected_outcome: str
    describe: Callable[[Any], str] = field(default=lambda s: "")


def _members(stack: Any, name: str, role: str) -> list[str]:
    return [m for b in stack.iam(name).get("bindings", []) if b.get("role") == role for m in b.get("members", [])]


def steps() -> list[Step]:
    def ingress_open(stack: Any) -> dict[str, Any]:
        stack.admin.mutate(f"{SVC}/patient-api", patch={"ingress": "INGRESS_TRAFFIC_ALL"}, actor=DEVELOPER)
        return replace_service_v1("patient-api", ingress="all")

    def public_invoker(stack: Any) -> dict[str, Any]:
        stack.admin.mutate(f"{SVC}/claims-worker", iam_add={"role": "roles/run.invoker", "member": "allUsers"}, actor=DEVELOPER)
        return set_iam_run("claims-worker", "allUsers",
                           policy_members=["serviceAccount:claims-pubsub-push@demo-project.iam.gserviceaccount.com", "allUsers"])

    def default_sa(stack: Any) -> dict[str, Any]:
        sa = f"{PNUM}-compute@developer.gserviceaccount.com"
        stack.admin.mutate(f"{SVC}/billing-frontend", patch={"template": {"serviceAccount": sa}}, actor=DEVELOPER)
        return update_service_v2("billing-frontend", sa=sa)

    def disabled(stack: Any) -> dict[str, Any]:
        stack.admin.mutate(VERSION, patch={"state": "DISABLED"}, actor=DEVELOPER)
        return kms_update_version("DISABLED")

    def destroy(stack: Any) -> dict[str, Any]:
        v = _post(f"{stack.standin_url}/v1/{VERSION}:destroy")
        return kms_destroy(v.get("destroyTime", ""))

    def agent_removed(stack: Any) -> dict[str, Any]:
        stack.admin.mutate(KEY, iam_remove={"role": "roles/cloudkms.cryptoKeyEncrypterDecrypter", "member": AGENT}, actor=DEVELOPER)
        return kms_set_iam(KEY, "roles/cloudkms.cryptoKeyEncrypterDecrypter", AGENT, "REMOVE")

    def function_defaults(stack: Any) -> dict[str, Any]:
        # `gcloud functions deploy intake-hook --gen2 --trigger-http` with no network or identity flags.
        op = _post(f"{stack.standin_url}/v2/projects/{P}/locations/{L}/functions?functionId=intake-hook",
                   {"buildConfig": {"runtime": "python312", "entryPoint": "handle"}, "serviceConfig": {}})
        fn = {k: v for k, v in op["response"].items() if k != "@type"}
        return create_function(fn)

    fn_name = f"projects/{P}/locations/{L}/functions/intake-hook"

    def fn_ingress(s: Any) -> str:
        return str(s.get(fn_name).get("serviceConfig", {}).get("ingressSettings"))

    return [
        Step("a function deployed with the defaults (Cloud Functions v2 API)", "function_ingress_open", fn_name,
             function_defaults, lambda s: fn_ingress(s) == "ALLOW_INTERNAL_AND_GCLB", "remediated",
             lambda s: f"ingressSettings={fn_ingress(s)}"),
        Step("ingress opened to all", "run_ingress_open", f"{SVC}/patient-api", ingress_open,
             lambda s: s.get(f"{SVC}/patient-api").get("ingress") == "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER", "remediated",
             lambda s: f"ingress={s.get(f'{SVC}/patient-api').get('ingress')}"),
        Step("allUsers granted run.invoker", "run_public_invoker", f"{SVC}/claims-worker", public_invoker,
             lambda s: "allUsers" not in _members(s, f"{SVC}/claims-worker", "roles/run.invoker")
             and "serviceAccount:claims-pubsub-push@demo-project.iam.gserviceaccount.com" in _members(s, f"{SVC}/claims-worker", "roles/run.invoker"),
             "remediated", lambda s: f"run.invoker={_members(s, f'{SVC}/claims-worker', 'roles/run.invoker')}"),
        Step("deployed on the default compute service account", "run_default_service_account", f"{SVC}/billing-frontend", default_sa,
             lambda s: s.get(f"{SVC}/billing-frontend").get("labels", {}).get("rampart-quarantine") == "run_default_service_account"
             and s.get(f"{SVC}/billing-frontend").get("ingress") == "INGRESS_TRAFFIC_INTERNAL_ONLY", "quarantined",
             lambda s: f"labels={s.get(f'{SVC}/billing-frontend').get('labels')} ingress={s.get(f'{SVC}/billing-frontend').get('ingress')}"),
        Step("CMEK key version disabled", "kms_version_disabled", VERSION, disabled,
             lambda s: s.get(VERSION).get("state") == "ENABLED", "remediated",
             lambda s: f"state={s.get(VERSION).get('state')}"),
        Step("CMEK key version scheduled for destruction", "kms_version_destroy_scheduled", VERSION, destroy,
             lambda s: s.get(VERSION).get("state") == "ENABLED", "remediated",
             lambda s: f"state={s.get(VERSION).get('state')}"),
        Step("service agent's encrypter/decrypter removed", "kms_agent_binding_removed", KEY, agent_removed,
             lambda s: AGENT in _members(s, KEY, "roles/cloudkms.cryptoKeyEncrypterDecrypter"), "remediated",
             lambda s: f"encrypterDecrypter={_members(s, KEY, 'roles/cloudkms.cryptoKeyEncrypterDecrypter')}"),
    ]

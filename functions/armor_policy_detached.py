"""Cloud Armor taken away from a backend: a security policy detached from a backend service
(`backendServices.setSecurityPolicy` to none), or a policy's rules removed or changed to allow.
Behind `internal-and-cloud-load-balancing` ingress, Cloud Armor is what filters the internet
before a Cloud Run service's serverless NEG. Alert only: which rule is right is a human's call.

Every detach is alerted, whatever the backend fronts, at the rule's severity (HIGH): Cloud
Armor's docs list instance groups, zonal, internet and serverless NEGs alike as the backends a
security policy protects, and say a backend service without one is not protected
(https://cloud.google.com/armor/docs/security-policy-overview,
https://cloud.google.com/armor/docs/configure-security-policies), so a non-serverless backend is
not skipped. The alert says whether the backend fronts Cloud Run: the enrichment reads the
backend service and its network endpoint groups (Compute API v1 over REST: backendServices.get
or regionBackendServices.get, regionNetworkEndpointGroups.get; at most MAX_NEGS groups, each read
bounded by the operation timeout and all of them by one deadline) and lists the Cloud Run
services its serverless NEGs route to (`fronts_cloud_run`: true, false, or null when a read
failed). The severity is not raised from that answer: the pipeline fixes a finding's severity
before enrichment runs, and a policy can raise this rule's severity for every backend."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.model import Action, Finding, Severity
from shared.rules import Rule, finding
from shared.views.armor import ARMOR, COMPUTE, ArmorView

if TYPE_CHECKING:
    from shared.actions import ActionContext

COMPUTE_ENDPOINT_ENV = "RAMPART_COMPUTE_ENDPOINT"
MAX_NEGS = 10  # NEGs read per alert; a backend service fronts a few, one per region at most for serverless
# A backend's group, as a full URL (https://www.googleapis.com/compute/v1/projects/...): only a
# NEG path is read, and always at Rampart's own Compute endpoint, never at the URL's host.
_NEG_PATH = re.compile(r"/compute/v1/(projects/[^/?#]+/(?:regions|zones)/[^/?#]+/networkEndpointGroups/[^/?#]+)$")


@dataclass(frozen=True)
class Params:
    # Backend services or security policies (name patterns) whose changes are expected, e.g. a sandbox.
    ignore: tuple[str, ...] = ()


def check(view: ArmorView, params: Params) -> Finding | None:
    """The backend service has no security policy now, or rules were removed or made to allow."""
    from shared.rules import matches_any

    if matches_any(view.name, params.ignore):
        return None
    if view.detached:
        return finding(RULE, view, observed={"change": view.change, "security_policy": "(none)"})
    if view.weakened_rules:
        return finding(RULE, view, observed={"change": view.change, "rules": list(view.weakened_rules)},
                       title="Cloud Armor rules removed or weakened")
    return None


def compute_rest() -> tuple[Any, str]:
    from shared import clients

    return clients.rest(COMPUTE_ENDPOINT_ENV, "https://compute.googleapis.com")


def _short(value: Any) -> str:
    return value[:300] if isinstance(value, str) else ""


def enrich(finding: Finding, params: Params, ctx: ActionContext) -> dict[str, Any]:
    """Whether the detached backend service fronts Cloud Run: its serverless NEGs and the
    services they route to. Rule-change findings (a security policy, not a backend) read nothing.

    IAM permissions: compute.backendServices.get, compute.regionBackendServices.get,
    compute.networkEndpointGroups.get, compute.regionNetworkEndpointGroups.get.
    """
    from shared.actions import error_message, read_timeout, rest_call
    from shared.event import pick_dict, pick_list, pick_str

    if finding.resource_type != "compute.backendService":
        return {}
    timeout = read_timeout(ctx.operation_timeout)
    deadline = time.monotonic() + timeout
    api = compute_rest()
    try:
        backend = rest_call(api, "GET", f"compute/v1/{finding.resource}", timeout)
    except Exception as exc:  # noqa: BLE001 — best effort: the alert goes out without it
        return {"fronts_cloud_run": None, "read_error": f"{type(exc).__name__}: {error_message(exc)}"}
    groups = [pick_str(b, "group") for b in pick_list(backend, "backends")]
    negs = [m.group(1) for m in (_NEG_PATH.search(g) for g in groups) if m]
    cloud_run: list[dict[str, str]] = []
    errors: list[str] = []
    for neg in negs[:MAX_NEGS]:
        left = deadline - time.monotonic()
        if left <= 0:
            errors.append(f"{neg}: not read (time budget spent)")
            continue
        try:
            body = rest_call(api, "GET", f"compute/v1/{neg}", min(timeout, left))
        except Exception as exc:  # noqa: BLE001 — one unreadable NEG must not hide the others
            errors.append(f"{neg}: {type(exc).__name__}: {error_message(exc)}")
            continue
        run = pick_dict(body, "cloudRun")
        if pick_str(body, "networkEndpointType") == "SERVERLESS" and run:
            cloud_run.append({"neg": neg, "service": _short(pick_str(run, "service")), "url_mask": _short(pick_str(run, "urlMask"))})
    if len(negs) > MAX_NEGS:
        errors.append(f"{len(negs) - MAX_NEGS} more NEGs not read")
    out: dict[str, Any] = {
        "fronts_cloud_run": True if cloud_run else (None if errors else False),
        "cloud_run": cloud_run,
        "backends": len(groups),
        "negs": len(negs),
    }
    if errors:
        out["read_errors"] = errors
    return out


RULE = Rule(
    id="armor_policy_detached",
    title="Cloud Armor security policy detached from a backend",
    severity=Severity.HIGH,
    kind=ARMOR,
    triggers=tuple((COMPUTE, f"v1.compute.{m}") for m in (
        "backendServices.setSecurityPolicy", "securityPolicies.removeRule", "securityPolicies.patchRule",
        "securityPolicies.addRule", "securityPolicies.patch",
    )),
    action=Action.ALERT,
    actions=(Action.ALERT,),
    # The enrichment's reads (whether the backend fronts Cloud Run).
    permissions={"alert": ("compute.backendServices.get", "compute.regionBackendServices.get",
                           "compute.networkEndpointGroups.get", "compute.regionNetworkEndpointGroups.get")},
    check=check,
    params=Params,
    enrich=enrich,
    why="Every detach is alerted at this severity, and the alert says whether the backend fronts Cloud Run: Cloud Armor filters traffic at the load balancer in front of any backend, serverless NEGs included, and a backend service without a policy is not protected (https://cloud.google.com/armor/docs/security-policy-overview).",
)

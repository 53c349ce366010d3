"""Cloud Armor taken away from a backend: a security policy detached from a backend service
(`backendServices.setSecurityPolicy` to none), or a policy's rules removed or changed to allow.
Behind `internal-and-cloud-load-balancing` ingress, Cloud Armor is what filters the internet
before a Cloud Run service's serverless NEG. Alert: every detach is reported (whether the
backend fronts a serverless NEG is not looked up), and which rule is right is a human's call."""

from __future__ import annotations

from dataclasses import dataclass

from shared.model import Action, Finding, Severity
from shared.rules import Rule, finding
from shared.views.armor import ARMOR, COMPUTE, ArmorView


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
    permissions={},
    check=check,
    params=Params,
    why="Cloud Armor security policies filter traffic at the load balancer in front of serverless NEGs (https://cloud.google.com/armor/docs/security-policy-overview).",
)

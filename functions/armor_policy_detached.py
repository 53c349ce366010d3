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
before enrichment runs, and a policy can raise this rule's severity for every backend.

Revert (`mode: enforce` with `action: revert`; the shipped policy keeps the rule alert only): a
detach is undone by attaching again the policy the backend had before, see `remediate`. Rule
changes inside a policy stay alert only: which rule is right is a human's call."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.event import pick, pick_list, pick_str
from shared.model import Action, Finding, Severity
from shared.rules import Rule, finding
from shared.views.armor import ARMOR, COMPUTE, SET_POLICY, ArmorView

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.event import AuditEvent
    from shared.model import ActionRecord

COMPUTE_ENDPOINT_ENV = "RAMPART_COMPUTE_ENDPOINT"
MAX_NEGS = 10  # NEGs read per alert; a backend service fronts a few, one per region at most for serverless
# A backend's group, as a full URL (https://www.googleapis.com/compute/v1/projects/...): only a
# NEG path is read, and always at Rampart's own Compute endpoint, never at the URL's host.
_NEG_PATH = re.compile(r"/compute/v1/(projects/[^/?#]+/(?:regions|zones)/[^/?#]+/networkEndpointGroups/[^/?#]+)$")
# A security policy as an entry or a backend service names it: a Compute URL or path, project
# id or number, global or a region, an RFC 1035 name. Nothing else is ever attached.
_SCOPE = r"projects/([a-z][a-z0-9-]{4,28}[a-z0-9]|[0-9]{1,20})/(global|regions/[a-z][a-z0-9-]{0,62})"
_NAME = r"[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?"
_POLICY_REF = re.compile(
    rf"(?:https://(?:www|compute)\.googleapis\.com/compute/(?:v1|beta|alpha)/)?{_SCOPE}/securityPolicies/({_NAME})")
# The backends a revert writes to (fullmatch): the same strict shape, so only such a path is
# ever put in the Compute URL it reads and writes (a domain-scoped project id is alerted only).
_BACKEND_REF = re.compile(rf"{_SCOPE}/backendServices/{_NAME}")
SELF_LINK = "https://www.googleapis.com/compute/v1/"
HISTORY_LIMIT = 50  # Admin Activity entries on the backend read to find the policy it had
POLL_SECONDS = 1.0  # between reads of the backend while its setSecurityPolicy operation runs


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
    from shared.event import pick_dict

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


def policy_link(ref: str, backend: str) -> str | None:
    """The canonical URL of the security policy `ref` names, when it is one a revert may attach
    to `backend`: in the backend's project and scope (global with global, the same region with a
    region), matched whole by a strict pattern. None for anything else (another project, host or
    shape): an entry's string is never sent on as it came."""
    m, b = _POLICY_REF.fullmatch(ref or ""), _BACKEND_REF.fullmatch(backend)
    if m is None or b is None or (m.group(1), m.group(2)) != (b.group(1), b.group(2)):
        return None
    return f"{SELF_LINK}projects/{m.group(1)}/{m.group(2)}/securityPolicies/{m.group(3)}"


def prior_policy(entries: list[AuditEvent], detach: AuditEvent) -> tuple[str, str]:
    """(the policy the backend had just before `detach`, the evidence), from Cloud Logging's
    Admin Activity entries on the backend, newest first (shared.audit_confirm.history); ("", why)
    when they do not show one. The detach entry names no prior policy (a setSecurityPolicy logs
    only its SecurityPolicyReference, the response only the Operation), and a policy is attached
    by setSecurityPolicy only (BackendService.securityPolicy is output only), so the last
    setSecurityPolicy before the detach says what was there."""
    ids = [e.insert_id for e in entries]
    if detach.insert_id not in ids:
        return "", f"Cloud Logging's history of the backend does not hold the detach entry {detach.insert_id}"
    for e in entries[ids.index(detach.insert_id) + 1:]:
        if e.operation_last and not e.operation_first:
            continue  # an operation's end: no request body
        if e.method.split("compute.", 1)[-1] not in SET_POLICY:
            continue
        policy = pick_str(e.request, "securityPolicy")
        if not policy:
            return "", f"the setSecurityPolicy before it (entry {e.insert_id}, {e.timestamp}) detached too: nothing to put back"
        return policy, f"attached by {e.actor or 'someone'} at {e.timestamp} (entry {e.insert_id})"
    return "", f"Cloud Logging holds no earlier setSecurityPolicy on the backend (last {HISTORY_LIMIT} entries read)"


def confirmed_prior_policy(finding: Finding, params: Params) -> tuple[str | None, str]:
    """(the canonical URL to attach, the evidence) or (None, why not): the detach entry as Cloud
    Logging holds it (never the one delivered), then the policy its history shows before it."""
    from shared.audit_confirm import Unconfirmed, history, lookup

    if not finding.event_id:
        return None, "no audit entry to confirm (found by a sweep): a human decides"
    try:
        held = lookup(finding.project, finding.event_id, finding.timestamp)
        if (held.method, held.resource_name, held.actor) != (finding.method, finding.resource, finding.principal):
            raise Unconfirmed(f"Cloud Logging's entry {finding.event_id} does not match the one delivered")
        again = RULE.evaluate(held, params)
        if again is None or again.resource_type != "compute.backendService":
            raise Unconfirmed(f"Cloud Logging's entry {finding.event_id} does not detach a policy")
        ref, evidence = prior_policy(history(finding.project, finding.resource, until=held.timestamp,
                                             limit=HISTORY_LIMIT), held)
    except Unconfirmed as exc:
        return None, f"the audit entry is not confirmed in Cloud Logging ({exc})"
    if not ref:
        return None, evidence
    link = policy_link(ref, finding.resource)
    if link is None:
        return None, (f"the earlier policy ({evidence}; {len(ref)} characters, not echoed) is not a security policy of the "
                      "backend's own project and scope: a human decides")
    return link, evidence


def _same_policy(a: str, b: str) -> bool:
    m, n = _POLICY_REF.fullmatch(a or ""), _POLICY_REF.fullmatch(b or "")
    return m is not None and n is not None and m.groups() == n.groups()


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Attach again the security policy a backend service had before it was detached, when the
    detach entry is confirmed in Cloud Logging and Cloud Logging's history of the backend shows
    which policy that was (a policy of the backend's own project and scope); and only while the
    live backend still has none. Rule changes inside a policy are alerted, never changed.

    setSecurityPolicy takes only `{securityPolicy}`: no fingerprint or etag can guard it
    (compute.v1.json), so the live backend is read just before and after the write, both
    fingerprints are recorded, and a policy someone else attaches meanwhile is left as it is; the
    window in which a concurrent attach could be replaced is the one write's round trip.

    IAM permissions: compute.backendServices.get, compute.backendServices.setSecurityPolicy,
    compute.securityPolicies.use (global backends); compute.regionBackendServices.get,
    compute.regionBackendServices.setSecurityPolicy, compute.regionSecurityPolicies.use
    (regional ones); logging.logEntries.list.
    """
    from shared.actions import read_timeout, record, rest_call
    from shared.model import Change, Outcome

    if finding.resource_type != "compute.backendService":
        return record(finding, ctx, Outcome.ALERTED, reason="rules changed inside a security policy: alert only, "
                      "a human decides which rule is right")
    if not _BACKEND_REF.fullmatch(finding.resource):
        return record(finding, ctx, Outcome.FAILED, reason="not reattached: the backend service's name is not one Rampart "
                      "writes to (projects/P/{global|regions/R}/backendServices/NAME): a human decides")
    timeout = read_timeout(ctx.operation_timeout)
    api = compute_rest()
    path = f"compute/v1/{finding.resource}"
    live = rest_call(api, "GET", path, timeout)
    before = _facts(live)
    if pick_str(live, "securityPolicy"):
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, reason=_AGAIN)
    policy, evidence = confirmed_prior_policy(finding, params)
    if policy is None:
        return record(finding, ctx, Outcome.FAILED, before=before, reason=f"not reattached: {evidence}")
    change = Change("securityPolicy", "(none)", policy)
    if ctx.dry_run:
        return record(finding, ctx, Outcome.DRY_RUN, changes=[change], before=before,
                      after={"security_policy": policy}, reason=f"would reattach the policy {evidence}")
    live = rest_call(api, "GET", path, timeout)  # again: confirming took a while, and no fingerprint guards the write
    before = _facts(live)
    if pick_str(live, "securityPolicy"):
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, reason=_AGAIN)
    op = rest_call(api, "POST", f"{path}/setSecurityPolicy", timeout, json={"securityPolicy": policy})
    error = pick(op, "error")
    if error:
        codes = ", ".join(_short(pick_str(e, "code"))[:60] for e in pick_list(error, "errors")) or "no code"
        return record(finding, ctx, Outcome.FAILED, before=before, attempts=1, reason=f"setSecurityPolicy failed: {codes}")
    after, now = _await_policy(api, path, ctx, timeout)
    scope = finding.resource.split("/")[2]
    where = "--global" if scope == "global" else f"--region={finding.location}"
    undo = (f"gcloud compute backend-services update {finding.resource.rsplit('/', 1)[-1]} {where} "
            f"--project={finding.project} --security-policy=''  # add an exemption first, or Rampart attaches it again")
    facts = _facts(after)
    if _same_policy(now, policy):
        return record(finding, ctx, Outcome.REMEDIATED, changes=[change], before=before, after=facts, attempts=1,
                      undo=undo, reason=f"reattached the policy {evidence}")
    if now:
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=facts, attempts=1,
                      reason="another security policy was attached meanwhile: left as it is")
    return record(finding, ctx, Outcome.FAILED, before=before, after=facts, attempts=1,
                  reason=f"setSecurityPolicy was sent but the backend shows no policy after {ctx.operation_timeout:g}s")


_AGAIN = "the backend service has a security policy again: left as it is"


def _facts(backend: Any) -> dict[str, str]:
    """What a record says of a backend service: its policy and fingerprint."""
    return {"security_policy": pick_str(backend, "securityPolicy") or "(none)", "fingerprint": pick_str(backend, "fingerprint")}


def _await_policy(api: tuple[Any, str], path: str, ctx: ActionContext, timeout: float) -> tuple[Any, str]:
    """The backend service as read once its policy shows (or the operation budget is spent)."""
    from shared.actions import rest_call

    deadline = time.monotonic() + ctx.operation_timeout
    while True:
        live = rest_call(api, "GET", path, timeout)
        now = pick_str(live, "securityPolicy")
        if now or time.monotonic() + POLL_SECONDS > deadline:
            return live, now
        time.sleep(POLL_SECONDS)


RULE = Rule(
    id="armor_policy_detached",
    title="Cloud Armor security policy detached from a backend",
    severity=Severity.HIGH,
    kind=ARMOR,
    triggers=tuple((COMPUTE, f"v1.compute.{m}") for m in (
        *SET_POLICY, "securityPolicies.removeRule", "securityPolicies.patchRule",
        "securityPolicies.addRule", "securityPolicies.patch",
    )),
    # Alert unless the policy chooses revert: a `--stage dry-run` deploy (every rule capped at
    # dry-run) then grants no Cloud Armor write, and reattaching is a choice a team makes.
    action=Action.ALERT,
    actions=(Action.ALERT, Action.REVERT),
    permissions={
        # The enrichment's reads (whether the backend fronts Cloud Run).
        "alert": ("compute.backendServices.get", "compute.regionBackendServices.get",
                  "compute.networkEndpointGroups.get", "compute.regionNetworkEndpointGroups.get"),
        # Reattaching the earlier policy, justified by Cloud Logging (remediate's docstring).
        "revert": ("compute.backendServices.get", "compute.backendServices.setSecurityPolicy", "compute.securityPolicies.use",
                   "compute.regionBackendServices.get", "compute.regionBackendServices.setSecurityPolicy",
                   "compute.regionSecurityPolicies.use", "logging.logEntries.list"),
    },
    check=check,
    params=Params,
    remediate=remediate,
    enrich=enrich,
    why=(
        "Every detach is alerted at this severity, and the alert says whether the backend fronts Cloud Run (with action "
        "revert, the policy Cloud Logging shows it had is attached again): Cloud Armor filters traffic at the load balancer in front "
        "of any backend, serverless NEGs included, and a backend service without a policy is not protected "
        "(https://cloud.google.com/armor/docs/security-policy-overview)."
    ),
)

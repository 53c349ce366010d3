"""Someone changed Rampart's own plumbing: its log sink (filter, destination, exclusions,
deletion), its Pub/Sub topics and subscriptions (push endpoint, dead-letter settings, deletion),
its functions and their IAM, its service accounts and custom roles, and its service accounts'
grants at the watched project, folder or organization. Each silently blinds or
disarms Rampart, so each is a critical tamper alert. Rampart's own service accounts never get
here (ignored principals). A sink whose filter or destination was changed by anyone but
Rampart's deploy identities is put back: the filter is `python main.py sink-filter`'s, the
destination the policy's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.model import Action, Finding, Severity
from shared.rules import FUNCTIONS, RUN, Rule, finding, matches_any
from shared.views.plumbing import PLUMBING, PlumbingView

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord

LOGGING, PUBSUB, IAM = "logging.googleapis.com", "pubsub.googleapis.com", "iam.googleapis.com"


@dataclass(frozen=True)
class Params:
    # Rampart's resources, as shell patterns on the last part of their names (what deploy.sh creates).
    sinks: tuple[str, ...] = ("rampart-audit*",)
    topics: tuple[str, ...] = ("rampart-*",)
    subscriptions: tuple[str, ...] = ("rampart-*",)
    functions: tuple[str, ...] = ("rampart", "rampart-*")
    service_accounts: tuple[str, ...] = ("rampart-*@*",)
    roles: tuple[str, ...] = ("rampart*",)
    # Who may change them (shell patterns on principalEmail): the identity deploy.sh runs as.
    deploy_identities: tuple[str, ...] = ()
    # What the sink must send to, when restored: pubsub.googleapis.com/projects/P/topics/rampart-audit.
    sink_destination: str = ""


_PATTERNS = {"sink": "sinks", "topic": "topics", "subscription": "subscriptions", "function": "functions",
             "service": "functions", "serviceAccount": "service_accounts", "role": "roles"}


def is_rampart(view: PlumbingView, params: Params) -> bool:
    field = _PATTERNS.get(view.kind)
    if field is None:
        return False
    patterns: tuple[str, ...] = getattr(params, field)
    return matches_any(view.name.rsplit("/", 1)[-1], patterns)


def check(view: PlumbingView, params: Params) -> Finding | None:
    """The write touched one of Rampart's own resources, or took a grant from its service accounts."""
    if view.kind == "iamPolicy":
        lost = [{"role": r, "member": m} for r, m in view.removed
                if m.startswith("serviceAccount:") and matches_any(m.split(":", 1)[1], params.service_accounts)]
        if not lost:
            return None
        return finding(RULE, view, observed={"kind": "iamPolicy", "change": view.change, "lost_grants": lost},
                       title=f"{RULE.title}: Rampart's service account lost a role")
    if not is_rampart(view, params):
        return None
    observed: dict[str, object] = {"kind": view.kind, "change": view.change, "deleted": view.deleted,
                                   "fields": list(view.fields)[:20]}
    if view.push_endpoint is not None:
        observed["push_endpoint"] = view.push_endpoint[:200]
    if view.destination is not None:
        observed["destination"] = view.destination[:200]
    return finding(RULE, view, observed=observed, title=f"{RULE.title}: {view.kind} {view.change}")


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Put a tampered sink's filter (and destination) back, unless a deploy identity made the change.

    IAM permissions: logging.sinks.get, logging.sinks.update on the sink's project, folder or organization.
    """
    from shared.actions import record
    from shared.model import Outcome
    from shared.plumbing_actions import restore_sink

    if finding.observed.get("kind") != "sink" or finding.observed.get("deleted"):
        return record(finding, ctx, Outcome.ALERTED, reason="no automatic fix for this change: a human decides")
    if finding.principal and matches_any(finding.principal, params.deploy_identities):
        return record(finding, ctx, Outcome.ALERTED, reason="changed by a deploy identity: not restored")
    return restore_sink(finding, ctx, destination=params.sink_destination)


def _m(service: str, *methods: str) -> tuple[tuple[str, str], ...]:
    return tuple((service, m) for m in methods)


RULE = Rule(
    id="rampart_tamper",
    title="Rampart's own plumbing changed",
    severity=Severity.CRITICAL,
    kind=PLUMBING,
    triggers=(
        _m(LOGGING, *(f"google.logging.v2.ConfigServiceV2.{m}" for m in ("UpdateSink", "DeleteSink")))
        + _m(PUBSUB, *(f"google.pubsub.v1.Publisher.{m}" for m in ("UpdateTopic", "DeleteTopic")),
             *(f"google.pubsub.v1.Subscriber.{m}" for m in ("UpdateSubscription", "DeleteSubscription", "ModifyPushConfig",
                                                           "DetachSubscription")),
             "google.iam.v1.IAMPolicy.SetIamPolicy")
        + _m(FUNCTIONS, *(f"google.cloud.functions.v2.FunctionService.{m}" for m in ("UpdateFunction", "DeleteFunction",
                                                                                    "SetIamPolicy")))
        + _m(RUN, "google.cloud.run.v2.Services.DeleteService", "google.cloud.run.v1.Services.DeleteService",
             "google.cloud.run.v2.Services.SetIamPolicy", "google.cloud.run.v1.Services.SetIamPolicy",
             "google.cloud.run.v2.Services.UpdateService", "google.cloud.run.v1.Services.ReplaceService")
        + _m("cloudresourcemanager.googleapis.com", "SetIamPolicy", "google.cloud.resourcemanager.v3.Projects.SetIamPolicy",
             "google.cloud.resourcemanager.v3.Folders.SetIamPolicy", "google.cloud.resourcemanager.v3.Organizations.SetIamPolicy")
        + _m(IAM, *(f"google.iam.admin.v1.{m}" for m in ("DeleteServiceAccount", "DisableServiceAccount",
                                                        "CreateServiceAccountKey", "SetIAMPolicy", "UpdateRole", "DeleteRole")))
    ),
    action=Action.RESTORE,
    actions=(Action.RESTORE, Action.ALERT),
    permissions={"restore": ("logging.sinks.get", "logging.sinks.update")},
    check=check,
    params=Params,
    remediate=remediate,
    why="A sink's filter, destination and exclusions decide which entries leave the project at all (https://cloud.google.com/logging/docs/export/configure_export_v2).",
)

"""What a rule is: `locate` an entry's resource, `check` its state, and what it may do about it.

A rule is a module in `functions/` named by its id, holding a `Params` dataclass (its tunable
parameters, with defaults) and `RULE = Rule(...)`. Its `check(view, params) -> Finding | None`
is pure and judges a typed view of a resource's *state* (`shared.views`), never an audit entry:
the same state gives the same finding whether it came from an entry, a live read or an Asset
Inventory record. An entry only locates the resource (`Rule.locate`) and says who changed it,
how and when (`Origin`), which the pipeline writes onto the finding (`attribute`).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from shared.model import Action, D, Finding, Severity

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.event import AuditEvent
    from shared.model import ActionRecord
    from shared.views import Kind
    from shared.views.iam import IamDelta
    from shared.views.run import EnvVar

RUN = "run.googleapis.com"
KMS = "cloudkms.googleapis.com"

ENCRYPTER_DECRYPTER = "roles/cloudkms.cryptoKeyEncrypterDecrypter"

# Cloud Run Admin API methods that carry a whole Service in the request (v1 and v2).
RUN_SERVICE_WRITES: tuple[tuple[str, str], ...] = (
    (RUN, "google.cloud.run.v1.Services.CreateService"),
    (RUN, "google.cloud.run.v1.Services.ReplaceService"),
    (RUN, "google.cloud.run.v2.Services.CreateService"),
    (RUN, "google.cloud.run.v2.Services.UpdateService"),
)
RUN_SET_IAM: tuple[tuple[str, str], ...] = (
    (RUN, "google.cloud.run.v1.Services.SetIamPolicy"),
    (RUN, "google.cloud.run.v2.Services.SetIamPolicy"),
)
KMS_SET_IAM: tuple[tuple[str, str], ...] = ((KMS, "SetIamPolicy"),)

# Cloud Run functions made with the Cloud Functions v2 API (its audit entries' method names).
FUNCTIONS = "cloudfunctions.googleapis.com"
FUNCTION_WRITES: tuple[tuple[str, str], ...] = (
    (FUNCTIONS, "google.cloud.functions.v2.FunctionService.CreateFunction"),
    (FUNCTIONS, "google.cloud.functions.v2.FunctionService.UpdateFunction"),
)
FUNCTION_SET_IAM: tuple[tuple[str, str], ...] = (
    (FUNCTIONS, "google.cloud.functions.v2.FunctionService.SetIamPolicy"),
    (FUNCTIONS, "google.cloud.functions.v1.CloudFunctionsService.SetIamPolicy"),  # the corpus's real entry
)
# Cloud Run jobs (v1 Knative and v2) and worker pools (v2).
RUN_WORKLOAD_WRITES: tuple[tuple[str, str], ...] = (
    (RUN, "google.cloud.run.v1.Jobs.CreateJob"),
    (RUN, "google.cloud.run.v1.Jobs.ReplaceJob"),
    (RUN, "google.cloud.run.v2.Jobs.CreateJob"),
    (RUN, "google.cloud.run.v2.Jobs.UpdateJob"),
    (RUN, "google.cloud.run.v2.WorkerPools.CreateWorkerPool"),
    (RUN, "google.cloud.run.v2.WorkerPools.UpdateWorkerPool"),
)
RUN_WORKLOAD_SET_IAM: tuple[tuple[str, str], ...] = (
    (RUN, "google.cloud.run.v1.Jobs.SetIamPolicy"),
    (RUN, "google.cloud.run.v2.Jobs.SetIamPolicy"),
    (RUN, "google.cloud.run.v2.WorkerPools.SetIamPolicy"),
)
# IAM above the resource: Resource Manager v1 logs the bare method name, v3 the full one.
CRM = "cloudresourcemanager.googleapis.com"
HIERARCHY_SET_IAM: tuple[tuple[str, str], ...] = (
    (CRM, "SetIamPolicy"),
    (CRM, "google.cloud.resourcemanager.v3.Projects.SetIamPolicy"),
    (CRM, "google.cloud.resourcemanager.v3.Folders.SetIamPolicy"),
    (CRM, "google.cloud.resourcemanager.v3.Organizations.SetIamPolicy"),
)


class View(Protocol):
    """What every view offers a finding: where the resource is."""

    @property
    def name(self) -> str: ...
    @property
    def project(self) -> str: ...
    @property
    def location(self) -> str: ...
    @property
    def resource_type(self) -> str: ...


class RuntimeView(View, Protocol):
    """What the Cloud Run runtime rules judge, whatever runs it: a service's template, a job's
    or worker pool's, a function's (default service account, region, CMEK, plain credentials,
    VPC egress). Those rules judge any of them with the same code."""

    @property
    def service_account(self) -> str: ...
    @property
    def encryption_key(self) -> str: ...
    @property
    def vpc_connector(self) -> str: ...
    @property
    def vpc_egress(self) -> str: ...
    @property
    def has_vpc_access(self) -> bool: ...
    @property
    def env(self) -> tuple[EnvVar, ...]: ...


@dataclass(frozen=True, slots=True)
class Origin:
    """The audit entry that located a resource: who changed it, with which method, when, and
    for a SetIamPolicy the bindings its delta added and removed. Kept whole for the record (and
    for the trust work: a write justified only by history needs the confirmed entry)."""

    entry: AuditEvent

    @property
    def principal(self) -> str:
        """Who is judged: with impersonation, the first principal of the delegation chain."""
        return self.entry.actor

    @property
    def method(self) -> str:
        return self.entry.method

    @property
    def event_id(self) -> str:
        return self.entry.event_id

    @property
    def timestamp(self) -> str:
        return self.entry.timestamp

    @property
    def delta(self) -> IamDelta | None:
        """What the entry's policyDelta says was added and removed (None: it has none)."""
        from shared.views.iam import delta_of

        return delta_of(self.entry)


@dataclass(frozen=True, slots=True)
class Located:
    """The resource an entry concerns (canonical name) and what the entry says about it."""

    name: str
    origin: Origin


Remediate = Callable[[Finding, Any, "ActionContext"], "ActionRecord"]
Enrich = Callable[[Finding, Any, "ActionContext"], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Rule:
    """A rule: what it watches (entry methods and, through its kind, asset types), how it judges
    a view, what it may do about a finding and what that needs."""

    id: str
    title: str
    severity: Severity
    kind: Kind[Any]  # the view it judges (shared.views): run.SERVICE, kms.KEY_VERSION, iam.POLICY, ...
    triggers: tuple[tuple[str, str], ...]  # (serviceName, methodName) of the entries that locate its resource
    check: Callable[[Any, Any], Finding | None]  # pure: (view, params) -> Finding | None
    params: type  # a frozen dataclass; its defaults are the HIPAA profile
    action: Action  # what it does in enforce mode
    actions: tuple[Action, ...]  # every action the policy may choose for it
    permissions: Mapping[str, tuple[str, ...]]  # action → IAM permissions it needs
    why: str  # one line: why it matters, with the Google Cloud documentation page that says so
    remediate: Remediate | None = None  # re-reads live state and acts; None: alert only
    enrich: Enrich | None = None  # extra, log-safe facts for the alert (best effort)

    @property
    def resource_type(self) -> str:
        """The kind of view the rule judges (run.service, kms.cryptoKeyVersion, iam.policy, ...)."""
        return self.kind.name

    @property
    def asset_types(self) -> tuple[str, ...]:
        """The Cloud Asset Inventory asset types whose records this rule judges."""
        return self.kind.asset_types

    def locate(self, event: AuditEvent) -> Located | None:
        """The resource `event` concerns, and who changed it how and when; None if it names none."""
        name = self.kind.locate(event)
        return Located(name, Origin(event)) if name else None

    def evaluate(
        self, event: AuditEvent, params: Any, seen: dict[str, tuple[Located | None, Any]] | None = None
    ) -> Finding | None:
        """Locate, build the view the entry describes, check it, and attribute the finding to the
        entry. `seen` shares, between the rules one entry triggers, what it locates and the view
        it describes, per kind (seven Run rules read one service)."""
        got = seen.get(self.kind.name) if seen is not None else None
        if got is None:
            located = self.locate(event)
            got = (located, self.kind.from_entry(event, located.name) if located is not None else None)
            if seen is not None:
                seen[self.kind.name] = got
        located, view = got
        if located is None or view is None:
            return None
        found = self.check(view, params)
        return attribute(found, located.origin) if found is not None else None


def finding(
    rule: Rule,
    view: View,
    *,
    observed: dict[str, Any],
    title: str | None = None,
    action: Action | None = None,
    detail: D | None = None,
) -> Finding[D]:
    """A Finding of `rule` on the resource `view` shows; who and when are filled in by `attribute`
    when an entry located it (a sweep's finding has no principal). `detail` is what the rule's
    remediation needs, typed (not parsed back out of the alert-facing `observed`)."""
    return Finding(
        rule=rule.id,
        severity=rule.severity,
        title=title or rule.title,
        resource=view.name,
        resource_type=view.resource_type,
        project=view.project,
        location=view.location,
        principal="",
        action=action or rule.action,
        event_id="",
        method="",
        timestamp="",
        observed=observed,
        detail=detail,
    )


def attribute(found: Finding[D], origin: Origin) -> Finding[D]:
    """`found` (a finding `check` has just made, not yet shared), saying who made the change,
    with which method and entry, and when. Set in place: a frozen Finding costs ~7 µs to build
    on the reference machine, and a relevant entry would otherwise build each finding twice."""
    e = origin.entry
    for name, value in (("principal", e.actor), ("event_id", e.event_id), ("method", e.method), ("timestamp", e.timestamp)):
        object.__setattr__(found, name, value)
    if e.actor != e.principal:  # impersonation: the account it acted as, for the record
        object.__setattr__(found, "observed", {**found.observed, "acting_as": e.principal})
    return found


def matches_any(value: str, patterns: tuple[str, ...] | list[str]) -> bool:
    """Shell-style pattern match (`*`, `?`), case-sensitive, as in the policy file."""
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)

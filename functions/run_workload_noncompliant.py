"""A Cloud Run job or worker pool (v1 `Jobs.*`, v2 `Jobs.*`, v2 `WorkerPools.*`) that breaks what
a service may not: the default compute service account, a region outside the approved ones, no
CMEK key in its region, credentials in plain environment variables, VPC egress that is not
private-ranges-only. The same judgements as the run_* service rules, one finding listing every
problem. Alert only: a job has no ingress to close, and stopping a worker pool or a job's next
execution is an owner's call (no quarantine equivalent is implemented)."""

from __future__ import annotations

from dataclasses import dataclass

from functions import run_cmek_missing, run_default_service_account, run_plaintext_secrets, run_unapproved_region, run_vpc_egress
from shared.model import Action, Finding, Severity
from shared.rules import RUN_WORKLOAD_WRITES, Rule, finding
from shared.views.workload import WORKLOAD, WorkloadView


@dataclass(frozen=True)
class Params:
    # None: the policy's global approved_regions.
    approved_regions: tuple[str, ...] | None = None
    allowed_egress: tuple[str, ...] = ("PRIVATE_RANGES_ONLY",)
    require_cmek: bool = True
    require_same_location: bool = True


def check(view: WorkloadView, params: Params) -> Finding | None:
    """Any of the service rules' judgements fails on the job's or worker pool's template."""
    judged = {
        "default_service_account": run_default_service_account.check(view, run_default_service_account.Params()),
        "unapproved_region": run_unapproved_region.check(view, run_unapproved_region.Params(params.approved_regions)),
        "cmek_missing": run_cmek_missing.check(view, run_cmek_missing.Params(params.require_cmek, params.require_same_location)),
        "plaintext_secrets": run_plaintext_secrets.check(view, run_plaintext_secrets.Params()),
        "vpc_egress": run_vpc_egress.check(view, run_vpc_egress.Params(params.allowed_egress)),
    }
    problems = {k: f.observed for k, f in judged.items() if f is not None}
    if not problems:
        return None
    kind = "job" if view.kind == "job" else "worker pool"
    return finding(RULE, view, observed={"problems": problems}, title=f"Cloud Run {kind}: {', '.join(sorted(problems))}")


RULE = Rule(
    id="run_workload_noncompliant",
    title="Cloud Run job or worker pool breaks the service rules",
    severity=Severity.HIGH,
    kind=WORKLOAD,
    triggers=RUN_WORKLOAD_WRITES,
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    why="Jobs and worker pools run with a service identity, in a region, with keys, secrets and egress like services (https://cloud.google.com/run/docs/securing/service-identity).",
)

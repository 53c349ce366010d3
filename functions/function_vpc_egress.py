"""A Cloud Run function (Cloud Functions v2 API) whose VPC egress (connector or Direct VPC) is not
private-ranges-only: all its outbound traffic leaves through the VPC. Alert only."""

from __future__ import annotations

from functions import run_vpc_egress as _egress
from shared.model import Action, Finding, Severity
from shared.rules import FUNCTION_WRITES, Rule, finding
from shared.views.functions import FUNCTION, FunctionView

Params = _egress.Params  # the same parameters as for a Cloud Run service, set apart in the policy


def check(view: FunctionView, params: Params) -> Finding | None:
    """VPC egress not allowed, or no VPC access where `require_vpc_access_for` asks for it."""
    found = _egress.check(view, params)  # the same judgement as for a Cloud Run service
    return None if found is None else finding(RULE, view, observed=found.observed)


RULE = Rule(
    id="function_vpc_egress",
    title="Cloud Run function VPC egress is not private-ranges-only",
    severity=Severity.MEDIUM,
    kind=FUNCTION,
    triggers=FUNCTION_WRITES,
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    why="With private-ranges-only egress only private traffic goes through the VPC network (https://cloud.google.com/functions/docs/networking/connecting-vpc).",
)

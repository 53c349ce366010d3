"""A Cloud Run function (Cloud Functions v2 API) deployed outside the approved regions.
Alert only: a function cannot be moved; it is redeployed elsewhere by its owner."""

from __future__ import annotations

from functions import run_unapproved_region as _region
from shared.model import Action, Finding, Severity
from shared.rules import FUNCTION_WRITES, Rule, finding
from shared.views.functions import FUNCTION, FunctionView

Params = _region.Params  # the same parameters as for a Cloud Run service, set apart in the policy


def check(view: FunctionView, params: Params) -> Finding | None:
    """The function's region is not approved."""
    found = _region.check(view, params)  # the same judgement as for a Cloud Run service
    return None if found is None else finding(RULE, view, observed=found.observed)


RULE = Rule(
    id="function_unapproved_region",
    title="Cloud Run function deployed outside the approved regions",
    severity=Severity.HIGH,
    kind=FUNCTION,
    triggers=FUNCTION_WRITES,
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    why="A function's data is stored in its region; deploy only where the policy's approved_regions allow (https://cloud.google.com/functions/docs/locations).",
)

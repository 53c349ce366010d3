"""A Cloud Run function (Cloud Functions v2 API) without a customer-managed key (`kmsKeyName`),
or with one in another location. Alert only: re-keying means a rebuild by its owner."""

from __future__ import annotations

from functions import run_cmek_missing as _cmek
from shared.model import Action, Finding, Severity
from shared.rules import FUNCTION_WRITES, Rule, finding
from shared.views.functions import FUNCTION, FunctionView

Params = _cmek.Params  # the same parameters as for a Cloud Run service, set apart in the policy


def check(view: FunctionView, params: Params) -> Finding | None:
    """No CMEK key, or (with `require_same_location`) a key in another location."""
    found = _cmek.check(view, params)  # the same judgement as for a Cloud Run service
    return None if found is None else finding(RULE, view, observed=found.observed)


RULE = Rule(
    id="function_cmek_missing",
    title="Cloud Run function without a customer-managed encryption key in its region",
    severity=Severity.HIGH,
    kind=FUNCTION,
    triggers=FUNCTION_WRITES,
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    why="Customer-managed keys give you control over the key's location, rotation and access (https://cloud.google.com/functions/docs/securing/cmek).",
)

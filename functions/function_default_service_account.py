"""A Cloud Run function (Cloud Functions v2 API) running as the default compute service account,
which holds Editor on its project by default: a dedicated service account per workload.
Alert only: which service account it should run as is the owner's decision."""

from __future__ import annotations

from functions import run_default_service_account as _sa
from shared.model import Action, Finding, Severity
from shared.rules import FUNCTION_WRITES, Rule, finding
from shared.views.functions import FUNCTION, FunctionView

Params = _sa.Params  # the same parameters as for a Cloud Run service, set apart in the policy


def check(view: FunctionView, params: Params) -> Finding | None:
    """The function runs as no service account, or as a default one."""
    found = _sa.check(view, params)  # the same judgement as for a Cloud Run service
    return None if found is None else finding(RULE, view, observed=found.observed)


RULE = Rule(
    id="function_default_service_account",
    title="Cloud Run function uses the default compute service account",
    severity=Severity.HIGH,
    kind=FUNCTION,
    triggers=FUNCTION_WRITES,
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    why="The default compute service account has Editor on the project; give each function its own identity (https://cloud.google.com/functions/docs/securing/function-identity).",
)

"""Credentials in a Cloud Run function's plain environment variables (Cloud Functions v2 API
`serviceConfig.environmentVariables`) instead of `secretEnvironmentVariables`. Only names are
ever reported. Alert only: moving a value to Secret Manager needs its owner."""

from __future__ import annotations

from functions import run_plaintext_secrets as _secrets
from shared.model import Action, Finding, Severity
from shared.rules import FUNCTION_WRITES, Rule, finding
from shared.views.functions import FUNCTION, FunctionView

Params = _secrets.Params  # the same parameters as for a Cloud Run service, set apart in the policy


def check(view: FunctionView, params: Params) -> Finding | None:
    """A plain environment variable whose name or value looks like a credential."""
    found = _secrets.check(view, params)  # the same judgement as for a Cloud Run service
    return None if found is None else finding(RULE, view, observed=found.observed)


RULE = Rule(
    id="function_plaintext_secrets",
    title="Credentials in plain Cloud Run function environment variables",
    severity=Severity.HIGH,
    kind=FUNCTION,
    triggers=FUNCTION_WRITES,
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    why="Keep credentials in Secret Manager, never in plain environment variables (https://cloud.google.com/functions/docs/configuring/secrets).",
)

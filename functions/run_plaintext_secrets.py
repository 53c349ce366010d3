"""Credentials in plain Cloud Run environment variables instead of Secret Manager references:
the seed says never put credentials in env vars or the image. Only names are ever reported."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.model import Action, ActionRecord, Finding, Severity
from shared.permissions import RUN_QUARANTINE
from shared.rules import RUN_SERVICE_WRITES, Rule, RuntimeView, finding
from shared.views.run import SERVICE

if TYPE_CHECKING:
    from shared.actions import ActionContext


@dataclass(frozen=True)
class Params:
    # Regular expressions (case-insensitive) on variable names that hold credentials.
    name_patterns: tuple[str, ...] = (
        r"PASS(WORD|WD)|(^|_)PASS($|_)|PWD", r"SECRET", r"TOKEN", r"API_?KEY", r"PRIVATE_?KEY", r"CREDENTIAL", r"AUTH",
        r"(^|_)DSN$", r"CONN(ECTION)?_?STR",
    )
    # Regular expressions on values that look like credentials whatever the name.
    value_patterns: tuple[str, ...] = (
        r"-----BEGIN [A-Z ]*PRIVATE KEY-----", r"AKIA[0-9A-Z]{16}", r"AIza[0-9A-Za-z_\-]{35}",
        r"xox[abposr]-[0-9A-Za-z-]{10,}", r"gh[pousr]_[0-9A-Za-z]{36}", r"://[^/\s:@]+:[^/\s@]+@",
        r"\"private_key\"\s*:",
    )
    # Names that match a pattern but hold no secret (e.g. PASSWORD_MIN_LENGTH).
    ignore_names: tuple[str, ...] = ()


_compiled: dict[tuple[str, ...], re.Pattern[str]] = {}


def _rx(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    if not patterns:
        return None
    rx = _compiled.get(patterns)
    if rx is None:
        rx = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
        _compiled[patterns] = rx
    return rx


def check(view: RuntimeView, params: Params) -> Finding | None:
    """A plain environment variable whose name or value looks like a credential."""
    if not view.env:
        return None
    by_name, by_value = _rx(params.name_patterns), _rx(params.value_patterns)
    flagged: list[dict[str, str]] = []
    for var in view.env:
        if var.plain_value is None or not var.plain_value or var.name in params.ignore_names:
            continue
        if by_name and by_name.search(var.name):
            flagged.append({"container": var.container, "name": var.name, "matched": "name"})
        elif by_value and by_value.search(var.plain_value):
            flagged.append({"container": var.container, "name": var.name, "matched": "value"})
    if not flagged:
        return None
    # Names only: the value is a credential and must never reach a log or an alert.
    observed = {"plaintext_env": flagged, "required": "Secret Manager references (--set-secrets)"}
    return finding(RULE, view, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Quarantine the service if the live one still has credentials in plain env vars.

    Only quarantine is offered (when the team chooses it): there is no safe automatic revert.

    IAM permissions: shared.permissions.RUN_QUARANTINE (run.services.get/update/getIamPolicy/
    setIamPolicy, run.operations.get, iam.serviceAccounts.actAs on the service's identity).
    """
    from shared.actions import run

    return run.dispatch(finding, ctx, rule=RULE, params=params)


RULE = Rule(
    id="run_plaintext_secrets",
    title="Credentials in plain Cloud Run environment variables",
    severity=Severity.HIGH,
    kind=SERVICE,
    triggers=RUN_SERVICE_WRITES,
    action=Action.ALERT,
    actions=(Action.ALERT, Action.QUARANTINE),
    permissions={
        "quarantine": RUN_QUARANTINE,
    },
    check=check,
    params=Params,
    remediate=remediate,
    why=(
        "Keep credentials in Secret Manager, mounted or referenced, never in plain environment variables "
        "(https://cloud.google.com/run/docs/configuring/services/secrets)."
    ),
)

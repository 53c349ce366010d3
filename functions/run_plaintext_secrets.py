"""Credentials in plain Cloud Run environment variables instead of Secret Manager references:
the seed says never put credentials in env vars or the image. Only names are ever reported."""

from __future__ import annotations

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
    # Regular expressions (RE2 syntax, case-insensitive) on variable names that hold credentials.
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


# Params holding regular expressions: compiled with RE2 when the policy loads (shared.patterns).
REGEX_PARAMS = ("name_patterns", "value_patterns")


def check(view: RuntimeView, params: Params) -> Finding | None:
    """A plain environment variable whose name or value looks like a credential."""
    if not view.env:
        return None
    from shared.patterns import any_of, matching

    by_name, by_value = any_of(params.name_patterns), any_of(params.value_patterns)
    candidates = [v for v in view.env if v.plain_value and v.name not in params.ignore_names]
    named = matching(by_name, [v.name for v in candidates]) if by_name else set()
    rest = [i for i in range(len(candidates)) if i not in named]
    valued = {rest[j] for j in matching(by_value, [candidates[i].plain_value or "" for i in rest])} if by_value else set()
    flagged: list[dict[str, str]] = []
    for i, var in enumerate(candidates):
        if i in named:
            flagged.append({"container": var.container, "name": var.name, "matched": "name"})
        elif i in valued:
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

"""A Cloud Run service running as the default compute (or App Engine) service account, or
none set: the seed requires a dedicated, least-privilege identity per service."""

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

_DEFAULT_SA = re.compile(r"^(\d+-compute@developer\.gserviceaccount\.com|[^@]+@appspot\.gserviceaccount\.com)$")


@dataclass(frozen=True)
class Params:
    pass


def check(view: RuntimeView, params: Params) -> Finding | None:
    """The service runs as no service account, or as a default one."""
    sa = view.service_account
    if sa and not _DEFAULT_SA.match(sa):
        return None
    observed = {"service_account": sa or "(none set: the default compute service account)"}
    return finding(RULE, view, observed=observed)


def remediate(finding: Finding, params: Params, ctx: ActionContext) -> ActionRecord:
    """Quarantine the service if the live one still runs as a default service account.

    IAM permissions: shared.permissions.RUN_QUARANTINE (run.services.get/update/getIamPolicy/
    setIamPolicy, run.operations.get, iam.serviceAccounts.actAs on the service's identity).
    """
    from shared.actions import run

    return run.dispatch(finding, ctx, rule=RULE, params=params)


RULE = Rule(
    id="run_default_service_account",
    title="Cloud Run service uses the default compute service account",
    severity=Severity.HIGH,
    kind=SERVICE,
    triggers=RUN_SERVICE_WRITES,
    action=Action.QUARANTINE,
    actions=(Action.QUARANTINE, Action.ALERT),
    permissions={
        "quarantine": RUN_QUARANTINE,
    },
    check=check,
    params=Params,
    remediate=remediate,
    why=(
        "The default compute service account has Editor on the project; give each service its own least-privilege identity "
        "(https://cloud.google.com/run/docs/securing/service-identity)."
    ),
)

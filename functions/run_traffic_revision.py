"""A Cloud Run service whose traffic goes (by percentage or by tag) to a named revision rather
than to the latest one: that revision runs its own, older configuration, which the service
rules never judged (they judge the template). The alert says, for each serving revision, read
live, whether it runs on a default service account, without CMEK in its region, with
non-private VPC egress or with credentials in plain environment variables. Alert only: moving
production traffic is the owner's call."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.model import Action, Finding, Severity
from shared.rules import RUN_SERVICE_WRITES, Rule, finding
from shared.views.traffic import TRAFFIC, TrafficView

if TYPE_CHECKING:
    from shared.actions import ActionContext

MAX_REVISIONS = 10  # revisions read per alert; a service splits traffic a few ways, not hundreds


@dataclass(frozen=True)
class Params:
    # Revision names (shell patterns) whose pinned traffic is expected, e.g. a canary naming scheme.
    ignore_revisions: tuple[str, ...] = ()


def check(view: TrafficView, params: Params) -> Finding | None:
    """Some traffic target serves a named revision (with a percentage, or a tag)."""
    from shared.rules import matches_any

    pinned = [t for t in view.pinned() if not matches_any(t.revision, params.ignore_revisions)]
    if not pinned:
        return None
    observed = {"serving_revisions": [{"revision": t.revision, "percent": t.percent, "tag": t.tag} for t in pinned]}
    return finding(RULE, view, observed=observed)


def judge_revision(service: str, revision: Any) -> list[str]:
    """The service rules that a live revision (run_v2.Revision or its JSON) fails, as their ids."""
    from functions import run_cmek_missing, run_default_service_account, run_plaintext_secrets, run_vpc_egress
    from shared.views.run import from_live

    body = revision if isinstance(revision, dict) else type(revision).to_dict(
        revision, use_integers_for_enums=False, preserving_proto_field_name=False)
    view = from_live({"name": service, "template": body})
    if view is None:
        return ["unreadable"]
    failed = []
    for mod in (run_default_service_account, run_cmek_missing, run_vpc_egress, run_plaintext_secrets):
        if mod.check(view, mod.Params()) is not None:
            failed.append(mod.RULE.id)
    return failed


def enrich(finding: Finding, params: Params, ctx: ActionContext) -> dict[str, Any]:
    """Each serving revision, read live, and the service rules it fails (failures to read reported).

    IAM permissions: run.revisions.get.
    """
    from shared import clients
    from shared.actions import error_message, read_timeout

    out: dict[str, Any] = {}
    for target in finding.observed.get("serving_revisions", [])[:MAX_REVISIONS]:
        name = f"{finding.resource}/revisions/{target['revision']}"
        try:
            rev = clients.run_revisions().get_revision(name=name, retry=None, timeout=read_timeout(ctx.operation_timeout))
            out[target["revision"]] = {"fails": judge_revision(finding.resource, rev)}
        except Exception as exc:  # noqa: BLE001 — one unreadable revision must not hide the others
            out[target["revision"]] = {"read_error": f"{type(exc).__name__}: {error_message(exc)}"}
    return {"revisions": out}


RULE = Rule(
    id="run_traffic_revision",
    title="Cloud Run traffic served by a revision the template does not describe",
    severity=Severity.MEDIUM,
    kind=TRAFFIC,
    triggers=RUN_SERVICE_WRITES,
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={"alert": ("run.revisions.get",)},  # the enrichment's read
    check=check,
    params=Params,
    enrich=enrich,
    why="Traffic can be split across revisions or pinned to one by tag; each serving revision runs its own configuration (https://cloud.google.com/run/docs/rollouts-rollbacks-traffic-migration).",
)

"""A public (`allUsers`, `allAuthenticatedUsers`) or outside-domain member granted on a CMEK
key or key ring: access to the key is access to every byte it protects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.model import Action, Finding, Severity
from shared.permissions import KMS_IAM
from shared.rules import KMS_SET_IAM, Rule, finding, matches_any
from shared.views.iam import POLICY, PUBLIC_MEMBERS, PolicyView

if TYPE_CHECKING:
    from shared.actions import ActionContext
    from shared.model import ActionRecord


@dataclass(frozen=True)
class Outsiders:
    """For the remediation: the (role, member) grants to remove."""

    grants: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Params:
    # Domains whose users and groups may hold roles on keys; empty: only public members are flagged.
    allowed_domains: tuple[str, ...] = ()
    # Members always allowed (patterns), e.g. Google service agents.
    allowed_members: tuple[str, ...] = ("serviceAccount:*.gserviceaccount.com", "serviceAccount:*@*.gserviceaccount.com")


def _outside(member: str, params: Params) -> bool:
    if member in PUBLIC_MEMBERS:
        return True
    if not params.allowed_domains or matches_any(member, params.allowed_members):
        return False
    kind, _, ident = member.partition(":")
    if kind == "domain":
        return ident not in params.allowed_domains
    if kind in ("user", "group", "serviceAccount"):
        domain = ident.rpartition("@")[2].split("?")[0]
        return domain not in params.allowed_domains
    return False


def check(view: PolicyView, params: Params) -> Finding[Outsiders] | None:
    """The key's or key ring's policy grants a public or outside-domain member any role."""
    if view.resource_type not in ("kms.cryptoKey", "kms.keyRing"):
        return None
    candidates = view.grants(None if params.allowed_domains else PUBLIC_MEMBERS)
    bad = [(r, m) for r, m in candidates if _outside(m, params)]
    if not bad:
        return None
    observed = {"members": [{"role": r, "member": m} for r, m in bad]}
    return finding(
        RULE, view, observed=observed, title=f"{RULE.title} ({view.resource_type.split('.')[1]})",
        detail=Outsiders(tuple(bad)),
    )


def remediate(finding: Finding[Outsiders], params: Params, ctx: ActionContext) -> ActionRecord:
    """Remove exactly the flagged members from the key's or key ring's live policy, if the
    same test still flags them there; keep everything else (etag-guarded).

    IAM permissions: cloudkms.cryptoKeys.getIamPolicy/.setIamPolicy on a key,
    cloudkms.keyRings.getIamPolicy/.setIamPolicy on a key ring.
    """
    from shared.actions.kms import strip_members

    pairs = list(finding.detail.grants) if finding.detail else []
    return strip_members(finding, ctx, pairs=pairs, still_bad=lambda member: _outside(member, params))


RULE = Rule(
    id="kms_public_member",
    title="Public or outside-domain member granted on a CMEK key",
    severity=Severity.CRITICAL,
    kind=POLICY,
    triggers=KMS_SET_IAM,
    action=Action.REVERT,
    actions=(Action.REVERT, Action.ALERT),
    permissions={
        "revert": KMS_IAM,
    },
    check=check,
    params=Params,
    remediate=remediate,
    why=(
        "Access to a key is granted with IAM on the key, its key ring, project or above; no public or outside member may hold it "
        "(https://cloud.google.com/kms/docs/iam)."
    ),
)

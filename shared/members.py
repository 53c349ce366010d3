"""Who is an outsider in an IAM policy: one test, used by every rule that judges members.

An IAM member is `kind:identifier` (IAM "principal identifiers" docs; `principal://` and
`principalSet://` for workforce and workload identity federation). It is an insider only when
the policy's `trusted_domains` / `trusted_projects` say so, or when it is a Google-managed
service agent. Everything else is an outsider, on purpose:
- consumer accounts (`gmail.com`, `googlemail.com`) are outsiders whatever the policy says;
- `allUsers` / `allAuthenticatedUsers` are public, the worst kind of outsider;
- a member whose prefix is not one IAM documents is an outsider (fail closed), flagged
  `unknown_prefix` so the caller can log it;
- a deleted member (`deleted:user:...?uid=N`) grants nothing and is ignored.

Pure: strings in, a reason out. Never echoes more of a member than the member itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PUBLIC = frozenset({"allUsers", "allAuthenticatedUsers"})
CONSUMER_DOMAINS = frozenset({"gmail.com", "googlemail.com"})

# Google-managed service agents live in Google-owned domains (IAM "service agents" docs). Only
# these domains: `service-N@any-project.iam.gserviceaccount.com` is a name anyone can give an
# account in their own project.
_SERVICE_AGENT = re.compile(
    r"^(?:service-(?:org-)?\d+@gcp-sa-[a-z0-9-]+\.iam\.gserviceaccount\.com"
    r"|\d+@cloudservices\.gserviceaccount\.com"
    r"|service-\d+@(?:compute-system|container-engine-robot|gcf-admin-robot|serverless-robot-prod"
    r"|gs-project-accounts|dataflow-service-producer-prod|containerregistry)\.iam\.gserviceaccount\.com)$"
)
# PROJECT_ID.iam.gserviceaccount.com (user-managed), PROJECT_ID@appspot.gserviceaccount.com,
# PROJECT_NUMBER-compute@developer.gserviceaccount.com (defaults).
_USER_SA = re.compile(r"^[a-z0-9-]+@(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$")
_APPSPOT_SA = re.compile(r"^(?P<project>[a-z][a-z0-9-]{4,28}[a-z0-9])@appspot\.gserviceaccount\.com$")
_COMPUTE_SA = re.compile(r"^(?P<number>\d+)-compute@developer\.gserviceaccount\.com$")

KNOWN_PREFIXES = frozenset({"user", "group", "domain", "serviceAccount", "deleted", "principal", "principalSet"})


@dataclass(frozen=True, slots=True)
class Trust:
    """The policy's idea of inside: domains for people and groups, projects for service accounts
    (ids, and numbers for the default compute account `NUMBER-compute@developer...`)."""

    domains: tuple[str, ...] = ()
    projects: tuple[str, ...] = ()


def outsider_reason(member: str, trust: Trust) -> str | None:
    """Why `member` is outside `trust` ("public", "consumer_account", "untrusted_domain",
    "untrusted_project", "federated_identity", "unknown_prefix"), or None for an insider."""
    if member in PUBLIC:
        return "public"
    kind, sep, ident = member.partition(":")
    if not sep or kind not in KNOWN_PREFIXES:
        return "unknown_prefix"
    if kind == "deleted":
        return None  # grants nothing; IAM keeps it only until the binding is rewritten
    if kind in ("principal", "principalSet"):
        # principal://iam.googleapis.com/locations/global/workforcePools/POOL/subject/S,
        # principalSet://iam.googleapis.com/projects/N/locations/global/workloadIdentityPools/P/...:
        # identities from another identity provider, never of a trusted domain by name.
        return "federated_identity"
    ident = ident.split("?", 1)[0].lower()  # IAM appends ?uid=N to recreated members
    if kind == "domain":
        return _domain_reason(ident, trust)
    domain = ident.rpartition("@")[2]
    if not domain or "@" not in ident:
        return "unknown_prefix"
    if kind == "serviceAccount":
        return _service_account_reason(ident, trust)
    return _domain_reason(domain, trust)


def _domain_reason(domain: str, trust: Trust) -> str | None:
    if domain in CONSUMER_DOMAINS:
        return "consumer_account"
    return None if domain in {d.lower() for d in trust.domains} else "untrusted_domain"


def _service_account_reason(email: str, trust: Trust) -> str | None:
    if _SERVICE_AGENT.match(email):
        return None
    for pattern in (_USER_SA, _APPSPOT_SA):
        m = pattern.match(email)
        if m:
            return None if m.group("project") in trust.projects else "untrusted_project"
    m = _COMPUTE_SA.match(email)
    if m:
        return None if m.group("number") in trust.projects else "untrusted_project"
    # A service account outside *.gserviceaccount.com does not exist: someone typed a person's
    # address after serviceAccount:, or crafted one. Either way, not a trusted project's account.
    return "untrusted_project"


def outsiders(members: list[tuple[str, str]] | tuple[tuple[str, str], ...], trust: Trust) -> list[dict[str, str]]:
    """The (role, member) pairs whose member is an outsider, as log-safe dicts with the reason."""
    out = []
    for role, member in members:
        reason = outsider_reason(member, trust)
        if reason is not None:
            out.append({"role": role, "member": member, "reason": reason})
    return out

"""What a KMS restore may put back, judged from Cloud Logging and the policy, never from the
delivered entry alone (issue 14, finding 4).

Binding restore: a member goes back only if the confirmed entry removed it, it is a Google
service agent (in a Google-owned domain: `service-N@any-project.iam.gserviceaccount.com` is a
name anyone can give an account), and its project is one the security team trusts: a project
number (agents are named by number) in `trusted_projects`, or the member is listed for that
key under the rule's `required`. A binding whose condition can never be true grants nothing, so
re-adding it under such a condition counts as a removal.

Destroy restore: re-enable only when Cloud Logging shows the version ENABLED just before it was
scheduled for destruction (the last state change before the destroy set ENABLED, or it was
created and never changed); with no such evidence the restored version stays DISABLED.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from shared.event import AuditEvent, pick, pick_str

_AGENT = re.compile(
    r"^serviceAccount:(?:service-(?:org-)?(?P<n1>\d+)@gcp-sa-[a-z0-9-]+\.iam\.gserviceaccount\.com"
    r"|(?P<n2>\d+)@cloudservices\.gserviceaccount\.com"
    r"|service-(?P<n3>\d+)@(?:compute-system|container-engine-robot|gcf-admin-robot|serverless-robot-prod"
    r"|gs-project-accounts|dataflow-service-producer-prod|containerregistry)\.iam\.gserviceaccount\.com"
    r"|bq-(?P<n4>\d+)@bigquery-encryption\.iam\.gserviceaccount\.com)$"
)
# CEL literals IAM accepts for a condition that never holds.
_ALWAYS_FALSE = re.compile(r"^\s*\(?\s*(?:false|1\s*==\s*2|0\s*==\s*1|true\s*==\s*false|false\s*==\s*true|!\s*true)\s*\)?\s*$")


def agent_project(member: str) -> str | None:
    """The project number of a Google service agent member, or None if `member` is not one."""
    m = _AGENT.match(member)
    if not m:
        return None
    return next(g for g in m.groups() if g)


def never_grants(condition: Mapping[str, Any] | None) -> bool:
    """A binding condition that can never be true (`false`, `1 == 2`, ...): the binding grants nothing."""
    if not condition:
        return False
    expr = condition.get("expression") if isinstance(condition, Mapping) else None
    return isinstance(expr, str) and bool(_ALWAYS_FALSE.match(expr))


def restorable(member: str, *, trusted_projects: Iterable[str], required: Iterable[str] = ()) -> str | None:
    """Why `member` may NOT be put back on a key, or None if it may."""
    if member in set(required):
        return None
    number = agent_project(member)
    if number is None:
        return "not a Google service agent"
    if number not in set(trusted_projects):
        return f"its project {number} is not in trusted_projects"
    return None


def removed_by(event: AuditEvent, role: str) -> set[str]:
    """The members the (confirmed) SetIamPolicy entry removed from `role`: its policyDelta REMOVEs,
    and ADDs under a condition that never holds (re-added only in name)."""
    out: set[str] = set()
    deltas = pick(event.service_data, "policyDelta", "bindingDeltas")
    for d in deltas if isinstance(deltas, list) else ():
        if not isinstance(d, Mapping) or pick_str(d, "role") != role:
            continue
        action, member = pick_str(d, "action"), pick_str(d, "member")
        if action == "REMOVE" or (action == "ADD" and never_grants(pick(d, "condition"))):
            out.add(member)
    return out


def state_before_destroy(entries: list[AuditEvent], version: str) -> tuple[str | None, str]:
    """(the state the version had just before its destruction was scheduled, the evidence), from
    Cloud Logging's entries on the version, newest first; (None, why) when they do not say."""
    seen_destroy = False
    for e in entries:
        if e.method == "DestroyCryptoKeyVersion":
            seen_destroy = True
            continue
        if not seen_destroy:
            continue
        if e.method == "UpdateCryptoKeyVersion":
            state = pick(e.request, "cryptoKeyVersion", "state")
            if isinstance(state, int):
                state = {1: "ENABLED", 2: "DISABLED"}.get(state, "")
            if state in ("ENABLED", "DISABLED"):
                return state, f"set {state} by {e.actor or 'someone'} at {e.timestamp} (entry {e.insert_id})"
        if e.method in ("CreateCryptoKeyVersion", "CreateCryptoKey"):
            return "ENABLED", f"created at {e.timestamp} (entry {e.insert_id}) and not changed since"
    if not seen_destroy:
        return None, f"Cloud Logging holds no DestroyCryptoKeyVersion entry for {version}"
    return None, "Cloud Logging holds no state change or creation of the version before its destruction"

"""Whose changes Rampart leaves alone, and how that list is kept from switching Rampart off.

Two sources, both exact or pinned to one domain:
  * the policy's `ignore_principals` (shell patterns; the part after "@" may hold no wildcard:
    `rampart-*@*.iam.gserviceaccount.com` matched a service account of that name in any project,
    even outside the organization, and so switched Rampart off for anyone who made one);
  * `RAMPART_OWN_PRINCIPALS`, the exact emails of Rampart's own service accounts, which deploy.sh
    sets on each function (space-separated), so the shipped policy needs no pattern at all.

The principal judged is the event's `actor`: with impersonation, the first principal of the
delegation chain. An ignored principal's change that still violates a rule is never acted on,
but it is alerted: Rampart's own changes are compliant, so it can only be someone else.
"""

from __future__ import annotations

import os
import re

OWN_PRINCIPALS_ENV = "RAMPART_OWN_PRINCIPALS"
IGNORED_VIOLATION = "an ignored principal made a violating change"

_WILDCARD = re.compile(r"[*?\[\]]")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9.\-]{1,253}$")


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` may not be an ignore_principals entry, or None if it may."""
    local, at, domain = pattern.partition("@")
    if not at or not local or not domain:
        return f"expected an email or a pattern like name-*@project.iam.gserviceaccount.com; found {pattern!r}"
    if _WILDCARD.search(domain):
        return (
            f"{pattern!r} has a wildcard in the domain: a principal of that name in any project or domain "
            "(even outside the organization) would switch Rampart off; name the exact domain"
        )
    return None


def own_principals(environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """Rampart's own service accounts, as deploy.sh wrote them; ValueError on anything but emails."""
    raw = (environ if environ is not None else os.environ).get(OWN_PRINCIPALS_ENV, "")
    out = []
    for item in raw.split():
        if not _EMAIL.match(item):
            raise ValueError(f"{OWN_PRINCIPALS_ENV}: expected exact emails separated by spaces; found {item!r}")
        out.append(item)
    return tuple(out)


_own: tuple[str, ...] | None = None


def is_ignored(actor: str, patterns: tuple[str, ...]) -> bool:
    """Whether `actor` is one of Rampart's own identities or matches an ignore_principals pattern."""
    global _own
    if not actor:
        return False
    if _own is None:
        _own = own_principals()
    if actor in _own:
        return True
    from shared.rules import matches_any

    return matches_any(actor, patterns)


def reset() -> None:
    """Read RAMPART_OWN_PRINCIPALS again on next use (tests change the environment)."""
    global _own
    _own = None

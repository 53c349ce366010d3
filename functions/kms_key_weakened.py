"""A CMEK key's protections quietly weakened, with rotation still "on": the next rotation moved
far beyond the rotation period (rotation defeated), a destroy that can be undone for less time
than the policy's minimum, new versions made at a protection level below the minimum (e.g.
SOFTWARE where HSM is required), or the primary moved to an imported or external (Cloud EKM)
version where the policy forbids it. Alert only: each is a key owner's decision to undo."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from shared.model import Action, Finding, Severity
from shared.rules import KMS, Rule, finding
from shared.views.keyposture import KEY_POSTURE, KeyPostureView

_RANK = {"SOFTWARE": 1, "HSM": 2, "EXTERNAL": 2, "EXTERNAL_VPC": 2, "HSM_SINGLE_TENANT": 3}


@dataclass(frozen=True)
class Params:
    # The next rotation may be at most the rotation period plus this many days after the change.
    next_rotation_grace_days: int = 7
    # A scheduled destroy must stay undoable at least this long (Cloud KMS's default is 30 days).
    min_destroy_scheduled_days: int = 30
    # SOFTWARE (no requirement), HSM, or HSM_SINGLE_TENANT.
    min_protection_level: str = "SOFTWARE"
    forbid_imported_primary: bool = True
    forbid_external_primary: bool = True


def _time(text: str) -> dt.datetime | None:
    """An RFC 3339 time (or Panther's "2024-02-02 09:44:26.029835000"), to the second; None if not one."""
    base = text.strip().replace(" ", "T")[:19]
    try:
        return dt.datetime.strptime(base, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def check(view: KeyPostureView, params: Params) -> Finding | None:
    """Any of the four weakenings, on the fields the source states."""
    problems: dict[str, object] = {}
    if "rotation" in view.known and view.rotation_period_seconds and view.next_rotation_time:
        nxt, as_of = _time(view.next_rotation_time), _time(view.as_of)
        if nxt and as_of:
            ahead = (nxt - as_of).total_seconds()
            if ahead > view.rotation_period_seconds + params.next_rotation_grace_days * 86400:
                problems["next_rotation_deferred"] = {
                    "next_rotation_time": view.next_rotation_time, "days_ahead": round(ahead / 86400, 1),
                    "rotation_period_days": round(view.rotation_period_seconds / 86400, 1)}
    seconds = view.destroy_scheduled_seconds
    if "destroy_scheduled" in view.known and seconds is not None and seconds < params.min_destroy_scheduled_days * 86400:
        problems["destroy_scheduled_too_short"] = {"days": round(seconds / 86400, 2), "minimum_days": params.min_destroy_scheduled_days}
    level = view.protection_level
    if "protection_level" in view.known and level and _RANK.get(level, 0) < _RANK.get(params.min_protection_level, 1):
        problems["protection_level_below_minimum"] = {"protection_level": level, "minimum": params.min_protection_level}
    if "primary" in view.known and view.primary:
        external = view.primary_protection_level in ("EXTERNAL", "EXTERNAL_VPC")
        if (view.primary_imported and params.forbid_imported_primary) or (external and params.forbid_external_primary):
            problems["primary_not_kms_generated"] = {
                "primary": view.primary, "protection_level": view.primary_protection_level, "imported": view.primary_imported}
    if not problems:
        return None
    return finding(RULE, view, observed={"problems": problems}, title=f"{RULE.title}: {', '.join(sorted(problems))}")


RULE = Rule(
    id="kms_key_weakened",
    title="CMEK key protections weakened",
    severity=Severity.HIGH,
    kind=KEY_POSTURE,
    triggers=((KMS, "CreateCryptoKey"), (KMS, "UpdateCryptoKey"), (KMS, "UpdateCryptoKeyPrimaryVersion")),
    action=Action.ALERT,
    actions=(Action.ALERT,),
    permissions={},
    check=check,
    params=Params,
    why="Rotation, the destroy-scheduled duration, protection level and key origin bound what a key compromise or loss costs (https://cloud.google.com/kms/docs/key-rotation).",
)

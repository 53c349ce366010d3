"""Cloud KMS remediation: put back key versions and IAM members, strip public members.

Every action re-reads live state first, writes only while the resource is still
non-compliant, and is idempotent: a duplicate event finds the work done and writes
nothing. KMS key versions have no etag, so a version write follows a fresh read and is
only made when that read says it is needed; IAM policies go through `shared.actions.iam`
(etag-guarded, re-planned on a conflict by the engine). Transient API errors propagate (the caller,
`run_remediation`, turns them into a redelivery); 403/400 become FAILED records and 404
NOT_FOUND there too.

Calls go out with no client-side retry and a bounded timeout: the Pub/Sub redelivery is
the retry, so a handler never spends a minute inside the client's default backoff.

google libraries are imported on first use (cold-start budget).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from shared.actions import ActionContext, error_message, iam, read_timeout, record, transient_types
from shared.actions.iam import EXEMPT_FIRST
from shared.model import ActionRecord, Change, Finding, Outcome
from shared.views.names import KmsName, kms_name

if TYPE_CHECKING:
    from google.cloud.kms_v1 import KeyManagementServiceClient

# A kms_v1.CryptoKeyVersion: proto-plus hands its Timestamp fields over as datetimes, which its
# type hints do not say, so it is typed loosely here.
CryptoKeyVersion = Any
CryptoKey = Any  # the same for its rotation period (a timedelta) and next rotation time

ENABLED = "ENABLED"
DISABLED = "DISABLED"
DESTROY_SCHEDULED = "DESTROY_SCHEDULED"
DESTROYED = "DESTROYED"

_NO_NAME = KmsName("", "", "", "", "")


def _kms() -> KeyManagementServiceClient:
    from shared import clients

    return clients.kms()


# ---------------------------------------------------------------------------
# Key versions.


def _version_view(v: CryptoKeyVersion) -> dict[str, Any]:
    """Log-safe facts about a CryptoKeyVersion."""
    out: dict[str, Any] = {"name": v.name, "state": v.state.name}
    if v.destroy_time is not None:
        out["destroy_time"] = _iso(v.destroy_time)
    if v.destroy_event_time is not None:
        out["destroy_event_time"] = _iso(v.destroy_event_time)
    return out


def _get_version(name: str, ctx: ActionContext) -> CryptoKeyVersion:
    return _kms().get_crypto_key_version(name=name, retry=None, timeout=read_timeout(ctx.operation_timeout))


def _set_state(name: str, state: str, ctx: ActionContext) -> CryptoKeyVersion:
    from google.cloud import kms_v1
    from google.protobuf import field_mask_pb2

    version = kms_v1.CryptoKeyVersion(name=name, state=getattr(kms_v1.CryptoKeyVersion.CryptoKeyVersionState, state))
    return _kms().update_crypto_key_version(
        crypto_key_version=version,
        update_mask=field_mask_pb2.FieldMask(paths=["state"]),
        retry=None,
        timeout=read_timeout(ctx.operation_timeout),
    )


def version_undo(name: str, *verbs: str) -> str:
    """gcloud commands that apply `verbs` (disable, destroy, ...) to version `name`, in order."""
    p = kms_name(name) or _NO_NAME
    flags = f"--key={p.key} --keyring={p.ring} --location={p.location} --project={p.project}"
    cmds = " && ".join(f"gcloud kms keys versions {verb} {p.version} {flags}" for verb in verbs)
    return f"{cmds}  # {EXEMPT_FIRST}"


def reenable_version(finding: Finding, ctx: ActionContext) -> ActionRecord:
    """Set a DISABLED key version back to ENABLED.

    IAM permissions: cloudkms.cryptoKeyVersions.get, cloudkms.cryptoKeyVersions.update.
    """
    from google.api_core import exceptions as gexc

    name = finding.resource
    live = _get_version(name, ctx)
    before = _version_view(live)
    state = before["state"]
    if state == ENABLED:
        return record(finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before, reason="version is ENABLED")
    if state != DISABLED:
        why = "restoring it is kms_version_destroy_scheduled's job" if state in (DESTROY_SCHEDULED, DESTROYED) else ""
        return record(
            finding, ctx, Outcome.FAILED, before=before,
            reason=f"expected version {name} DISABLED or ENABLED, found {state}" + (f": {why}" if why else ""),
        )
    changes = [Change("state", DISABLED, ENABLED)]
    if ctx.dry_run:
        return record(finding, ctx, Outcome.DRY_RUN, changes=changes, before=before)
    try:
        after = _set_state(name, ENABLED, ctx)
    except gexc.BadRequest as exc:  # FAILED_PRECONDITION arrives as 400 over REST
        # The state moved between our read and our write (destroy scheduled meanwhile).
        seen = _version_view(_get_version(name, ctx))
        return record(
            finding, ctx, Outcome.FAILED, before=before, after=seen, attempts=1,
            reason=f"enabling version {name} was refused ({error_message(exc)}); it is now {seen['state']}",
        )
    return record(
        finding, ctx, Outcome.REMEDIATED, changes=changes, before=before, after=_version_view(after), attempts=1,
        undo=version_undo(name, "disable"),
    )


def restore_version(finding: Finding, ctx: ActionContext, *, reenable: bool) -> ActionRecord:
    """Cancel a scheduled destruction (→ DISABLED), then enable the version again if `reenable`.

    The audit entry does not say what state the version had before its destruction was
    scheduled, so `reenable` (the rule's `reenable_after_restore`) stands in for "it was
    enabled before"; the record's reason says so.

    IAM permissions: cloudkms.cryptoKeyVersions.get, cloudkms.cryptoKeyVersions.restore,
    cloudkms.cryptoKeyVersions.update (for the re-enable).
    """
    from google.api_core import exceptions as gexc

    name = finding.resource
    live = _get_version(name, ctx)
    before = _version_view(live)
    state = before["state"]
    now = ctx.clock()
    if live.destroy_time is not None:
        before.update(_time_left(live.destroy_time.timestamp(), now))
    why_enable = (
        "re-enabled after restore because reenable_after_restore is true (the audit entry does not record "
        "the state before destruction was scheduled)"
        if reenable
        else "left DISABLED after restore (reenable_after_restore is false)"
    )

    if state == DESTROYED or (state == DESTROY_SCHEDULED and live.destroy_time and live.destroy_time.timestamp() <= now):
        when = before.get("destroy_event_time") or before.get("destroy_time") or "an unknown time"
        return record(
            finding, ctx, Outcome.FAILED, before=before,
            reason=f"version {name} was destroyed at {when}; nothing can be restored",
        )
    if state == ENABLED or (state == DISABLED and not reenable):
        return record(
            finding, ctx, Outcome.ALREADY_COMPLIANT, before=before, after=before,
            reason=f"version is {state}: not scheduled for destruction",
        )
    if state not in (DESTROY_SCHEDULED, DISABLED):
        return record(
            finding, ctx, Outcome.FAILED, before=before,
            reason=f"expected version {name} DESTROY_SCHEDULED, found {state}",
        )

    changes: list[Change] = []
    if state == DESTROY_SCHEDULED:
        changes.append(Change("state", DESTROY_SCHEDULED, DISABLED))
    if reenable:
        # From DISABLED this is a redelivery finishing a restore whose re-enable failed.
        changes.append(Change("state", DISABLED, ENABLED))
    if ctx.dry_run:
        return record(finding, ctx, Outcome.DRY_RUN, changes=changes, before=before, reason=why_enable)

    attempts = 0
    current = live
    try:
        if state == DESTROY_SCHEDULED:
            attempts += 1
            current = _kms().restore_crypto_key_version(name=name, retry=None, timeout=read_timeout(ctx.operation_timeout))
        if reenable:
            attempts += 1
            current = _set_state(name, ENABLED, ctx)
    except gexc.BadRequest as exc:  # FAILED_PRECONDITION arrives as 400 over REST
        seen = _version_view(_get_version(name, ctx))
        if seen["state"] == DESTROYED:
            when = seen.get("destroy_event_time") or seen.get("destroy_time") or before.get("destroy_time")
            msg = f"version {name} was destroyed at {when}; nothing can be restored"
        else:
            msg = f"restoring version {name} was refused ({error_message(exc)}); it is now {seen['state']}"
        # A restore that went through before the re-enable was refused is still a change we made.
        done = [c for c in changes if c.after == DISABLED] if seen["state"] == DISABLED else []
        return record(
            finding, ctx, Outcome.FAILED, changes=done, before=before, after=seen, attempts=attempts, reason=msg,
            undo=version_undo(name, "destroy") if done else "",
        )
    verbs = ("disable", "destroy") if reenable else ("destroy",)
    return record(
        finding, ctx, Outcome.REMEDIATED, changes=changes, before=before, after=_version_view(current),
        attempts=attempts, reason=why_enable, undo=version_undo(name, *verbs),
    )


# ---------------------------------------------------------------------------
# IAM policies on keys and key rings (shared.actions.iam does the reading and writing).


def restore_members(finding: Finding, ctx: ActionContext, *, role: str, members: list[str]) -> ActionRecord:
    """Give `members` `role` again, unconditionally, on a key or key ring, keeping every other
    binding, condition and the policy version.

    IAM permissions: cloudkms.cryptoKeys.getIamPolicy and .setIamPolicy (on a key), or
    cloudkms.keyRings.getIamPolicy and .setIamPolicy (on a key ring).
    """
    return iam.edit_policy(finding, ctx, iam.add_members(role, members), undo_verb="remove")


def strip_members(
    finding: Finding, ctx: ActionContext, *, pairs: list[tuple[str, str]], still_bad: Callable[[str], bool]
) -> ActionRecord:
    """Remove exactly the (role, member) grants in `pairs` that the live policy still has and
    `still_bad` still flags, from every binding of the role (a conditional grant is still a
    grant); keep everything else.

    IAM permissions: as `restore_members`.
    """
    wanted = set(pairs)
    return iam.edit_policy(
        finding, ctx, iam.remove_grants(lambda g: (g.role, g.member) in wanted and still_bad(g.member)), undo_verb="add"
    )


# ---------------------------------------------------------------------------
# Facts for alerts (enrich): never fatal, failures reported in the facts.


def version_facts(
    finding: Finding[Any], ctx: ActionContext, *, find_dependents: bool, max_services: int, destroy_time: str = ""
) -> dict[str, Any]:
    """Which key and version, its state now, when it will be (or was) destroyed and how long
    is left, and the Cloud Run services that use the key (in the key's project and location).

    IAM permissions: cloudkms.cryptoKeyVersions.get, run.services.list.
    """
    from google.api_core import exceptions as gexc

    name = finding.resource
    key = name.rsplit("/cryptoKeyVersions/", 1)[0]
    facts: dict[str, Any] = {"key": key, "version": name.rsplit("/", 1)[-1]}
    now = ctx.clock()
    scheduled: str | None = destroy_time  # what the finding saw; the live read may say otherwise
    try:
        live = _get_version(name, ctx)
    except gexc.GoogleAPICallError as exc:
        live = None
        facts["state_error"] = f"{type(exc).__name__}: {error_message(exc)}"
    if live is not None:
        facts["state_now"] = live.state.name
        if live.state.name == DESTROY_SCHEDULED and live.destroy_time is not None:
            scheduled = _iso(live.destroy_time)
        elif live.state.name == DESTROYED:
            when = live.destroy_event_time or live.destroy_time
            facts["destroyed_at"] = _iso(when) if when is not None else "unknown"
        elif scheduled:
            facts["destroy_time_in_event"] = scheduled
            scheduled = None  # restored since: no window is running
    if isinstance(scheduled, str) and scheduled:
        facts["destroy_time"] = scheduled
        ts = _parse_time(scheduled)
        if ts is not None:
            facts.update(_time_left(ts, now))
    if find_dependents:
        facts.update(dependents(key, finding.project, finding.location, ctx, max_services=max_services))
    return facts


def dependents(key: str, project: str, location: str, ctx: ActionContext, *, max_services: int) -> dict[str, Any]:
    """Cloud Run services in projects/`project`/locations/`location` whose template's
    encryption key is `key` (or one of its versions), scanning at most `max_services`."""
    from google.api_core import exceptions as gexc

    from shared import clients

    parent = f"projects/{project}/locations/{location}"
    found: list[dict[str, Any]] = []
    scanned = 0
    truncated = False
    out: dict[str, Any] = {"dependents_searched": parent}
    failures: tuple[type[BaseException], ...] = (gexc.GoogleAPICallError, *transient_types())  # over REST, requests' own errors too
    try:
        pager = clients.run_services().list_services(
            request={"parent": parent, "page_size": min(max_services, 100)}, retry=None, timeout=read_timeout(ctx.operation_timeout)
        )
        for svc in pager:
            if scanned >= max_services:
                truncated = True
                break
            scanned += 1
            ek = svc.template.encryption_key
            if ek == key or ek.startswith(key + "/cryptoKeyVersions/"):
                item: dict[str, Any] = {"service": svc.name}
                action = svc.template.encryption_key_revocation_action
                if action:
                    item["revocation_action"] = action.name
                found.append(item)
    except failures as exc:
        out["dependents_error"] = f"{type(exc).__name__}: {error_message(exc)}"
    out.update({"dependents": found, "services_scanned": scanned})
    if truncated:
        out["dependents_truncated"] = f"stopped after {max_services} services"
    return out


def key_rotation_facts(key: str, ctx: ActionContext) -> dict[str, Any]:
    """The key's live rotation period and next rotation time.

    IAM permissions: cloudkms.cryptoKeys.get.
    """
    from google.api_core import exceptions as gexc

    try:
        k: CryptoKey = _kms().get_crypto_key(name=key, retry=None, timeout=read_timeout(ctx.operation_timeout))
    except gexc.GoogleAPICallError as exc:
        return {"key_error": f"{type(exc).__name__}: {error_message(exc)}"}
    period = k.rotation_period
    return {
        "rotation_period_days_now": round(period.total_seconds() / 86400, 1) if period else None,
        "next_rotation_time": _iso(k.next_rotation_time) if k.next_rotation_time is not None else None,
    }


# ---------------------------------------------------------------------------
# Small helpers.


def _iso(t: dt.datetime) -> str:
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _parse_time(value: str) -> float | None:
    try:
        t = dt.datetime.fromisoformat(value.replace(" ", "T"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


def _time_left(destroy_ts: float, now: float) -> dict[str, Any]:
    left = int(destroy_ts - now)
    if left <= 0:
        return {"seconds_left": 0, "time_left": f"window closed {_span(-left)} ago"}
    return {"seconds_left": left, "time_left": _span(left)}


def _span(seconds: int) -> str:
    d, rem = divmod(seconds, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    parts = [f"{d}d"] if d else []
    parts += [f"{h}h", f"{m}m"]
    return " ".join(parts)



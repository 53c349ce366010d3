"""The seam between the sweep and the rules: `evaluate_asset` and `evaluate_iam`, pure.

Each takes one parsed record and the policy, runs the enabled rules that judge its kind of
resource, and returns `Verdict`s: per rule, a finding or None (compliant). The findings carry the
rule's own id, severity, title and action, so they are decided, exempted and acted on exactly as
event findings are; only `event_id` (a stable id of this violation), `method` ("rampart.sweep"),
`principal` ("", unknown) and `timestamp` (the record's updateTime) say they came from a sweep.

Until the rules judge typed views (issue 11), the record is presented to them as the audit entry
that would have written its state (`_as_event`): the same `evaluate(event, params)` the event path
runs. This is the one place that changes when the view adapters land.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import functions
from shared.event import AuditEvent
from shared.model import Finding, Mode
from shared.sweep.records import CRYPTO_KEY, KEY_RING, KEY_VERSION, RUN_SERVICE, AssetRecord, IamRecord

SWEEP_METHOD = "rampart.sweep"
RUN = "run.googleapis.com"
KMS = "cloudkms.googleapis.com"

# Which rules judge which record. A rule judges a resource's state (resource records) or its IAM
# policy (IAM records), never both.
RESOURCE_RULES: dict[str, tuple[str, ...]] = {
    RUN_SERVICE: ("run_ingress_open", "run_invoker_iam_disabled", "run_default_service_account",
                  "run_unapproved_region", "run_vpc_egress", "run_plaintext_secrets", "run_cmek_missing"),
    KEY_RING: ("kms_unapproved_location",),
    CRYPTO_KEY: ("kms_rotation",),
    KEY_VERSION: ("kms_version_disabled", "kms_version_destroy_scheduled"),
}
IAM_RULES: dict[str, tuple[str, ...]] = {
    RUN_SERVICE: ("run_public_invoker",),
    KEY_RING: ("kms_agent_binding_removed", "kms_public_member"),
    CRYPTO_KEY: ("kms_agent_binding_removed", "kms_public_member"),
}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One rule on one record: its finding, or None when the record is compliant."""

    rule: str
    project: str
    finding: Finding | None
    settings: Any  # the rule's RuleSettings under the policy


def violation_id(rule: str, resource: str, state: str) -> str:
    """The dedupe id of one violation: the same rule on the same resource in the same state (its
    updateTime, or its IAM policy's etag) is the same violation, whichever sweep sees it."""
    digest = hashlib.sha256(f"{rule}\0{resource}\0{state}".encode()).hexdigest()
    return f"sweep-{digest[:40]}"


def rules_for(record: AssetRecord | IamRecord, wanted: tuple[str, ...] | None = None) -> tuple[str, ...]:
    table = IAM_RULES if isinstance(record, IamRecord) else RESOURCE_RULES
    ids = table.get(record.asset_type, ())
    return ids if wanted is None else tuple(r for r in ids if r in wanted)


def evaluate_asset(record: AssetRecord, loaded: Any, wanted: tuple[str, ...] | None = None) -> list[Verdict]:
    """Every enabled rule that judges `record`'s kind, on `record` (which must carry its data)."""
    if record.data is None:
        raise ValueError(f"{record.name}: the record carries no resource data; read it in full first")
    event = _as_event(record)
    return _run(event, record.name, record.project, record.update_time, record.update_time,
                rules_for(record, wanted), loaded)


def evaluate_iam(record: IamRecord, loaded: Any, wanted: tuple[str, ...] | None = None) -> list[Verdict]:
    """Every enabled IAM rule on `record`'s policy."""
    event = _iam_event(record)
    return _run(event, record.name, record.project, record.etag, "", rules_for(record, wanted), loaded)


def _run(event: AuditEvent, name: str, project: str, state: str, changed: str, rule_ids: tuple[str, ...],
         loaded: Any) -> list[Verdict]:
    out = []
    for rid in rule_ids:
        settings = loaded.settings(rid)
        if settings.mode is Mode.OFF:
            continue
        f = functions.rule(rid).evaluate(event, settings.params)
        if f is not None:
            f = dataclasses.replace(f, event_id=violation_id(rid, f.resource, state), method=SWEEP_METHOD,
                                    principal="", timestamp=changed)
        out.append(Verdict(rid, project, f, settings))
    return out


# ---------------------------------------------------------------------------
# Records as the audit entries that would have written their state (until issue 11's views).


def _event(service: str, method: str, name: str, project: str, location: str, request: Mapping[str, Any],
           response: Mapping[str, Any] | None = None) -> AuditEvent:
    return AuditEvent(
        service=service, method=method, resource_name=name, project=project, location=location, principal="",
        insert_id="", timestamp="", log_kind="activity", status_code=0, status_message="", resource_type="",
        request=request, response=response or {},
    )


def _as_event(r: AssetRecord) -> AuditEvent:
    data = r.data or {}
    if r.asset_type == RUN_SERVICE:
        if r.version == "v1" or "spec" in data:  # Knative shape: ReplaceService carries it
            return _event(RUN, "google.cloud.run.v1.Services.ReplaceService", r.name, r.project, r.location,
                          {"service": data}, data)
        return _event(RUN, "google.cloud.run.v2.Services.UpdateService", r.name, r.project, r.location,
                      {"service": {**data, "name": r.name}})
    if r.asset_type == KEY_RING:
        return _event(KMS, "CreateKeyRing", r.name, r.project, r.location, {})
    if r.asset_type == CRYPTO_KEY:
        return _event(KMS, "UpdateCryptoKey", r.name, r.project, r.location,
                      {"cryptoKey": {**data, "name": r.name}, "updateMask": "rotationPeriod"})
    state = data.get("state")
    if state in ("DESTROY_SCHEDULED", 5):
        return _event(KMS, "DestroyCryptoKeyVersion", r.name, r.project, r.location, {"name": r.name},
                      {"destroyTime": data.get("destroyTime", "")} if isinstance(data.get("destroyTime"), str) else {})
    return _event(KMS, "UpdateCryptoKeyVersion", r.name, r.project, r.location,
                  {"cryptoKeyVersion": {**data, "name": r.name}, "updateMask": "state"})


def _iam_event(r: IamRecord) -> AuditEvent:
    if r.asset_type == RUN_SERVICE:
        return _event(RUN, "google.cloud.run.v2.Services.SetIamPolicy", r.name, r.project, r.location,
                      {"resource": r.name, "policy": dict(r.policy)})
    return _event(KMS, "SetIamPolicy", r.name, r.project, r.location, {"resource": r.name, "policy": dict(r.policy)})

"""Canonical resource names, from every source: audit entries name a Cloud Run service in v1
(`namespaces/P/services/S`) or v2 form, the Asset Inventory as a full resource name
(`//run.googleapis.com/projects/P/locations/L/services/S`). Views always carry the v2 /
KMS API form (`projects/P/locations/L/...`)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from shared.event import AuditEvent, pick_str

RUN = "run.googleapis.com"
KMS = "cloudkms.googleapis.com"

_RUN_V1_NAME = re.compile(r"^namespaces/([^/]+)/services/([^/]+)$")
_RUN_V2_NAME = re.compile(r"^projects/([^/]+)/locations/([^/]+)/services/([^/]+)$")
_PARENT = re.compile(r"^projects/([^/]+)/locations/([^/]+)$")
_KMS_NAME = re.compile(
    r"^projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)/keyRings/(?P<ring>[^/]+)"
    r"(?:/cryptoKeys/(?P<key>[^/]+)(?:/cryptoKeyVersions/(?P<version>[^/]+))?)?$"
)


class KmsName(NamedTuple):
    project: str
    location: str
    ring: str
    key: str  # "" for a key ring
    version: str  # "" for a key ring or key

    @property
    def resource_type(self) -> str:
        if self.version:
            return "kms.cryptoKeyVersion"
        return "kms.cryptoKey" if self.key else "kms.keyRing"

    @property
    def key_name(self) -> str:
        """The key (or key ring) this name belongs to, without the version."""
        base = f"projects/{self.project}/locations/{self.location}/keyRings/{self.ring}"
        return f"{base}/cryptoKeys/{self.key}" if self.key else base


def kms_name(name: str) -> KmsName | None:
    """The parts of a KMS key ring, key or key version name; None if it is not one."""
    m = _KMS_NAME.match(name)
    if not m:
        return None
    return KmsName(*(v or "" for v in m.group("project", "location", "ring", "key", "version")))


def run_service_parts(name: str) -> tuple[str, str] | None:
    """(project, location) of a v2 Cloud Run service name; None if it is not one."""
    m = _RUN_V2_NAME.match(name)
    return (m.group(1), m.group(2)) if m else None


def project_location(name: str) -> tuple[str, str]:
    """(project, location) of any `projects/P/locations/L/...` name, ("", "") otherwise."""
    parts = name.split("/", 4)
    if len(parts) >= 4 and parts[0] == "projects" and parts[2] == "locations":
        return parts[1], parts[3]
    if len(parts) >= 2 and parts[0] == "projects":
        return parts[1], ""
    return "", ""


def resource_type_of(name: str) -> str:
    """run.service | kms.keyRing | kms.cryptoKey | kms.cryptoKeyVersion | "" (unknown)."""
    if _RUN_V2_NAME.match(name):
        return "run.service"
    k = kms_name(name)
    return k.resource_type if k else ""


def from_full_name(full: str) -> str:
    """`//run.googleapis.com/projects/...` → `projects/...`; other names unchanged."""
    if full.startswith("//"):
        return full[2:].partition("/")[2]
    return full


def run_service_name(event: AuditEvent, service_body: Mapping[str, Any] | None = None) -> tuple[str, str, str]:
    """(canonical v2 name, project, location) of the Cloud Run service an entry is about; the
    entry's own resource name, project and location when no candidate has a service's form."""
    candidates = [event.resource_name, pick_str(event.request, "name"), pick_str(event.request, "resource")]
    if service_body:
        candidates.append(pick_str(service_body, "name"))
    for c in candidates:
        m = _RUN_V2_NAME.match(c)
        if m:
            return c, m.group(1), m.group(2)
    for c in candidates:
        m = _RUN_V1_NAME.match(c)
        if m:
            return f"projects/{m.group(1)}/locations/{event.location}/services/{m.group(2)}", m.group(1), event.location
    parent = pick_str(event.request, "parent")
    sid = pick_str(event.request, "serviceId")
    m = _PARENT.match(parent)
    if m and sid:
        return f"{parent}/services/{sid}", m.group(1), m.group(2)
    return event.resource_name, event.project, event.location

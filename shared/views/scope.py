"""What kind of resource an IAM policy is on, by its name, for the rules that govern policies
beyond one product: the hierarchy (projects, folders, organizations) and every Cloud Run and
Cloud KMS resource. Also where an entry's policy is: Resource Manager v1 logs `request.resource`
as a bare project id ("1234") and some hand-trimmed entries carry no resourceName at all, so the
entry's resource labels are the last resort."""

from __future__ import annotations

import re

from shared.event import AuditEvent, pick_str
from shared.views import Kind
from shared.views import iam as iam_views

_TYPES = (
    (re.compile(r"^projects/[^/]+$"), "project"),
    (re.compile(r"^folders/[^/]+$"), "folder"),
    (re.compile(r"^organizations/[^/]+$"), "organization"),
    (re.compile(r"^projects/[^/]+/locations/[^/]+/services/[^/]+$"), "run.service"),
    (re.compile(r"^projects/[^/]+/locations/[^/]+/functions/[^/]+$"), "run.function"),
    (re.compile(r"^projects/[^/]+/locations/[^/]+/jobs/[^/]+$"), "run.job"),
    (re.compile(r"^projects/[^/]+/locations/[^/]+/workerPools/[^/]+$"), "run.workerPool"),
    (re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+$"), "kms.cryptoKey"),
    (re.compile(r"^projects/[^/]+/locations/[^/]+/keyRings/[^/]+$"), "kms.keyRing"),
)
HIERARCHY = frozenset({"project", "folder", "organization"})


def scope_of(name: str) -> str:
    """project | folder | organization | run.service | run.function | run.job | run.workerPool |
    kms.cryptoKey | kms.keyRing, or "" for anything else."""
    return next((t for rx, t in _TYPES if rx.match(name)), "")


def locate(event: AuditEvent) -> str | None:
    """The resource a SetIamPolicy entry is on, in full form."""
    for candidate in (event.resource_name, pick_str(event.request, "resource")):
        if scope_of(candidate) in HIERARCHY:
            return candidate
    if event.service == "cloudresourcemanager.googleapis.com":
        labels = event.resource_labels
        for key, kind in (("organization_id", "organizations"), ("folder_id", "folders"), ("project_id", "projects")):
            value = labels.get(key)
            if isinstance(value, str) and value and "/" not in value:
                return f"{kind}/{value}"
        return None
    return iam_views.locate(event)


POLICY: Kind[iam_views.PolicyView] = Kind("iam.policy", (), locate, iam_views.from_entry, iam_views.from_live,
                                          iam_views.from_asset)

"""The one place where the stand-in's APIs are registered: add a module's `API` here to serve it."""

from __future__ import annotations

from infra.local.standin import (
    cloudasset_v1,
    cloudfunctions_v2,
    cloudkms_v1,
    cloudresourcemanager_v3,
    compute_v1,
    logging_v2,
    logging_v2_entries,
    orgpolicy_v2,
    run_v2,
)
from infra.local.standin.core import Api

APIS: tuple[Api, ...] = (
    run_v2.API,
    cloudkms_v1.API,
    cloudfunctions_v2.API,
    cloudresourcemanager_v3.API,
    logging_v2.API,
    logging_v2_entries.API,
    orgpolicy_v2.API,
    compute_v1.API,
    cloudasset_v1.API,  # last: it searches the resources the others hold
)

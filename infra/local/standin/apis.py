"""The one place where the stand-in's APIs are registered: add a module's `API` here to serve it."""

from __future__ import annotations

from infra.local.standin import cloudasset_v1, cloudkms_v1, run_v2
from infra.local.standin.core import Api

APIS: tuple[Api, ...] = (
    run_v2.API,
    cloudkms_v1.API,
    cloudasset_v1.API,  # after the APIs whose resources it searches (seed order)
)

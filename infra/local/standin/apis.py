"""The one place where the stand-in's APIs are registered: add a module's `API` here to serve it."""

from __future__ import annotations

from infra.local.standin import cloudkms_v1, logging_v2, run_v2
from infra.local.standin.core import Api

APIS: tuple[Api, ...] = (
    run_v2.API,
    cloudkms_v1.API,
    logging_v2.API,
)

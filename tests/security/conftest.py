"""One local pipeline (the shipped policy, Rampart's own account given exactly as deploy.sh gives
it) for the attack replays; each test seeds the demo project again and starts from its state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.stack import SEED, LocalStack


@pytest.fixture(scope="package")
def pipeline() -> Iterator[LocalStack]:
    with LocalStack() as stack:
        yield stack


@pytest.fixture
def stack(pipeline: LocalStack) -> LocalStack:
    from infra.local.standin.seeding import load_seed

    pipeline.admin.seed(load_seed(SEED))
    pipeline.admin.clear_requests()
    return pipeline

"""The pipeline scenarios' `stack`: the one shared local stack, put back as it started after each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.stack import LocalStack
from tests.reliability import harness as H


@pytest.fixture
def stack(request: pytest.FixtureRequest) -> Iterator[LocalStack]:
    stack = H.shared_stack(request)
    try:
        yield stack
    finally:
        H.restore(stack)

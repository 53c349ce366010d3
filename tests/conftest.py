"""Shared fixtures. Each part of the local stack has its own fixture module in tests/support/."""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

pytest_plugins = [
    "tests.support.fixtures_standin",
    "tests.support.fixtures_local",
]

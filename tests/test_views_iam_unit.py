"""shared.views.iam on its own: hand-written entries, live reads and asset records in, the view's
fields out (expected values written by hand, not computed by the code under test)."""

from __future__ import annotations

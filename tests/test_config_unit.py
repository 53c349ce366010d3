"""shared/config.py one function at a time: validation messages, rule settings, exemptions, reloads.

Written against the mutants `make mutate` found surviving: each test pins one behaviour with a
hand-written expected value.
"""

from __future__ import annotations

import datetime as dt

from shared.config import exemption_for, parse_policy

TODAY = dt.date(2026, 6, 1)


def test_exemption_expiring_today_still_applies() -> None:
    loaded = parse_policy(
        "trusted_domains: [example.com]\n"
        "rules: {run_ingress_open: {exemptions: [{projects: [p-123456], owner: o, reason: r, expires: 2026-06-01}]}}")
    live, expired = exemption_for(loaded, loaded.settings("run_ingress_open"), "projects/p-123456/x", "p-123456", TODAY)
    assert live is not None and live.owner == "o"
    assert expired == []

"""Structured log lines: PHI field names refused, and every line short enough for Cloud Logging."""

from __future__ import annotations

import json

import pytest

from shared import log


def _line(message: str, **fields: object) -> dict:
    with log.captured() as buf:
        log.info(message, **fields)
    lines = buf.getvalue().splitlines()
    assert len(lines) == 1
    return json.loads(lines[0])


def test_ordinary_line_is_written_whole() -> None:
    got = _line("rampart.remediation", rule="run_ingress_open", observed={"members": ["allUsers"]})
    assert got == {"severity": "INFO", "message": "rampart.remediation", "rule": "run_ingress_open",
                   "observed": {"members": ["allUsers"]}}


def test_phi_field_names_are_refused() -> None:
    with pytest.raises(ValueError, match="PHI"):
        log.info("x", mrn="123")


def test_a_record_of_a_million_members_is_cut_to_fit_and_says_so() -> None:
    members = [f"user:u{i}@example.com" for i in range(1_000_000)]
    with log.captured() as buf:
        log.info("rampart.remediation", rule="kms_public_member", observed={"added": members}, note="x" * 50_000)
    raw = buf.getvalue()
    assert len(raw) <= log.MAX_LINE_CHARS + 1
    got = json.loads(raw)
    assert got["rule"] == "kms_public_member"
    assert got["observed"]["added"][:2] == members[:2]
    assert got["observed"]["added"][-1] == f"…{1_000_000 - log._KEEP_ITEMS} more"
    assert got["note"].endswith(f"…[{50_000 - log._KEEP_CHARS} more chars]")
    assert got["log_truncated_from_chars"] > 25_000_000


def test_a_line_too_long_even_cut_keeps_severity_message_and_field_names() -> None:
    fields = {f"f{i}": "y" * 3000 for i in range(200)}
    got = _line("rampart.event_failed", **fields)
    assert got["message"] == "rampart.event_failed"
    assert got["severity"] == "INFO"
    assert "f0" in got["fields_left_out"]
    assert got["log_truncated_from_chars"] > log.MAX_LINE_CHARS


def test_captured_blocks_nest_and_give_the_stream_back() -> None:
    with log.captured() as outer:
        with log.captured() as inner:
            log.info("inner")
        log.info("outer")
    assert [json.loads(x)["message"] for x in inner.getvalue().splitlines()] == ["inner"]
    assert [json.loads(x)["message"] for x in outer.getvalue().splitlines()] == ["outer"]

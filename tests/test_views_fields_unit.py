"""shared/views/fields.py: enum names and Asset Inventory record data, with hand-written
expected values."""

from __future__ import annotations

from shared.views import fields

ENUM = {0: "ZERO", 1: "ONE", 2: "TWO"}


def test_enum_name_reads_a_number_a_digit_string_and_a_name() -> None:
    assert fields.enum_name(1, ENUM) == "ONE"
    assert fields.enum_name("2", ENUM) == "TWO"
    assert fields.enum_name("ONE", ENUM) == "ONE"

"""shared/views/fields.py: enum names and Asset Inventory record data, with hand-written
expected values."""

from __future__ import annotations

from shared.views import fields

ENUM = {0: "ZERO", 1: "ONE", 2: "TWO"}


def test_enum_name_reads_a_number_a_digit_string_and_a_name() -> None:
    assert fields.enum_name(1, ENUM) == "ONE"
    assert fields.enum_name("2", ENUM) == "TWO"
    assert fields.enum_name("ONE", ENUM) == "ONE"


def test_enum_name_of_a_number_outside_the_enum_is_unknown_with_the_number() -> None:
    assert fields.enum_name(7, ENUM) == "UNKNOWN_7"
    assert fields.enum_name("7", ENUM) == "UNKNOWN_7"


def test_enum_name_of_a_bool_or_another_type_is_empty() -> None:
    assert fields.enum_name(True, ENUM) == ""
    assert fields.enum_name(False, ENUM) == ""
    assert fields.enum_name(None, ENUM) == ""
    assert fields.enum_name(1.0, ENUM) == ""


def test_enum_name_reads_an_alias_only_when_it_is_one() -> None:
    aliases = {"one-alias": "ONE"}
    assert fields.enum_name("one-alias", ENUM, aliases) == "ONE"
    assert fields.enum_name("TWO", ENUM, aliases) == "TWO"
    assert fields.enum_name("one-alias", ENUM) == "one-alias"  # no aliases given: the value as written
    assert fields.enum_name("one-alias", ENUM, {}) == "one-alias"


def test_enum_name_reads_digit_strings_of_up_to_18_digits_only() -> None:
    assert fields.enum_name("000000000000000001", ENUM) == "ONE"  # 18 digits
    assert fields.enum_name("0000000000000000001", ENUM) == "0000000000000000001"  # 19: as written
    assert fields.enum_name("²", ENUM) == "²"  # a digit to str.isdigit, not to int()
    assert fields.enum_name("1a", ENUM) == "1a"
    assert fields.enum_name("abc", ENUM) == "abc"


FEED = {"name": "//run.googleapis.com/projects/p1/locations/us/services/web", "assetType": "run.googleapis.com/Service",
        "resource": {"data": {"name": "ignored", "spec": {}}}}


def test_asset_data_reads_a_feed_record() -> None:
    assert fields.asset_data(FEED, "run.googleapis.com/Job", "run.googleapis.com/Service") == (
        "projects/p1/locations/us/services/web", {"name": "ignored", "spec": {}})


def test_asset_data_of_another_type_or_no_type_is_none() -> None:
    assert fields.asset_data(FEED, "run.googleapis.com/Job") is None
    assert fields.asset_data({"resource": {"data": {"x": 1}}}, "run.googleapis.com/Job") is None


def test_asset_data_reads_a_search_result_first_versioned_resource() -> None:
    record = {"name": "//run.googleapis.com/projects/p1/locations/us/jobs/j", "assetType": "run.googleapis.com/Job",
              "versionedResources": [{"version": "v0"}, {"version": "v1", "resource": {"spec": 1}},
                                     {"version": "v2", "resource": {"spec": 2}}]}
    assert fields.asset_data(record, "run.googleapis.com/Job") == ("projects/p1/locations/us/jobs/j", {"spec": 1})


def test_asset_data_with_one_versioned_resource_reads_it() -> None:
    record = {"assetType": "T", "versioned_resources": [{"resource": {"name": "projects/p1/x"}}]}
    assert fields.asset_data(record, "T") == ("projects/p1/x", {"name": "projects/p1/x"})


def test_asset_data_without_data_is_empty_data_named_by_the_record() -> None:
    assert fields.asset_data({"assetType": "T", "name": "projects/p1/x"}, "T") == ("projects/p1/x", {})
    assert fields.asset_data({"assetType": "T", "versionedResources": [{"version": "v1"}]}, "T") == ("", {})


def test_asset_data_named_by_its_data_when_the_record_has_no_name() -> None:
    assert fields.asset_data({"assetType": "T", "resource": {"data": {"name": "projects/p1/y"}}}, "T") == (
        "projects/p1/y", {"name": "projects/p1/y"})

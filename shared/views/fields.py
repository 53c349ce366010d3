"""Raw-field readers every view module shares: an enum as its name, and an Asset Inventory
record's resource data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.event import pick_dict, pick_list, pick_str
from shared.views.names import from_full_name


def enum_name(value: Any, by_int: Mapping[int, str], aliases: Mapping[str, str] | None = None) -> str:
    """An enum as its name: entries may log it as a number, a digit string, or (v1 annotations)
    an alias such as `all-traffic`. "" for a value of no enum's type."""
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return by_int.get(value, f"UNKNOWN_{value}")
    if isinstance(value, str):
        if aliases and value in aliases:
            return aliases[value]
        # ASCII only, and short: "²".isdigit() is True but int("²") raises, as does int() of 4300+ digits.
        if value.isascii() and value.isdigit() and len(value) <= 18:
            return by_int.get(int(value), f"UNKNOWN_{value}")
        return value
    return ""


def asset_data(record: Any, *asset_types: str) -> tuple[str, Mapping[str, Any]] | None:
    """(name, data) of an Asset Inventory record of one of `asset_types`: a feed's or export's
    `asset` (`resource.data`) or a SearchAllResources result (`versionedResources[].resource`);
    None for another type. `data` is {} when the record carries none."""
    if pick_str(record, "assetType") not in asset_types:
        return None
    data = pick_dict(record, "resource", "data")
    if not data:
        versions = [v for v in pick_list(record, "versionedResources") if pick_dict(v, "resource")]
        data = pick_dict(versions[0], "resource") if versions else {}
    return from_full_name(pick_str(record, "name")) or pick_str(data, "name"), data

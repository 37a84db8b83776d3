"""DynamoDB's capacity arithmetic, as its documentation states it, for counting what a request costs."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

WRITE_UNIT_BYTES = 1024
READ_UNIT_BYTES = 4096


def attribute_value_size(value: dict[str, Any]) -> int:  # noqa: PLR0911 - one answer per type
    """Bytes of one attribute value: strings and binary by length, numbers by significant digits."""
    (kind, data), *_ = value.items()
    if kind == "S":
        return len(data.encode("utf-8"))
    if kind == "B":
        return len(data)
    if kind == "N":
        digits = Decimal(data).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(attribute_value_size({kind[0]: item}) for item in data)
    if kind == "L":
        return 3 + sum(attribute_value_size(item) + 1 for item in data)
    if kind == "M":
        return 3 + sum(len(k.encode()) + attribute_value_size(v) + 1 for k, v in data.items())
    raise ValueError(f"unknown attribute type {kind}")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """An item's size: its attribute names plus their values."""
    return sum(len(name.encode("utf-8")) + attribute_value_size(value) for name, value in item.items())


def write_units(before: dict[str, Any] | None, after: dict[str, Any] | None) -> int:
    """A write costs 1 unit per KB of the larger of the item before and after (at least 1)."""
    size = max(item_size(before or {}), item_size(after or {}))
    return max(1, math.ceil(size / WRITE_UNIT_BYTES))


def scan_read_units(item_sizes: list[int], consistent: bool = False) -> float:
    """A scan reads 4 KB units over the items it touches, half price when eventually consistent."""
    units = math.ceil(sum(item_sizes) / READ_UNIT_BYTES)
    return units if consistent else units / 2

"""Checks on raw input that every surface shares: numbers written as text, and JSON values a
database would choke on. Python's own int() and str.isdigit() accept more than a protocol
should (non-ASCII digits such as '²', 4,000-digit numbers), which then fail deep inside as
500s; these turn them into the caller's error at the door."""

from __future__ import annotations

import re
from typing import Any

from cls_shipper.errors import invalid

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"-?[0-9]{1,19}")


def ascii_int(text: str, name: str, low: int = INT64_MIN, high: int = INT64_MAX) -> int:
    """`text` as a whole number in [low, high]: ASCII digits with an optional minus only."""
    if not _INTEGER.fullmatch(text):
        raise invalid(f"{name} must be a whole number")
    value = int(text)
    if not low <= value <= high:
        raise invalid(f"{name} must be from {low} to {high}")
    return value


def check_text(value: str, name: str) -> None:
    # PostgreSQL text cannot hold NUL (SQLite can): refuse it on every backend alike.
    if "\x00" in value:
        raise invalid(f"{name} must not contain NUL characters")


def check_json(data: Any, where: str = "the request") -> None:
    """Refuse NUL characters in any string (keys included) and integers outside int64,
    anywhere in a parsed JSON document."""
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            check_text(node, f"strings in {where}")
        elif isinstance(node, bool) or node is None or isinstance(node, float):
            continue
        elif isinstance(node, int):
            if not INT64_MIN <= node <= INT64_MAX:
                raise invalid(f"numbers in {where} must fit in 64 bits")
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)

"""Identifiers: the ids the service gives to logsets, topics, shippers and tasks, and the rule
on ids a caller may choose (API 3.0 LogsetId / TopicId)."""

from __future__ import annotations

import re
import uuid

from cls_shipper.errors import invalid

_CUSTOM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def new_id() -> str:
    return str(uuid.uuid4())


def check_custom_id(value: str, name: str) -> str:
    """A caller-chosen id: what every id here may look like."""
    if not _CUSTOM_ID.fullmatch(value):
        raise invalid(f"{name} must be 1-64 letters, digits, '-' or '_'")
    return value

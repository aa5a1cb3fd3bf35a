"""Tags of logsets and topics (API 3.0's `Tags`): the one place their rules live, for the
API actions and the console's forms alike."""

from __future__ import annotations

from typing import Any

from cls_shipper.errors import Kinds, ServiceError, invalid

MAX_TAGS = 10
# Tencent Cloud's tag service bounds: a key of 1-127 characters, a value of 0-255.
MAX_KEY = 127
MAX_VALUE = 255


def check_tags(value: Any) -> list[dict[str, str]] | None:
    """`value` (a list of {"Key", "Value"}, or None for unchanged) checked: at most
    MAX_TAGS, each key given once."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise invalid("Tags must be a list of {Key, Value}")
    if len(value) > MAX_TAGS:
        raise ServiceError(Kinds.LIMIT_EXCEEDED, f"Tags: at most {MAX_TAGS} tags")
    seen: set[str] = set()
    out: list[dict[str, str]] = []
    for tag in value:
        key, text = (tag.get("Key"), tag.get("Value")) if isinstance(tag, dict) else (None, None)
        if not isinstance(key, str) or not isinstance(text, str):
            raise invalid("Tags: each tag is a Key and a Value, both strings")
        if not key.strip() or len(key) > MAX_KEY:
            raise invalid(f"Tags: a Key is 1 to {MAX_KEY} characters")
        if len(text) > MAX_VALUE:
            raise invalid(f"Tags: a Value is at most {MAX_VALUE} characters (tag {key!r})")
        if key in seen:
            raise invalid(f"Tags: the Key {key!r} is given twice")
        seen.add(key)
        out.append({"Key": key, "Value": text})
    return out

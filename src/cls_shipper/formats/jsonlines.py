"""JSON lines (spec §8.3, §7.8 JsonInfo): one JSON object per record, one record per line.

Each object holds the record's content keys in upload order, then the chosen meta fields in
the configured order (`__TIMESTAMP__` as integer ms, `__SOURCE__`, `__FILENAME__`,
`__HOSTNAME__`; "" when the group has no filename or hostname), then `__TAG__` as an object
of the group's tags when tags are enabled. Meta fields win over a content key of the same
name, so the object never has duplicate keys.

JsonType 0 writes every content value as a JSON string. JsonType 1 embeds a value whose text
starts with `{` or `[` and parses as JSON, verbatim (so large integers and exact decimals
survive); everything else, numbers, `true` and `null` included, stays a string: CLS values
are strings, and guessing scalar types would give one column different types row by row
(which breaks Hive's JsonSerDe) and silently rewrite values such as `007` or `1e400`."""

from __future__ import annotations

from typing import Any

import orjson

from cls_shipper.formats.records import (
    FILENAME,
    HOSTNAME,
    SOURCE,
    TAG,
    TIMESTAMP,
    Batch,
    GroupMeta,
    text,
)
from cls_shipper.service.shipper_config import JsonInfo

_NEWLINE = orjson.OPT_APPEND_NEWLINE
_OPENERS = ("{", "[")


def _structured(value: str) -> Any:
    """The JSON value to embed for a content value under JsonType 1, or the value itself."""
    if value[:1] not in _OPENERS:
        return value
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value
    if "\n" in value or "\r" in value:
        # Verbatim text would break the one-record-per-line framing; re-serialise compactly.
        return parsed
    return orjson.Fragment(value)


class JsonLinesEncoder:
    header = b""

    def __init__(self, info: JsonInfo) -> None:
        self._fields = list(info.meta_fields)
        self._tags = info.enable_tag
        self._structured = info.json_type == 1

    def _template(self, meta: GroupMeta) -> dict[str, Any]:
        """The meta fields of a group, in output order; `__TIMESTAMP__` is a placeholder that
        keeps its position when each record sets it."""
        out: dict[str, Any] = {}
        for name in self._fields:
            if name == TIMESTAMP:
                out[name] = 0
            elif name == SOURCE:
                out[name] = meta.source or ""
            elif name == FILENAME:
                out[name] = meta.filename or ""
            elif name == HOSTNAME:
                out[name] = meta.hostname or ""
        if self._tags:
            out[TAG] = meta.tags
        return out

    def encode(self, batch: Batch) -> list[bytes]:
        """One encoded line per record. Adds the meta fields to `batch.rows` in place."""
        template = self._template(batch.meta)
        rows = batch.rows
        if self._structured:
            for row in rows:
                for key, value in row.items():
                    # Replacing values of existing keys while iterating is allowed.
                    row[key] = _structured(value) if isinstance(value, str) else value
        try:
            return self._dump(rows, batch.times, template)
        except orjson.JSONEncodeError:
            # Invalid UTF-8 from the wire arrives as bytes (see records.text); repair the
            # batch and try again rather than paying for a type check on every value.
            for row in rows:
                for key in [k for k in row if not isinstance(k, str)]:
                    row[text(key)] = row.pop(key)
                for key, value in row.items():
                    if isinstance(value, bytes):
                        row[key] = _structured(text(value)) if self._structured else text(value)
            return self._dump(rows, batch.times, template)

    @staticmethod
    def _dump(rows: list[dict[str, Any]], times: list[int],
              template: dict[str, Any]) -> list[bytes]:
        dumps = orjson.dumps
        # The three loops differ only in what they add; kept apart because this is the
        # hottest loop of the shipper and a per-record branch costs measurably.
        out: list[bytes]
        if TIMESTAMP in template:
            out = []
            append = out.append
            for row, ms in zip(rows, times, strict=True):
                row.update(template)
                row[TIMESTAMP] = ms
                append(dumps(row, option=_NEWLINE))
            return out
        if template:
            out = []
            append = out.append
            for row in rows:
                row.update(template)
                append(dumps(row, option=_NEWLINE))
            return out
        return [dumps(row, option=_NEWLINE) for row in rows]

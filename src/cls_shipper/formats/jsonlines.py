"""JSON lines (spec §8.3, §7.8 JsonInfo): one JSON object per record, one record per line.

Each object holds the record's content keys and the chosen meta fields (`__TIMESTAMP__` as
integer ms, `__SOURCE__`, `__FILENAME__`, `__HOSTNAME__`; "" when the group has no filename
or hostname), plus `__TAG__` as an object of the group's tags when tags are enabled. Meta
fields win over a content key of the same name, so an object never has duplicate keys.
Key order: first the group's fields that are enabled, sorted (`__FILENAME__`,
`__HOSTNAME__`, `__SOURCE__`, `__TAG__`), then the record's content keys and `__TIMESTAMP__`
sorted by code point. records.py explains why upload order is not available; sorting makes
every object's bytes a function of its content alone.

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
from cls_shipper.model.shipper import JsonInfo

_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SORT_KEYS
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
        # Verbatim text would break the one-record-per-line framing; re-serialise compactly
        # (or keep the string if orjson cannot write it back, e.g. nesting beyond its limit).
        try:
            return orjson.Fragment(orjson.dumps(parsed))
        except orjson.JSONEncodeError:
            return value
    return orjson.Fragment(value)


class JsonLinesEncoder:
    header = b""

    def __init__(self, info: JsonInfo) -> None:
        self._fields = list(info.meta_fields)
        self._tags = info.enable_tag
        self._structured = info.json_type == 1

    def _meta(self, meta: GroupMeta) -> dict[str, Any]:
        """The group-constant meta fields (everything but `__TIMESTAMP__`)."""
        out: dict[str, Any] = {}
        for name in self._fields:
            if name == SOURCE:
                out[name] = meta.source or ""
            elif name == FILENAME:
                out[name] = meta.filename or ""
            elif name == HOSTNAME:
                out[name] = meta.hostname or ""
        if self._tags:
            # A Fragment rather than a dict: record dicts then hold no container, so CPython
            # leaves them untracked by the cyclic GC.
            out[TAG] = orjson.Fragment(orjson.dumps(meta.tags, option=orjson.OPT_SORT_KEYS))
        return out

    def encode(self, batch: Batch) -> list[bytes]:
        """One encoded line per record. Adds fields to `batch.rows` in place."""
        meta = self._meta(batch.meta)
        rows = batch.rows
        if self._structured:
            for row in rows:
                for key, value in row.items():
                    # Replacing values of existing keys while iterating is allowed.
                    row[key] = _structured(value) if isinstance(value, str) else value
        try:
            return self._dump(rows, batch.times, meta)
        except orjson.JSONEncodeError:
            # Invalid UTF-8 from the wire arrives as bytes (see records.text); repair the
            # batch and try again rather than paying for a type check on every value.
            for row in rows:
                for key in [k for k in row if not isinstance(k, str)]:
                    row[text(key)] = row.pop(key)
                for key, value in row.items():
                    if isinstance(value, bytes):
                        row[key] = _structured(text(value)) if self._structured else text(value)
            return self._dump(rows, batch.times, meta)

    def _dump(self, rows: list[dict[str, Any]], times: list[int],
              meta: dict[str, Any]) -> list[bytes]:
        dumps = orjson.dumps
        stamp = TIMESTAMP in self._fields
        if not meta:
            if stamp:
                for row, ms in zip(rows, times, strict=True):
                    row[TIMESTAMP] = ms
            return [dumps(row, option=_OPTIONS) for row in rows]
        # The group-constant fields are serialised once and spliced in front of each record's
        # own serialisation (`{"__SOURCE__":…,` + `"__TIMESTAMP__":…,"key":…}`): adding them
        # to every dict costs more than encoding the record.
        prefix = dumps(meta, option=orjson.OPT_SORT_KEYS)[:-1] + b","
        names = frozenset(meta)
        out: list[bytes] = []
        append = out.append
        for row, ms in zip(rows, times, strict=True):
            if stamp:
                row[TIMESTAMP] = ms
            if row and names.isdisjoint(row):
                append(prefix + dumps(row, option=_OPTIONS)[1:])
            else:
                # Empty record, or a content key named like a meta field: meta wins.
                row.update(meta)
                append(dumps(row, option=_OPTIONS))
        return out

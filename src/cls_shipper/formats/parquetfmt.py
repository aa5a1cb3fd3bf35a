"""Parquet (spec §7.8 ParquetInfo, §8.3): one typed column per ParquetKey.

A value is converted strictly: int32/int64 take an optional sign and ASCII digits within
range; float/double take a decimal number with optional exponent; boolean takes
true/false/1/0 in any letter case. `key_non_existing_field` stands in when the key is
missing or its value does not convert: for a string column "" means the empty string and
"NULL" means null; for other types the filler is converted the same way and becomes null
when it does not convert (or is "NULL"). Each batch is converted to Arrow as it is encoded;
rows are buffered in bounded row groups, so memory does not grow with the window;
compression happens inside the file."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import add
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from cls_shipper.formats.records import Batch, column
from cls_shipper.model.shipper import ParquetKey

NULL_FILLER = "NULL"
# A row group is written when either bound is reached: big enough for columnar readers to
# skip efficiently, small enough that the buffered Python lists stay well under 100 MB.
ROW_GROUP_MAX_ROWS = 131_072
ROW_GROUP_MAX_RAW_BYTES = 16 * 1024 * 1024

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "boolean": pa.bool_(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
}
# The codec of a shipper applies inside the file; levels match the stream codecs.
PARQUET_COMPRESSION: dict[str, tuple[str, int | None]] = {
    "snappy": ("snappy", None),
    "gzip": ("gzip", 6),
    "zstd": ("zstd", 3),
    "lz4": ("lz4", None),
    "none": ("none", None),
}

_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLS = {"true": True, "false": False, "1": True, "0": False}
_INT_BOUNDS = {"int32": 2**31, "int64": 2**63}


# Digits (leading zeros aside) beyond which no value is within int64's range. Checked before
# int(), which refuses strings of more than 4,300 digits with a ValueError (CPython's guard
# against quadratic conversion): such a value is out of range, so it takes the filler.
_MAX_INT_DIGITS = 19


def _int_parser(bound: int) -> Callable[[str], int | None]:
    def parse(value: str) -> int | None:
        if not _INT.fullmatch(value):
            return None
        if len(value) > _MAX_INT_DIGITS + 1 and len(value.lstrip("+-0")) > _MAX_INT_DIGITS:
            return None
        number = int(value)
        return number if -bound <= number < bound else None
    return parse


def _float_parser(value: str) -> float | None:
    return float(value) if _FLOAT.fullmatch(value) else None


def _bool_parser(value: str) -> bool | None:
    return _BOOLS.get(value.lower())


def _parser(key_type: str) -> Callable[[str], Any]:
    if key_type in _INT_BOUNDS:
        return _int_parser(_INT_BOUNDS[key_type])
    if key_type in ("float", "double"):
        return _float_parser
    if key_type == "boolean":
        return _bool_parser
    raise ValueError(f"unknown parquet key type {key_type!r}")


_UNSEEN = object()
# Columns such as status or method repeat a few values: each distinct one is parsed once. The
# cache is emptied when it reaches this size, so a column of unique values cannot grow it.
_CACHE_MAX = 65_536


class _Column:
    def __init__(self, key: ParquetKey) -> None:
        self.name = key.key_name
        self.type = ARROW_TYPES[key.key_type]
        self.is_string = key.key_type == "string"
        filler = key.key_non_existing_field
        self.filler_len = len(filler)
        self._parse = None if self.is_string else _parser(key.key_type)
        if filler == NULL_FILLER:
            self._fill: Any = None
        elif self._parse is None:
            self._fill = filler
        else:
            self._fill = self._parse(filler)
        self._cache: dict[str, Any] = {}

    def to_arrow(self, values: list[str | None]) -> pa.Array:
        fill = self._fill
        parse = self._parse
        if parse is None:
            return pa.array([fill if v is None else v for v in values], type=self.type)
        cache = self._cache
        if len(cache) >= _CACHE_MAX:
            cache.clear()
        out: list[Any] = []
        append = out.append
        for value in values:
            if value is None:
                append(fill)
                continue
            parsed = cache.get(value, _UNSEEN)
            if parsed is _UNSEEN:
                parsed = parse(value)
                if parsed is None:
                    parsed = fill
                cache[value] = parsed
            append(parsed)
        return pa.array(out, type=self.type)


@dataclass(slots=True)
class ParquetRows:
    """A batch in column form: one Arrow array per column and per-record raw sizes."""

    columns: list[pa.Array]
    sizes: list[int]


class ByteOutput(Protocol):
    def write(self, data: bytes) -> int: ...


class ParquetEncoder:
    """Turns batches into column lists. The "raw size" of a record, which drives splitting at
    max_size, is the length of the same columns as a CSV line: text lengths (the filler's
    where missing) plus one separator per column."""

    def __init__(self, keys: Sequence[ParquetKey], compress: str) -> None:
        self.columns = [_Column(k) for k in keys]
        self._keys = [k.key_name for k in keys]
        self.schema = pa.schema([pa.field(c.name, c.type) for c in self.columns])
        self.compression, self.level = PARQUET_COMPRESSION[compress]

    def encode(self, batch: Batch) -> ParquetRows:
        """The batch converted to Arrow here, not when its row group is written, so that
        whatever a record makes the conversion raise is raised for the batch it is in (the
        window encoder then isolates the record) rather than for a whole row group."""
        columns: list[list[str | None]] = [column(batch, k, None) for k in self._keys]
        sizes = [len(self.columns)] * len(batch)
        for col, spec in zip(columns, self.columns, strict=True):
            missing = spec.filler_len
            sizes = list(map(add, sizes, [missing if v is None else len(v) for v in col]))
        return ParquetRows([spec.to_arrow(values)
                            for spec, values in zip(self.columns, columns, strict=True)], sizes)

    def open(self, out: ByteOutput) -> ParquetFile:
        return ParquetFile(self, out)


class ParquetFile:
    """One Parquet object being written; `add` takes a slice of a ParquetRows."""

    def __init__(self, encoder: ParquetEncoder, out: ByteOutput) -> None:
        self._encoder = encoder
        self._writer = pq.ParquetWriter(
            pa.PythonFile(out, mode="w"), encoder.schema,
            compression=encoder.compression, compression_level=encoder.level,
        )
        self._pending: list[list[pa.Array]] = [[] for _ in encoder.columns]
        self._pending_rows = 0
        self._pending_bytes = 0

    def add(self, rows: ParquetRows, start: int, end: int, raw_bytes: int) -> None:
        whole = start == 0 and end == len(rows.sizes)
        for pending, values in zip(self._pending, rows.columns, strict=True):
            pending.append(values if whole else values.slice(start, end - start))
        self._pending_rows += end - start
        self._pending_bytes += raw_bytes
        if (self._pending_rows >= ROW_GROUP_MAX_ROWS
                or self._pending_bytes >= ROW_GROUP_MAX_RAW_BYTES):
            self._flush()

    def _flush(self) -> None:
        if not self._pending_rows:
            return
        # One contiguous array per column: the file's bytes then depend on the values alone,
        # not on how the window's groups sliced them.
        arrays = [pieces[0] if len(pieces) == 1 else pa.concat_arrays(pieces)
                  for pieces in self._pending]
        table = pa.Table.from_arrays(arrays, schema=self._encoder.schema)
        self._writer.write_table(table, row_group_size=self._pending_rows)
        self._pending = [[] for _ in self._encoder.columns]
        self._pending_rows = 0
        self._pending_bytes = 0

    def finish(self) -> None:
        self._flush()
        self._writer.close()

"""Encoders that refuse chosen records, for the tests of rejects: nothing ingest accepts makes
a real encoder refuse one today (docs/formats.md), so the tests choose which records are
"poison". The refusal happens where a real one would, inside the format's `encode`, and the C
transcoder leaves a chunk holding such a record to Python, as it leaves every chunk it does
not encode."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from cls_shipper.formats import encoder
from cls_shipper.formats.csvfmt import CsvEncoder
from cls_shipper.formats.jsonlines import JsonLinesEncoder
from cls_shipper.formats.parquetfmt import ParquetEncoder
from cls_shipper.formats.records import Batch, iter_batches

Predicate = Callable[[dict[str, Any]], bool]


class Poison(ValueError):
    pass


def _refusing(encode: Callable[[Any, Batch], Any], poisoned: Predicate
              ) -> Callable[[Any, Batch], Any]:
    def refuse(self: Any, batch: Batch) -> Any:
        if any(poisoned(row) for row in batch.rows):
            raise Poison("this encoder refuses the test's poison records")
        return encode(self, batch)
    return refuse


class _RefusingWire:
    def __init__(self, wire: Any, poisoned: Predicate) -> None:
        self.Unsupported = wire.Unsupported
        self._wire = wire
        self._poisoned = poisoned

    def encode_json_lines(self, payload: bytes, *args: Any) -> Any:
        if any(self._poisoned(row) for batch in iter_batches(payload, "") for row in batch.rows):
            raise self.Unsupported("poisoned")
        return self._wire.encode_json_lines(payload, *args)


@contextlib.contextmanager
def swapped(target: Any, name: str, value: Any) -> Iterator[None]:
    before = getattr(target, name)
    setattr(target, name, value)
    try:
        yield
    finally:
        setattr(target, name, before)


@contextlib.contextmanager
def poison(wire: Any, poisoned: Predicate) -> Iterator[None]:
    """Within: the three encoders refuse a batch holding a `poisoned` record (its contents),
    and `wire` (the C transcoder, or None) leaves such chunks to Python."""
    with contextlib.ExitStack() as stack:
        for cls in (JsonLinesEncoder, CsvEncoder, ParquetEncoder):
            stack.enter_context(swapped(cls, "encode", _refusing(cls.encode, poisoned)))
        if wire is not None:
            stack.enter_context(swapped(encoder, "_wire", _RefusingWire(wire, poisoned)))
        yield

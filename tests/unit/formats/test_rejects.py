"""No record blocks a window: a record the format refuses goes to the rejects object, with its
offset and reason, and everything else ships. Nothing ingest accepts makes an encoder refuse
a record today, so these tests make the encoders refuse some (tests/helpers/rejects.py); the
fuzz rounds at the end also run without that, on generated and mutated uploads."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest

from cls_shipper.formats.encoder import Chunk, WindowResult, encode_window
from cls_shipper.ingest.native import wire
from cls_shipper.model.shipper import LEGACY_JSON, ContentInfo, CsvInfo, ParquetKey
from tests.helpers.formats import Collector, config, group, payload
from tests.helpers.poison import Poison, poison
from tests.helpers.rejects import run_round
from tests.helpers.shipping import decompress, read_records

T_S = 1_717_200_000  # a log time in seconds: the rejects object keeps it as uploaded
POISON_AT = 1134  # in the first group of its chunk, the one with metadata
CONTENTS = {
    "json": ContentInfo("json", json=LEGACY_JSON),
    "csv": ContentInfo("csv", csv=CsvInfo(["id", "msg"], ",", '"', "-", False)),
    "parquet": ContentInfo("parquet", parquet=[ParquetKey("id", "int64", "NULL"),
                                               ParquetKey("msg", "string", "")]),
}


def refused(row: dict[str, Any]) -> bool:
    return "bad" in row


def window(records: int = 3000, per_chunk: int = 500) -> list[Chunk]:
    """Records 0..n-1 with id=i at offset 1000+i; record POISON_AT has a key `bad`, which
    the poisoned encoders refuse."""
    chunks: list[Chunk] = []
    for first in range(0, records, per_chunk):
        logs = []
        for i in range(first, min(first + per_chunk, records)):
            contents = [("id", str(i)), ("msg", f"line {i}")]
            if i == POISON_AT:
                contents.append(("bad", "value"))
            logs.append((T_S + i, contents))
        groups = [group(logs[:200], source="10.0.0.1", filename="/a.log", hostname="web-1",
                        tags=[("env", "prod")]), group(logs[200:])]
        chunks.append((payload(groups), "192.0.2.1", 1000 + first))
    return chunks


def ship(fmt: str, chunks: list[Chunk]) -> tuple[WindowResult, Collector, Collector]:
    parts, rejects = Collector(), Collector()
    result = encode_window(chunks, config(CONTENTS[fmt], "gzip" if fmt != "parquet" else "zstd"),
                           parts.open, max_part_raw_bytes=20_000,
                           open_rejects=lambda: rejects.open(0))
    return result, parts, rejects


@pytest.mark.parametrize("fmt", sorted(CONTENTS))
def test_one_poison_record_among_thousands(fmt: str) -> None:
    with poison(wire, refused):
        result, parts, rejects = ship(fmt, window())
    assert (result.records, result.records_rejected) == (2999, 1)
    codec = "gzip" if fmt != "parquet" else "zstd"
    shipped = [r for p in parts.parts
               for r in read_records(p.data, fmt, codec, csv_keys=["id", "msg"])]
    assert [int(r["id"]) for r in shipped] == [i for i in range(3000) if i != POISON_AT]
    assert result.rejects is not None and result.rejects.records == 1
    assert result.out_bytes == sum(len(p.data) for p in parts.parts + rejects.parts)
    (line,) = decompress(rejects.parts[0].data, codec).splitlines()
    entry = json.loads(line)
    assert entry == {
        "offset": 1000 + POISON_AT, "time": T_S + POISON_AT,
        "contents": {"id": str(POISON_AT), "msg": f"line {POISON_AT}", "bad": "value"},
        "source": "10.0.0.1", "filename": "/a.log", "hostname": "web-1",
        "tags": {"env": "prod"},
        "reason": "Poison: this encoder refuses the test's poison records"}
    # A retry writes the same bytes, the rejects object's included.
    with poison(wire, refused):
        _, parts_again, rejects_again = ship(fmt, window())
    assert parts_again.datas() == parts.datas() and rejects_again.datas() == rejects.datas()


def test_group_without_source_takes_the_uploader_ip_in_rejects() -> None:
    chunk = payload([group([(T_S, [("a", "1"), ("bad", "2")])])])
    with poison(wire, refused):
        result, _, rejects = ship("json", [(chunk, "203.0.113.9", 7)])
    entry = json.loads(gzip.decompress(rejects.parts[0].data))
    assert (result.records, entry["offset"], entry["source"], entry["filename"]) == (
        0, 7, "203.0.113.9", None)


def test_without_a_rejects_object_the_error_fails_the_window() -> None:
    parts = Collector()
    with poison(wire, refused), pytest.raises(Poison):
        encode_window(window(1500), config(CONTENTS["csv"]), parts.open)
    assert all(p.aborted or p.closed for p in parts.parts)


def test_no_rejects_no_object() -> None:
    result, _, rejects = ship("json", window(600))
    assert (result.records_rejected, result.rejects, rejects.parts) == (0, None, [])


@pytest.mark.parametrize("seeds", [range(0, 150), range(150, 300)])
def test_fuzz_rounds_every_accepted_record_ships_or_is_rejected(seeds: range) -> None:
    """A short run of `make fuzz-rejects`."""
    for seed in seeds:
        run_round(seed, wire)

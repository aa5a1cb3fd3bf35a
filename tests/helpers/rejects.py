"""The "no record blocks a window" property, checked on generated and mutated uploads.

One round: LogGroupLists from the generator of tests/unit/ingest/test_wire.py, half of them
mutated, go through upload decoding (`decode_upload`, with the C scanner and with the Python
parser); the ones it accepts form a window, stored as they were sent, with consecutive offsets.
The window is encoded for JSON lines (JsonType 0 and 1, through the C transcoder and through
Python), CSV and Parquet, with rejects enabled, and the objects are read back by readers that
are not ours (gzip + json, csv, pyarrow). Every accepted record's offset must appear exactly
once: as the next record of the parts, in offset order, with its own contents, or as a line of
the rejects object with its own contents. Optionally the encoders are made to refuse some
records (`poison`), so the isolation itself is exercised; nothing that ingest accepts makes
them refuse one today."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
from dataclasses import dataclass
from functools import partial
from typing import Any

import pyarrow.parquet as pq

from cls_shipper.errors import ServiceError
from cls_shipper.formats import encoder
from cls_shipper.formats.encoder import Chunk, WindowResult, encode_window
from cls_shipper.ingest import decode
from cls_shipper.ingest.cls_pb import LogGroupList
from cls_shipper.model.shipper import (
    LEGACY_JSON,
    ContentInfo,
    CsvInfo,
    JsonInfo,
    ParquetKey,
    ShipperConfig,
)
from tests.helpers.formats import Collector, config
from tests.helpers.poison import poison, swapped
from tests.helpers.shipping import decompress
from tests.unit.ingest.test_wire import group_list, mutate

META = ("__SOURCE__", "__FILENAME__", "__HOSTNAME__", "__TIMESTAMP__", "__TAG__")
CSV_KEYS = ["status", "a", "request", "__CONTENT__", "é", "__SOURCE__"]
PARQUET_KEYS = [ParquetKey("status", "int32", "0"), ParquetKey("a", "int64", "NULL"),
                ParquetKey("b", "boolean", "false"), ParquetKey("request", "string", ""),
                ParquetKey("__CONTENT__", "string", "NULL"), ParquetKey("x", "double", "NULL")]
STRING_COLUMNS = {"request": "", "__CONTENT__": None}

CONFIGS: list[tuple[str, ContentInfo, str]] = [
    ("json0-legacy", ContentInfo("json", json=LEGACY_JSON), "gzip"),
    ("json0-bare", ContentInfo("json", json=JsonInfo(False, [], 0)), "gzip"),
    ("json1", ContentInfo("json", json=JsonInfo(True, ["__TIMESTAMP__", "__SOURCE__"], 1)),
     "gzip"),
    ("csv", ContentInfo("csv", csv=CsvInfo(CSV_KEYS, ",", '"', "-", True)), "gzip"),
    ("parquet", ContentInfo("parquet", parquet=PARQUET_KEYS), "zstd"),
]


@dataclass(frozen=True)
class Record:
    offset: int
    contents: dict[str, str]  # a repeated key keeps its last value, as shipping reads it


def poisoned(row: dict[str, Any]) -> bool:
    """The records the poisoned encoders refuse: about one in five of the generator's."""
    return len(row) % 5 == 3


def accepted_window(rng: random.Random, uploads: int, python_ingest: bool
                    ) -> tuple[list[Chunk], list[Record]]:
    """The uploads ingest accepts, as a window (chunk, ip, first offset), and their records."""
    chunks: list[Chunk] = []
    records: list[Record] = []
    for _ in range(uploads):
        raw = group_list(rng, clean=rng.random() < 0.8)
        if rng.random() < 0.5:
            raw = mutate(rng, raw)
        with swapped(decode, "_wire", None) if python_ingest else contextlib.nullcontext():
            try:
                decoded = decode.decode_upload(raw, "application/x-protobuf", None)
            except ServiceError:
                continue
        offset = len(records)
        chunks.append((raw, rng.choice(["192.0.2.10", ""]), offset))
        message = LogGroupList.FromString(raw)
        for group in message.logGroupList:
            for log in group.logs:
                contents = {c.key: c.value for c in log.contents}
                records.append(Record(len(records), contents))
        assert len(records) - offset == decoded.record_count, "the window's offsets follow ingest"
    return chunks, records


def _lines(data: bytes, codec: str = "gzip") -> list[str]:
    return [line for line in decompress(data, codec).decode().split("\n") if line]


def _check_json(row: dict[str, Any], record: Record, info: JsonInfo) -> None:
    meta = set(info.meta_fields) | ({"__TAG__"} if info.enable_tag else set())
    assert set(row) - meta == set(record.contents) - meta, (row, record)
    for key, value in record.contents.items():
        if key in meta:
            continue  # a meta field wins over a content key of its name
        shipped = row[key]
        if isinstance(shipped, dict | list):
            assert info.json_type == 1 and shipped == json.loads(value), (key, value, shipped)
        else:
            assert shipped == value, (key, value, shipped)


def _check_csv(row: list[str], record: Record, info: CsvInfo) -> None:
    assert len(row) == len(info.keys), (row, record)
    for key, shipped in zip(info.keys, row, strict=True):
        if key not in META:
            assert shipped == record.contents.get(key, info.non_existing_field), (key, row)


def check_window(name: str, conf: ShipperConfig, result: WindowResult, parts: Collector,
                 rejects: Collector, records: list[Record]) -> set[int]:
    """Every record shipped once or rejected once; the offsets rejected."""
    content = conf.content
    rejected: dict[int, dict[str, Any]] = {}
    if rejects.parts:  # JSON lines in the shipper's codec, whatever the format
        for line in _lines(rejects.parts[0].data, conf.compress):
            entry = json.loads(line)
            assert entry["offset"] not in rejected, f"{name}: offset rejected twice"
            assert entry["reason"], entry
            rejected[entry["offset"]] = entry
    assert len(rejected) == result.records_rejected
    for offset, entry in rejected.items():
        assert entry["contents"] == records[offset].contents, (name, offset, entry)
    expected = [r for r in records if r.offset not in rejected]
    shipped: list[Any] = []
    for part in parts.parts:
        if content.format == "json":
            shipped += [json.loads(line) for line in _lines(part.data, conf.compress)]
        elif content.format == "csv":
            assert content.csv is not None
            rows = list(csv.reader(io.StringIO(decompress(part.data, conf.compress).decode()),
                                   delimiter=content.csv.delimiter,
                                   quotechar=content.csv.escape_char))
            assert rows[0] == content.csv.keys  # print_key: a header in every object
            shipped += rows[1:]
        else:
            shipped += pq.read_table(io.BytesIO(part.data), use_threads=False).to_pylist()
    assert len(shipped) == len(expected) == result.records, (
        f"{name}: {len(shipped)} shipped, {len(rejected)} rejected of {len(records)}")
    for row, record in zip(shipped, expected, strict=True):
        if content.format == "json":
            assert content.json is not None
            _check_json(row, record, content.json)
        elif content.format == "csv":
            assert content.csv is not None
            _check_csv(row, record, content.csv)
        else:
            for key, filler in STRING_COLUMNS.items():
                assert row[key] == record.contents.get(key, filler), (key, row, record)
    return set(rejected)


def run_round(seed: int, wire: Any) -> tuple[int, int]:
    """One window through every config, each with and without poisoned encoders and through
    the C paths and the Python ones; (records checked, records rejected)."""
    rng = random.Random(seed)
    python_paths = rng.random() < 0.5
    chunks, records = accepted_window(rng, rng.randint(1, 6), python_paths)
    checked = rejected = 0
    for name, content, codec in CONFIGS:
        conf: ShipperConfig = config(content, codec)
        for poisoning in (False, True):
            parts, rejects = Collector(), Collector()
            transcoder = None if python_paths else wire
            with swapped(encoder, "_wire", transcoder), \
                    poison(transcoder, poisoned) if poisoning else contextlib.nullcontext():
                result = encode_window(chunks, conf, parts.open,
                                       max_part_raw_bytes=rng.choice([200, 5000, 10**8]),
                                       open_rejects=partial(rejects.open, 0))
            offsets = check_window(name, conf, result, parts, rejects, records)
            if poisoning:
                assert offsets == {r.offset for r in records if poisoned(r.contents)}, name
            checked += len(records)
            rejected += len(offsets)
    return checked, rejected

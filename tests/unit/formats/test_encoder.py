"""encode_window end to end: stored chunks in, objects out, every object read back with an
independent reader (gzip, lzop, zstandard, lz4.frame, cramjam, pyarrow.parquet, csv)."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cls_shipper.errors import CorruptChunkError, FormatError
from cls_shipper.formats import parquetfmt
from cls_shipper.formats.encoder import Chunk, encode_window
from cls_shipper.model.naming import content_type, file_extension
from cls_shipper.model.shipper import (
    LEGACY_JSON,
    ContentInfo,
    CsvInfo,
    FilterRule,
    JsonInfo,
    ParquetKey,
)
from cls_shipper.sinks.base import WrittenObject
from tests.helpers.formats import Collector, config, group, payload
from tests.helpers.shipping import decompress

T_MS = 1_717_200_000_123
CODECS = ["gzip", "lzop", "snappy", "zstd", "lz4", "none"]


def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys {keys}"
    return dict(pairs)


def json_objects(text: bytes) -> list[dict[str, Any]]:
    assert text.endswith(b"\n")
    return [json.loads(line, object_pairs_hook=no_duplicates)
            for line in text.decode().split("\n")[:-1]]


def nginx_window(records: int = 20, per_group: int = 7) -> list[Chunk]:
    """A few chunks; record i has id=i so tests can check order and completeness."""
    chunks = []
    i = 0
    while i < records:
        first = i  # the chunk's first offset: record i is at offset i
        groups = []
        for g in range(2):
            logs = []
            for _ in range(per_group):
                if i >= records:
                    break
                logs.append((T_MS + i, [("id", str(i)), ("status", "200" if i % 3 else "404"),
                                        ("msg", f"line {i} " + "x" * (i % 17))]))
                i += 1
            if logs:
                groups.append(group(logs, source=f"10.0.0.{g}", filename="/var/log/a.log",
                                    hostname="web-1", tags=[("env", "prod")]))
        chunks.append((payload(groups), "192.0.2.1", first))
    return chunks


# ---- JSON lines -----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
def test_json_lines_every_codec(codec: str, tmp_path: Path) -> None:
    if codec == "lzop" and shutil.which("lzop") is None:
        pytest.skip("lzop program missing")
    sink = Collector()
    result = encode_window(nginx_window(50), config(ContentInfo("json", json=LEGACY_JSON),
                                                    codec), sink.open)
    assert result.records == 50 and result.records_filtered == 0
    assert [p.index for p in result.parts] == [0]
    data = sink.parts[0].data
    assert result.parts[0].written == WrittenObject(
        "bucket-1250000001", "part-0", len(data), hashlib.md5(data).hexdigest(),
        hashlib.sha256(data).hexdigest())
    assert result.out_bytes == len(data)
    raw = decompress(data, codec)
    assert result.raw_bytes == result.parts[0].raw_bytes == len(raw)
    objects = json_objects(raw)
    assert [o["id"] for o in objects] == [str(i) for i in range(50)]
    assert all(o["__TIMESTAMP__"] == T_MS + int(o["id"]) for o in objects)
    assert all(o["__TAG__"] == {"env": "prod"} for o in objects)


def test_json_meta_fields_tags_and_time_units() -> None:
    chunk = payload([
        group([(1_717_200_000, [("a", "1"), ("b", "x")]),  # seconds
               (1_717_200_000_500, [("a", "2")]),  # milliseconds
               (1_717_200_000_500_123, [("a", "3")])],  # microseconds
              source="10.1.1.1", filename="/var/log/app.log", hostname="host-a",
              tags=[("zone", "ap-1"), ("app", "shop"), ("zone", "ap-2")]),
        group([(1_717_200_001_000, [("__CONTENT__", "full text line")])]),  # no meta at all
    ])
    sink = Collector()
    encode_window([(chunk, "203.0.113.9", 0)], config(ContentInfo("json", json=LEGACY_JSON)),
                  sink.open)
    objects = json_objects(sink.parts[0].data)
    assert objects[0] == {"a": "1", "b": "x", "__TIMESTAMP__": 1_717_200_000_000,
                          "__SOURCE__": "10.1.1.1", "__FILENAME__": "/var/log/app.log",
                          "__HOSTNAME__": "host-a", "__TAG__": {"zone": "ap-2", "app": "shop"}}
    assert objects[1]["__TIMESTAMP__"] == 1_717_200_000_500
    assert objects[2]["__TIMESTAMP__"] == 1_717_200_000_500
    # CLS fills __SOURCE__ with the uploader's IP when the group has none.
    assert objects[3] == {"__CONTENT__": "full text line", "__TIMESTAMP__": 1_717_200_001_000,
                          "__SOURCE__": "203.0.113.9", "__FILENAME__": "", "__HOSTNAME__": "",
                          "__TAG__": {}}
    # Group fields first (sorted), then the record's own keys and __TIMESTAMP__ (sorted).
    group_fields = ["__FILENAME__", "__HOSTNAME__", "__SOURCE__", "__TAG__"]
    for line in sink.parts[0].data.split(b"\n")[:-1]:
        keys = list(json.loads(line))
        assert keys[:4] == group_fields and keys[4:] == sorted(keys[4:])


def test_json_only_chosen_meta_fields() -> None:
    chunk = payload([group([(T_MS, [("k", "v")])], source="1.2.3.4", filename="f",
                           tags=[("t", "1")])])
    for info, expected in [
        (JsonInfo(False, [], 0), {"k": "v"}),
        (JsonInfo(False, ["__TIMESTAMP__"], 0), {"k": "v", "__TIMESTAMP__": T_MS}),
        (JsonInfo(True, ["__FILENAME__"], 0), {"k": "v", "__FILENAME__": "f",
                                                "__TAG__": {"t": "1"}}),
    ]:
        sink = Collector()
        encode_window([(chunk, "", 0)], config(ContentInfo("json", json=info)), sink.open)
        assert json_objects(sink.parts[0].data) == [expected]


def test_json_meta_wins_over_content_key_of_same_name() -> None:
    chunk = payload([group([(T_MS, [("__SOURCE__", "spoofed"), ("__TIMESTAMP__", "0"),
                                    ("k", "v")])], source="10.0.0.1")])
    sink = Collector()
    encode_window([(chunk, "", 0)], config(ContentInfo("json", json=LEGACY_JSON)), sink.open)
    (obj,) = json_objects(sink.parts[0].data)  # no_duplicates checks the raw line
    assert obj["__SOURCE__"] == "10.0.0.1" and obj["__TIMESTAMP__"] == T_MS


def test_json_type_1_embeds_objects_and_arrays_only() -> None:
    values = [("obj", '{"a": 1, "b": [true, null]}'), ("arr", "[1,2,3]"), ("num", "42"),
              ("bool", "true"), ("null", "null"), ("bad", "{not json"),
              ("big", '{"n": 123456789012345678901234567890, "x": 0.10000000000000000001}'),
              ("multi", '{"a":\n  1}'), ("str", '"quoted"'), ("empty", ""),
              ("deep", "[" * 300 + "\n" + "]" * 300)]  # too deep for orjson to write back
    chunk = payload([group([(T_MS, values)])])
    structured, plain = Collector(), Collector()
    encode_window([(chunk, "", 0)], config(ContentInfo("json", json=JsonInfo(False, [], 1))),
                  structured.open)
    encode_window([(chunk, "", 0)], config(ContentInfo("json", json=JsonInfo(False, [], 0))),
                  plain.open)
    (obj,) = json_objects(structured.parts[0].data)
    assert obj["obj"] == {"a": 1, "b": [True, None]}
    assert obj["arr"] == [1, 2, 3]
    assert obj["big"]["n"] == 123456789012345678901234567890  # embedded verbatim, no loss
    assert b"0.10000000000000000001" in structured.parts[0].data
    assert obj["multi"] == {"a": 1}
    assert structured.parts[0].data.count(b"\n") == 1  # still one record per line
    for key in ("num", "bool", "null", "bad", "str", "empty", "deep"):
        assert obj[key] == dict(values)[key]
    (flat,) = json_objects(plain.parts[0].data)
    assert flat == dict(values)


def test_invalid_utf8_from_the_wire_is_replaced() -> None:
    # Content{key:"k", value:0xff 'o' 'k'} inside Log{time, contents} inside a group.
    content = b"\x0a\x01k\x12\x03\xffok"
    log = b"\x08" + bytes([0x80, 0x80, 0x80, 0x80, 0x80, 0x32]) + b"\x12" + \
        bytes([len(content)]) + content
    grp = b"\x0a" + bytes([len(log)]) + log
    chunk = b"\x0a" + bytes([len(grp)]) + grp
    sink = Collector()
    encode_window([(chunk, "", 0)], config(ContentInfo("json", json=JsonInfo(False, [], 0))),
                  sink.open)
    assert json_objects(sink.parts[0].data) == [{"k": "\ufffdok"}]
    csv_sink = Collector()
    encode_window([(chunk, "", 0)], config(ContentInfo("csv", csv=CsvInfo(["k"], ",", '"', "-",
                                                                       False))), csv_sink.open)
    assert csv_sink.parts[0].data == "\ufffdok\n".encode()


# ---- CSV ------------------------------------------------------------------------------------

TRICKY = ["plain", "has,comma", 'has"quote', "has'apos", "multi\nline", "cr\ronly", "", " pad ",
          "semi;colon", "tab\there", "pipe|bar", "unicode é 日本"]


@pytest.mark.parametrize(("delimiter", "quote"), [(",", '"'), (";", "'"), ("\t", '"'),
                                                  ("|", "'"), (" ", '"')])
def test_csv_round_trips_through_the_csv_module(delimiter: str, quote: str) -> None:
    logs = [(T_MS + i, [("v", value), ("n", str(i))]) for i, value in enumerate(TRICKY)]
    chunk = payload([group(logs, source="10.0.0.7", filename="/f.log")])
    keys = ["n", "v", "missing", "__SOURCE__", "__FILENAME__", "__HOSTNAME__", "__TIMESTAMP__"]
    info = CsvInfo(keys, delimiter, quote, "N/A", True)
    sink = Collector()
    result = encode_window([(chunk, "", 0)], config(ContentInfo("csv", csv=info), "gzip"),
                           sink.open)
    text = gzip.decompress(sink.parts[0].data).decode()
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar=quote,
                           doublequote=True))
    assert rows[0] == keys
    assert rows[1:] == [[str(i), value, "N/A", "10.0.0.7", "/f.log", "N/A", str(T_MS + i)]
                        for i, value in enumerate(TRICKY)]
    assert result.records == len(TRICKY)


def test_csv_without_escape_char_writes_fields_as_they_are() -> None:
    # CLS "raw" shipping: __CONTENT__ only, space delimiter, no quoting, no header.
    lines = ["GET /a 200", 'say "hi", ok', "first\nsecond"]
    chunk = payload([group([(T_MS, [("__CONTENT__", line)]) for line in lines])])
    info = CsvInfo(["__CONTENT__", "other"], " ", "", "None", False)
    sink = Collector()
    encode_window([(chunk, "", 0)], config(ContentInfo("csv", csv=info)), sink.open)
    assert sink.parts[0].data.decode() == "".join(f"{line} None\n" for line in lines)


def test_csv_header_row_in_every_part() -> None:
    info = CsvInfo(["id", "status"], ",", '"', "", True)
    sink = Collector()
    result = encode_window(nginx_window(30), config(ContentInfo("csv", csv=info)), sink.open,
                           max_part_raw_bytes=60)
    assert len(result.parts) > 2
    ids: list[str] = []
    for part in sink.parts:
        rows = list(csv.reader(io.StringIO(part.data.decode(), newline="")))
        assert rows[0] == ["id", "status"]
        ids += [r[0] for r in rows[1:]]
    assert ids == [str(i) for i in range(30)]


# ---- Parquet --------------------------------------------------------------------------------

PARQUET_KEYS = [
    ParquetKey("s", "string", ""), ParquetKey("s_null", "string", "NULL"),
    ParquetKey("s_fill", "string", "n/a"), ParquetKey("i32", "int32", "-1"),
    ParquetKey("i64", "int64", "NULL"), ParquetKey("f", "float", "bad"),
    ParquetKey("d", "double", "0.5"), ParquetKey("b", "boolean", "false"),
    ParquetKey("__TIMESTAMP__", "int64", "0"), ParquetKey("__SOURCE__", "string", ""),
]


def parquet_window() -> list[Chunk]:
    full = [("s", "x"), ("s_null", "y"), ("s_fill", "z"), ("i32", "42"),
            ("i64", "9007199254740993"), ("f", "1.5"), ("d", "-2e3"), ("b", "TRUE")]
    invalid = [("s", "NULL"), ("i32", "2147483648"), ("i64", "1.0"), ("f", "abc"),
               ("d", "1_000"), ("b", "yes")]
    return [(payload([group([(T_MS, full), (T_MS + 1, []), (T_MS + 2, invalid)],
                            source="10.9.9.9")]), "", 0)]


@pytest.mark.parametrize("codec", ["snappy", "gzip", "zstd", "lz4", "none"])
def test_parquet_types_fillers_and_codec(codec: str) -> None:
    sink = Collector()
    conf = config(ContentInfo("parquet", parquet=PARQUET_KEYS), codec)
    result = encode_window(parquet_window(), conf, sink.open)
    assert result.records == 3 and file_extension(conf) == ".parquet"
    data = sink.parts[0].data
    assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"
    table = pq.read_table(pa.BufferReader(data), use_threads=False)
    assert table.schema.types == [pa.string(), pa.string(), pa.string(), pa.int32(), pa.int64(),
                                  pa.float32(), pa.float64(), pa.bool_(), pa.int64(), pa.string()]
    assert table.to_pydict() == {
        "s": ["x", "", "NULL"],
        "s_null": ["y", None, None],
        "s_fill": ["z", "n/a", "n/a"],
        "i32": [42, -1, -1],
        "i64": [9007199254740993, None, None],
        "f": [1.5, None, None],
        "d": [-2000.0, 0.5, 0.5],
        "b": [True, False, False],
        "__TIMESTAMP__": [T_MS, T_MS + 1, T_MS + 2],
        "__SOURCE__": ["10.9.9.9"] * 3,
    }
    metadata = pq.ParquetFile(pa.BufferReader(data)).metadata
    expected = {"none": "UNCOMPRESSED"}.get(codec, codec.upper())
    assert metadata.row_group(0).column(0).compression == expected


def test_parquet_writes_bounded_row_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parquetfmt, "ROW_GROUP_MAX_ROWS", 8)
    sink = Collector()
    keys = [ParquetKey("id", "int64", "NULL"), ParquetKey("msg", "string", "")]
    encode_window(nginx_window(50), config(ContentInfo("parquet", parquet=keys), "zstd"),
                  sink.open)
    file = pq.ParquetFile(pa.BufferReader(sink.parts[0].data))
    # Batches of 7 records: a row group is written once 8 rows are pending (14, 14, 14, 8).
    assert [file.metadata.row_group(i).num_rows
            for i in range(file.metadata.num_row_groups)] == [14, 14, 14, 8]
    assert file.read().column("id").to_pylist() == list(range(50))


# ---- filters --------------------------------------------------------------------------------


def test_filter_rules_capture_group_and_and() -> None:
    logs = [(T_MS, [("status", "404"), ("host", "172.16.0.1")]),
            (T_MS, [("status", "404"), ("host", "10.0.0.1")]),
            (T_MS, [("status", "200"), ("host", "172.16.9.9")]),
            (T_MS, [("host", "172.16.1.1")]),  # no status: does not match
            (T_MS, [("status", "4040"), ("host", "172.16.1.1")])]
    chunk = payload([group(logs)])
    rules = [FilterRule("status", "(.*)", "404"),
             FilterRule("host", r"^(\d+\.\d+)\..*", "172.16")]
    sink = Collector()
    result = encode_window([(chunk, "", 0)], config(ContentInfo(
        "json", json=JsonInfo(False, [], 0)), rules=rules), sink.open)
    assert json_objects(sink.parts[0].data) == [{"status": "404", "host": "172.16.0.1"}]
    assert (result.records, result.records_filtered) == (1, 4)


def test_filter_rule_without_group_compares_whole_match_and_meta_keys() -> None:
    chunk = payload([group([(T_MS, [("__CONTENT__", "ERROR disk full")]),
                            (T_MS, [("__CONTENT__", "INFO started")])], source="10.0.0.5"),
                     group([(T_MS, [("__CONTENT__", "ERROR again")])], source="10.0.0.6")])
    rules = [FilterRule("__CONTENT__", "ERROR", "ERROR"),
             FilterRule("__SOURCE__", r"\d+$", "5")]
    sink = Collector()
    result = encode_window([(chunk, "", 0)], config(ContentInfo(
        "json", json=JsonInfo(False, [], 0)), rules=rules), sink.open)
    assert json_objects(sink.parts[0].data) == [{"__CONTENT__": "ERROR disk full"}]
    assert result.records_filtered == 2


def test_everything_filtered_gives_no_parts() -> None:
    sink = Collector()
    result = encode_window(nginx_window(10), config(
        ContentInfo("json", json=LEGACY_JSON), "gzip",
        rules=[FilterRule("status", "(.*)", "503")]), sink.open)
    assert (result.records, result.records_filtered, result.parts, sink.parts) == (0, 10, [], [])


# ---- windows: parts, splitting, determinism, errors -----------------------------------------


def test_empty_windows_give_no_parts() -> None:
    conf = config(ContentInfo("csv", csv=CsvInfo(["a"], ",", '"', "", True)), "gzip")
    for payloads in ([], [(payload([]), "", 0)], [(payload([group([])]), "", 0)]):
        sink = Collector()
        result = encode_window(payloads, conf, sink.open)
        assert (result.records, result.raw_bytes, result.out_bytes, result.parts) == (0, 0, 0, [])
        assert sink.parts == []


@pytest.mark.parametrize("codec", CODECS)
def test_split_into_complete_parts(codec: str, tmp_path: Path) -> None:
    if codec == "lzop" and shutil.which("lzop") is None:
        pytest.skip("lzop program missing")
    limit = 400
    sink = Collector()
    result = encode_window(nginx_window(60), config(ContentInfo("json", json=LEGACY_JSON),
                                                    codec), sink.open, max_part_raw_bytes=limit)
    assert len(result.parts) >= 5
    ids: list[str] = []
    for number, (part, meta) in enumerate(zip(sink.parts, result.parts, strict=True)):
        assert part.closed and not part.aborted
        raw = decompress(part.data, codec)  # each part is a whole file on its own
        objects = json_objects(raw)
        assert meta.index == number and meta.records == len(objects)
        assert meta.raw_bytes == len(raw)
        if number < len(result.parts) - 1:
            last = len(raw.split(b"\n")[-2]) + 1
            assert len(raw) >= limit and len(raw) - last < limit  # closed once it reached
        ids += [o["id"] for o in objects]
    assert ids == [str(i) for i in range(60)]  # every record once, in order
    assert result.records == 60
    assert result.raw_bytes == sum(p.raw_bytes for p in result.parts)
    assert result.out_bytes == sum(len(p.data) for p in sink.parts)


def test_split_parquet_parts_are_valid_files() -> None:
    sink = Collector()
    keys = [ParquetKey("id", "int32", "NULL")]
    result = encode_window(nginx_window(40), config(ContentInfo("parquet", parquet=keys),
                                                    "snappy"), sink.open, max_part_raw_bytes=30)
    assert len(result.parts) > 3
    ids = []
    for part in sink.parts:
        ids += pq.read_table(pa.BufferReader(part.data), use_threads=False).column("id").to_pylist()
    assert ids == list(range(40))


def test_a_record_larger_than_the_limit_gets_its_own_part() -> None:
    big = payload([group([(T_MS, [("v", "a")]), (T_MS, [("v", "b" * 5000)]),
                          (T_MS, [("v", "c")])])])
    sink = Collector()
    result = encode_window([(big, "", 0)], config(ContentInfo("json", json=JsonInfo(False, [], 0))),
                           sink.open, max_part_raw_bytes=100)
    assert [p.records for p in result.parts] == [2, 1]


def test_default_limit_is_max_size_mib() -> None:
    record = [("v", "x" * 1000)]
    chunks = [(payload([group([(T_MS, record)] * 1000)]), "", 1000 * n) for n in range(6)]
    sink = Collector()
    result = encode_window(chunks, config(ContentInfo("json", json=JsonInfo(False, [], 0)),
                                          max_size=5), sink.open)
    # 5 MiB / 1,009 bytes per line = 5196.1: the part closes with the record that reaches it.
    assert [p.records for p in result.parts] == [5197, 803]


def test_writes_are_bounded_for_large_objects() -> None:
    record = [("v", "y" * 2000)]
    chunks = [(payload([group([(T_MS, record)] * 1000)]), "", 1000 * n) for n in range(6)]
    sink = Collector()  # asserts every write is 1 byte .. 4 MiB
    result = encode_window(chunks, config(ContentInfo("json", json=JsonInfo(False, [], 0))),
                           sink.open)
    assert result.out_bytes > 12_000_000 and len(sink.parts[0].writes) >= 3


@pytest.mark.parametrize(("content", "codec"), [
    (ContentInfo("json", json=LEGACY_JSON), c) for c in CODECS] + [
    (ContentInfo("csv", csv=CsvInfo(["id", "msg", "__TIMESTAMP__"], ",", '"', "", True)), "gzip"),
    (ContentInfo("parquet", parquet=[ParquetKey("id", "int64", "0"),
                                     ParquetKey("msg", "string", "")]), "zstd"),
])
def test_same_input_same_bytes(content: ContentInfo, codec: str) -> None:
    runs = []
    for _ in range(2):
        sink = Collector()
        encode_window(nginx_window(40), config(content, codec), sink.open, max_part_raw_bytes=700)
        runs.append(sink.datas())
    assert runs[0] == runs[1] and len(runs[0]) > 1


def test_same_bytes_in_another_process() -> None:
    # upb iterates maps in a per-process hash order; the JSON encoder must not depend on it.
    script = (
        "import hashlib, sys\n"
        "from tests.unit.formats.test_encoder import nginx_window\n"
        "from tests.helpers.formats import Collector, config\n"
        "from cls_shipper.formats.encoder import Chunk, encode_window\n"
        "from cls_shipper.model.shipper import ContentInfo, LEGACY_JSON\n"
        "sink = Collector()\n"
        "encode_window(nginx_window(40), config(ContentInfo('json', json=LEGACY_JSON), 'gzip'),"
        " sink.open)\n"
        "print(hashlib.sha256(sink.parts[0].data).hexdigest())\n")
    root = Path(__file__).resolve().parents[3]
    digests = {subprocess.run([sys.executable, "-c", script], cwd=root, check=True,
                              capture_output=True, text=True).stdout.strip() for _ in range(3)}
    sink = Collector()
    encode_window(nginx_window(40), config(ContentInfo("json", json=LEGACY_JSON), "gzip"),
                  sink.open)
    assert digests == {hashlib.sha256(sink.parts[0].data).hexdigest()}


def test_writer_failure_aborts_the_open_part() -> None:
    sink = Collector(fail_on_write=1)
    with pytest.raises(OSError, match="disk full"):
        encode_window(nginx_window(30), config(ContentInfo("json", json=LEGACY_JSON), "none"),
                      sink.open)
    assert sink.parts[-1].aborted and not sink.parts[-1].closed


def test_corrupt_chunk_aborts_and_raises_a_typed_error() -> None:
    chunks = [*nginx_window(5), (b"\x0a\xff\xff\xff\xff\x0f garbage", "", 5)]
    sink = Collector()
    with pytest.raises(CorruptChunkError):
        encode_window(chunks, config(ContentInfo("json", json=LEGACY_JSON), "gzip"), sink.open)
    assert len(sink.parts) == 1 and sink.parts[0].aborted


def test_parquet_with_lzop_is_refused() -> None:
    with pytest.raises(FormatError, match="lzop"):
        encode_window(nginx_window(3), config(ContentInfo(
            "parquet", parquet=[ParquetKey("id", "int64", "0")]), "lzop"), Collector().open)


def test_extensions_and_content_types() -> None:
    json_info = ContentInfo("json", json=LEGACY_JSON)
    expected = {"gzip": (".gz", "application/gzip"), "lzop": (".lzo", "application/x-lzop"),
                "snappy": (".snappy", "application/x-snappy-framed"),
                "zstd": (".zst", "application/zstd"), "lz4": (".lz4", "application/x-lz4"),
                "none": ("", "application/x-ndjson")}
    for codec, (ext, media) in expected.items():
        assert (file_extension(config(json_info, codec)), content_type(config(json_info, codec))
                ) == (ext, media)
    csv_conf = config(ContentInfo("csv", csv=CsvInfo(["a"], ",", "", "", False)))
    assert (file_extension(csv_conf), content_type(csv_conf)) == ("", "text/csv; charset=utf-8")
    pq_conf = config(ContentInfo("parquet", parquet=[ParquetKey("a", "string", "")]), "gzip")
    assert (file_extension(pq_conf), content_type(pq_conf)) == (
        ".parquet", "application/vnd.apache.parquet")


# Log.time at the ends of the accepted range (0 .. 2**63 - 1) and, stored before ingest
# refused them, below it: what each format ships (issue 10 item 2).
EXTREME_TIMES = [
    (0, 0),  # the lowest accepted: 0 s
    (99_999_999_999, 99_999_999_999_000),  # the largest seconds value
    (2**63 - 1, (2**63 - 1) // 1000),  # the largest accepted: microseconds
    (-1, 0),  # out of range (stored before the rule): clamped to 0, like a missing time
    (-(2**63), 0),  # overflowed the millisecond value and failed the whole window
]


def extreme_window() -> list[Chunk]:
    logs = [(t, [("i", str(i))]) for i, (t, _) in enumerate(EXTREME_TIMES)]
    return [(payload([group(logs)]), "10.0.0.1", 0)]


@pytest.mark.parametrize("json_info", [
    LEGACY_JSON,  # the C transcoder's path when it is built
    JsonInfo(enable_tag=False, meta_fields=["__TIMESTAMP__"], json_type=1),  # Python only
])
def test_extreme_log_times_ship_in_json_lines(json_info: JsonInfo) -> None:
    sink = Collector()
    result = encode_window(extreme_window(), config(ContentInfo("json", json=json_info)),
                           sink.open)
    assert result.records == len(EXTREME_TIMES)
    shipped = [obj["__TIMESTAMP__"] for obj in json_objects(sink.parts[0].data)]
    assert shipped == [ms for _, ms in EXTREME_TIMES]


def test_extreme_log_times_ship_in_csv() -> None:
    sink = Collector()
    info = CsvInfo(print_key=False, keys=["i", "__TIMESTAMP__"], delimiter=",", escape_char='"',
                   non_existing_field="")
    encode_window(extreme_window(), config(ContentInfo("csv", csv=info)), sink.open)
    rows = list(csv.reader(io.StringIO(sink.parts[0].data.decode())))
    assert [int(ms) for _, ms in rows] == [ms for _, ms in EXTREME_TIMES]


def test_extreme_log_times_ship_in_parquet() -> None:
    sink = Collector()
    keys = [ParquetKey(key_name="__TIMESTAMP__", key_type="int64",
                       key_non_existing_field="NULL")]
    encode_window(extreme_window(), config(ContentInfo("parquet", parquet=keys), "none"),
                  sink.open)
    table = pq.read_table(pa.BufferReader(sink.parts[0].data), use_threads=False)
    assert table.column("__TIMESTAMP__").to_pylist() == [ms for _, ms in EXTREME_TIMES]

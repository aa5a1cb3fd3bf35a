"""The uploader's lines -> LogGroupList walk in C (`_wire.encode_lines`) against the Python
path it replaces: generated lines of every kind the CLI meets (nginx JSON, escapes, non-ASCII,
invalid UTF-8, numbers orjson rewrites, nested values, repeated keys, blank and Unicode-blank
lines, CR LF, no final newline) and thousands of mutations of them must give the same logs,
contents, batches and progress, read back with the SDK's protobuf classes."""

from __future__ import annotations

import io
import os
import random
import time

import pytest

from cls_shipper.errors import LineError
from cls_shipper.ingest import lines
from cls_shipper.ingest.cls_pb import LogGroupList
from cls_shipper.ingest.native import wire

pytestmark = pytest.mark.skipif(
    wire is None and os.environ.get("CI", "").lower() not in ("true", "1"),
    reason="cls_shipper._wire is not built (no compiler?)")

Contents = list[tuple[str, str]]

SAMPLES = [
    b'{"remote_addr":"10.0.0.1","request":"GET /a?b=1 HTTP/1.1","status":200,"bytes":5120}',
    b'{"ua": "Mozilla/5.0 (X11; \\"quoted\\")", "path": "\\/x\\\\y", "t": "a\\tb\\nc\\r"}',
    b'{"u": "\\u00e9t\\u00E9 \\ud83d\\ude00", "k\\u00e9y": "v", "e": ""}',
    '{"caf\u00e9": "na\u00efve \u2603", "n": -42, "z": 0, "b": true, "f": false, "x": null}'
    .encode(),
    b'{"float": 1.5, "exp": 1e3, "neg0": -0, "big": 123456789012345678901234}',
    b'{"nested": {"a": [1, 2, {"b": null}]}, "arr": [], "obj": {}}',
    b'{"dup": "1", "other": "x", "dup": "2"}',
    b'{}', b'{ }', b'[1, 2]', b'"just a string"', b'{"a": "unterminated', b'{"a" "b"}',
    b'{"a": "b"} trailing', b'{"a": "b"}   ', b'  {"lead": "space"}', b'{"a":"b"}\r',
    b'{"ctl": "a\x01b"}', b'{"lone": "\\ud800"}', b'{"lone2": "\\udc00x"}', b'{"bad": "\\x"}',
    b'{"n": 007}', b'{"n": 12345678901234567}', b'{"n": 1234567890123456789}',
    b'{"n": -}', b'{"t": tru}', b'{"a": "b",}', b'{"a": "b"}}',
    b'plain text line', b'tab\tseparated\tvalues', b'', b'   ', b'\t \x0b\x0c', b'\x1c\x1d',
    '\u00a0\u2003'.encode(), '\u3000x'.encode(), b'\xff\xfe invalid utf-8', b'\xc3',
    b'{"k": "\xff"}', b'{"k": "ok"}\xed\xa0\x80', b'\x00nul', b'\r', b'a\rb',
    b'{"__CONTENT__": "x", "y": "z"}', b'{"": ""}',
]


def parse(batch: lines.Batch) -> tuple[str, str, list[Contents]]:
    group_list = LogGroupList.FromString(batch.payload)
    assert len(group_list.logGroupList) == 1
    group = group_list.logGroupList[0]
    now = time.time_ns() // 1_000_000
    assert all(now - 60_000 < log.time <= now for log in group.logs)
    return (group.filename, group.hostname,
            [[(c.key, c.value) for c in log.contents] for log in group.logs])


def run(data: bytes, fmt: lines.Mode, batch_size: int, native: bool
        ) -> list[tuple[int, int, tuple[str, str, list[Contents]]]]:
    source = io.BufferedReader(io.BytesIO(data))
    make = lines.batches if native else lines._python_batches
    return [(b.logs, b.file_bytes, parse(b))
            for b in make(source, "/var/log/app.log", "web-1", fmt, batch_size)]


def both(data: bytes, fmt: lines.Mode = "auto", batch_size: int = 1000
         ) -> list[tuple[int, int, tuple[str, str, list[Contents]]]]:
    try:
        expected = run(data, fmt, batch_size, native=False)
    except LineError as exc:
        with pytest.raises(LineError) as raised:
            run(data, fmt, batch_size, native=True)
        assert raised.value.message == exc.message
        return []
    assert run(data, fmt, batch_size, native=True) == expected, data
    return expected


def test_samples_as_the_python_path_reads_them() -> None:
    for sample in SAMPLES:
        for ending in (b"\n", b"\r\n", b""):
            for fmt in ("auto", "raw", "json"):
                both(sample + ending, fmt)
    got = both(b"\n".join(SAMPLES) + b"\n")
    blank = 6
    assert sum(n for n, _, _ in got) == len(SAMPLES) - blank
    assert got[0][1] == len(b"\n".join(SAMPLES)) + 1
    contents = got[0][2][2]
    assert contents[0] == [("remote_addr", "10.0.0.1"), ("request", "GET /a?b=1 HTTP/1.1"),
                           ("status", "200"), ("bytes", "5120")]
    assert contents[1][0] == ("ua", 'Mozilla/5.0 (X11; "quoted")')
    assert contents[2][0] == ("u", "\u00e9t\u00e9 \U0001f600")


def test_batches_split_on_count_and_value_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    data = b"".join(b'{"i": "%d", "pad": "%s"}\n' % (i, b"x" * (i % 50)) for i in range(500))
    got = both(data, batch_size=64)
    assert [n for n, _, _ in got] == [64] * 7 + [52]
    assert sum(f for _, f, _ in got) == len(data)
    monkeypatch.setattr(lines, "BATCH_VALUE_BYTES", 700)
    got = both(data + b"\n\n" + b"y" * 2000 + b"\n\n", batch_size=1000)
    assert all(sum(len(v) for log in b[2][2] for _, v in log) <= 700 or b[0] == 1 for b in got)
    assert sum(f for _, f, _ in got) == len(data) + 2004


def test_mutations_and_small_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(13)
    alphabet = b'{}[]":,\\u0123456789abcdef-.eE \t\r\n\x00\x1f\x7f\xc3\xa9\xed\xf0\x9f\xff'
    for round_ in range(1500):
        picked = [bytearray(rng.choice(SAMPLES)) for _ in range(rng.randint(1, 6))]
        for line in picked:
            for _ in range(rng.randint(0, 4)):
                at = rng.randint(0, len(line))
                action = rng.random()
                if action < 0.4:
                    line[at:at] = bytes([rng.choice(alphabet)])
                elif action < 0.7:
                    del line[at:at + rng.randint(1, 3)]
                else:
                    line[at:at + 1] = bytes([rng.choice(alphabet)])
        data = b"\n".join(bytes(line) for line in picked)
        if round_ % 3 == 0:
            monkeypatch.setattr(lines, "READ_BYTES", rng.randint(1, 40))
        for fmt in ("auto", "raw", "json"):
            both(data, fmt, batch_size=rng.randint(1, 4))

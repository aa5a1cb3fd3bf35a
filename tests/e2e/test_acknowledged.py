"""Acknowledged means stored (issue 10 items 1, 2 and 11), against a real server: an upload
is answered 200 only if every byte of its body was understood and every record in it was
stored; anything else is refused with 400 InvalidContent and stores nothing."""

from __future__ import annotations

import gzip
import zlib
from typing import Any

import lz4.block
import pytest
import zstandard

from cls_shipper.ingest import cls_pb
from tests.e2e.test_ingest import (
    PB,
    chunk_offsets,
    flatten,
    make_group,
    make_list,
    read_all,
    upload,
)
from tests.helpers.server import LegacyClient, ServerProcess
from tests.helpers.v3 import signed_post

JSON = "application/json"


def _raw(*groups: Any) -> bytes:
    return bytes(make_list(*groups).SerializeToString())


def _field(number: int, wire_type: int, payload: bytes | int) -> bytes:
    def varint(value: int) -> bytes:
        value &= (1 << 64) - 1
        out = b""
        while True:
            byte = value & 0x7F
            value >>= 7
            if not value:
                return out + bytes([byte])
            out += bytes([byte | 0x80])
    tag = varint(number << 3 | wire_type)
    if isinstance(payload, int):
        return tag + varint(payload)
    return tag + varint(len(payload)) + payload


def _log(time: int, *extra: bytes, contents: tuple[tuple[bytes, bytes], ...] = ((b"k", b"v"),)
         ) -> bytes:
    body = _field(1, 0, time) + b"".join(
        _field(2, 2, _field(1, 2, k) + _field(2, 2, v)) for k, v in contents)
    return _field(1, 2, body + b"".join(extra))


def _list(*logs: bytes, group_extra: bytes = b"", top_extra: bytes = b"") -> bytes:
    return _field(1, 2, b"".join(logs) + group_extra) + top_extra


FIRST = make_list(make_group([{"member": "a"}], source="10.0.0.1"))
SECOND = make_list(make_group([{"member": "b", "i": str(i)} for i in range(3)], filename="f"))
A, B = FIRST.SerializeToString(), SECOND.SerializeToString()
_ZSTD = zstandard.ZstdCompressor()


def _head(server: ServerProcess, topic: str) -> int:
    return chunk_offsets(server.data_dir, topic)[1]


def _refused(server: ServerProcess, client: LegacyClient, topic: str, body: bytes,
             compress: str | None, content_type: str = PB, match: str = "") -> None:
    resp = upload(client, topic, body, compress=compress, content_type=content_type)
    assert resp.status_code == 400, resp.text
    assert resp.json()["errorcode"] == "InvalidContent"
    assert match in resp.json()["errormessage"]
    assert _head(server, topic) == 0 and read_all(client, topic)[0] == []


# --- item 1: every member decoded, or the body refused ----------------------------------------

MULTI_MEMBER: dict[str, tuple[bytes, str]] = {
    "gzip+gzip": (gzip.compress(A) + gzip.compress(B), "deflate"),
    "zlib+zlib": (zlib.compress(A) + zlib.compress(B), "deflate"),
    "zstd+zstd": (_ZSTD.compress(A) + _ZSTD.compress(B), "zstd"),
}


@pytest.mark.parametrize("name", sorted(MULTI_MEMBER))
def test_every_member_of_a_body_is_stored(server: ServerProcess, client: LegacyClient,
                                          topic: str, name: str) -> None:
    body, codec = MULTI_MEMBER[name]
    resp = upload(client, topic, body, compress=codec)
    assert resp.status_code == 200, resp.text
    assert _head(server, topic) == 4  # 1 record in the first member, 3 in the second
    assert read_all(client, topic)[0] == flatten(FIRST) + flatten(SECOND)


def test_every_gzip_member_is_stored_through_upload_log(server: ServerProcess,
                                                        client: LegacyClient,
                                                        topic: str) -> None:
    resp = signed_post(server, "UploadLog", gzip.compress(A) + gzip.compress(B),
                       content_type="application/octet-stream",
                       extra_headers={"X-CLS-TopicId": topic, "X-CLS-CompressType": "deflate"})
    assert resp.status_code == 200 and "Error" not in resp.json()["Response"], resp.text
    assert _head(server, topic) == 4
    assert read_all(client, topic)[0] == flatten(FIRST) + flatten(SECOND)


NOT_UNDERSTOOD: dict[str, tuple[bytes, str | None, str, str]] = {
    # name: (body, x-cls-compress-type, content type, part of the message)
    "zlib+70-bytes-garbage": (zlib.compress(A) + bytes(range(70)), "deflate", PB,
                              "70 bytes after its last zlib stream or gzip member"),
    "gzip+cut-member": (gzip.compress(A) + gzip.compress(B)[:-4], "deflate", PB, "deflate"),
    "gzip+zero-padding": (gzip.compress(A) + b"\0" * 512, "deflate", PB, "512 bytes after"),
    "raw-deflate+garbage": (zlib.compress(A, wbits=-15) + b"tail", "deflate", PB,
                            "4 bytes after its last raw deflate stream"),
    "zstd+garbage": (_ZSTD.compress(A) + b"garbage!", "zstd", PB, "8 bytes after its last frame"),
    "zstd-cut-short": (_ZSTD.compress(A + B)[:-3], "zstd", PB, "could not be decompressed"),
    "lz4+trailing-bytes": (bytes(lz4.block.compress(A)[4:]) + b"\0" * 9, "lz4", PB,
                           "could not be decompressed as lz4"),
    "lz4-two-blocks": (bytes(lz4.block.compress(A)[4:]) + bytes(lz4.block.compress(B)[4:]),
                       "lz4", PB, "could not be decompressed as lz4"),
    "json-logs-twice": (b'{"logs": [{"contents": {"a": "1"}}, {"contents": {"a": "2"}}], '
                        b'"logs": [{"contents": {"a": "3"}}]}', None, JSON,
                        "'logs' appears twice"),
    "json-contents-key-twice": (b'{"logs": [{"contents": {"a": "1", "a": "2"}}]}', None, JSON,
                                "'a' appears twice"),
    "json-two-documents": (b'{"logs": [{"contents": {"a": "1"}}]}{"logs": []}', None, JSON,
                           "not valid JSON"),
    "json-gzip+garbage": (gzip.compress(b'{"logs": [{"contents": {"a": "1"}}]}') + b"x", "deflate",
                          JSON, "1 bytes after"),
}


@pytest.mark.parametrize("name", sorted(NOT_UNDERSTOOD))
def test_bytes_not_understood_are_refused(server: ServerProcess, client: LegacyClient,
                                          topic: str, name: str) -> None:
    body, codec, content_type, match = NOT_UNDERSTOOD[name]
    _refused(server, client, topic, body, codec, content_type, match)


# --- item 2: Log.time in 0 .. 2**63 - 1 ---------------------------------------------------------

BAD_TIMES: dict[str, tuple[bytes, str]] = {
    "-2**63": (_list(_log(-(2**63))), "log 0 of log group 0 has time -9223372036854775808"),
    "-1 in the second log": (_list(_log(1_764_300_000_000), _log(-1)),
                             "log 1 of log group 0 has time -1"),
}


@pytest.mark.parametrize("name", sorted(BAD_TIMES))
def test_a_time_out_of_range_is_refused(server: ServerProcess, client: LegacyClient,
                                        topic: str, name: str) -> None:
    raw, match = BAD_TIMES[name]
    _refused(server, client, topic, bytes(lz4.block.compress(raw)[4:]), "lz4", match=match)
    _refused(server, client, topic, raw, None, match=match)
    resp = signed_post(server, "UploadLog", raw, content_type="application/octet-stream",
                       extra_headers={"X-CLS-TopicId": topic})
    assert resp.json()["Response"]["Error"]["Code"] == "InvalidParameter", resp.text
    assert match in resp.json()["Response"]["Error"]["Message"]
    assert _head(server, topic) == 0


def test_the_extreme_accepted_times_are_stored(server: ServerProcess, client: LegacyClient,
                                               topic: str) -> None:
    raw = _list(_log(0), _log(2**63 - 1))
    assert upload(client, topic, raw, compress=None).status_code == 200
    assert [r[4] for r in read_all(client, topic)[0]] == [0, 2**63 - 1]
    resp = upload(client, topic, b'{"logs": [{"time": -1, "contents": {"a": "1"}}]}',
                  compress=None, content_type=JSON)
    assert resp.status_code == 400 and "from 0 to 9223372036854775807" in resp.text


# --- item 11: a field the schema does not declare -----------------------------------------------

UNKNOWN_FIELDS: dict[str, tuple[bytes, str]] = {
    "in a Content": (_list(_log(1_764_300_000_000, _field(2, 2, _field(1, 2, b"lost")
                                                       + _field(2, 2, b"v")
                                                       + _field(3, 2, b"extra")))),
                     "field 3 with wire type 2 in a content of log 0 of log group 0"),
    "in a LogTag": (_list(_log(1_764_300_000_000), group_extra=_field(5, 2, _field(1, 2, b"t")
                                                                      + _field(2, 2, b"v")
                                                                      + _field(4, 0, 1))),
                    "field 4 with wire type 0 in a tag of log group 0"),
    "in a Log": (_list(_log(1_764_300_000_000, _field(9, 2, b"x"))),
                 "field 9 with wire type 2 in log 0 of log group 0"),
    "in a LogGroup": (_list(_log(1_764_300_000_000), group_extra=_field(7, 2, b"x")),
                      "field 7 with wire type 2 in log group 0"),
    "in the LogGroupList": (_list(_log(1_764_300_000_000), top_extra=_field(2, 0, 1)),
                            "field 2 with wire type 0 in the LogGroupList"),
}


@pytest.mark.parametrize("name", sorted(UNKNOWN_FIELDS))
def test_an_unknown_field_is_refused(server: ServerProcess, client: LegacyClient, topic: str,
                                     name: str) -> None:
    raw, match = UNKNOWN_FIELDS[name]
    _refused(server, client, topic, bytes(lz4.block.compress(raw)[4:]), "lz4", match=match)
    resp = signed_post(server, "UploadLog", raw, content_type="application/octet-stream",
                       extra_headers={"X-CLS-TopicId": topic})
    assert match in resp.json()["Response"]["Error"]["Message"], resp.text
    assert _head(server, topic) == 0


def test_the_sdk_fields_are_accepted(server: ServerProcess, client: LegacyClient,
                                     topic: str) -> None:
    """Log.collectTime and LogGroup.contextFlow are in the SDKs' cls.proto (spec §5.3)."""
    message = cls_pb.LogGroupList()
    group = message.logGroupList.add(contextFlow="0A1B-2C", hostname="h", filename="f")
    group.logs.add(time=1_764_300_000_000, collectTime=1_764_300_000_500).contents.add(
        key="k", value="v")
    group.logTags.add(key="t", value="v")
    resp = upload(client, topic, bytes(lz4.block.compress(message.SerializeToString())[4:]))
    assert resp.status_code == 200, resp.text
    assert read_all(client, topic)[0] == flatten(message)

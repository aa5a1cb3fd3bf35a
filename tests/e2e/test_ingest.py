"""Log ingest over HTTP against the running server: uploads in every accepted form read back
exactly, every refusal, concurrency, and the official SDK."""

from __future__ import annotations

import gzip
import sqlite3
import threading
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import lz4.block
import orjson
import pytest
import zstandard

from cls_shipper.ingest import cls_pb
from tests.helpers.sdk_env import run_sdk_script
from tests.helpers.server import LegacyClient, ServerProcess

Record = tuple[Any, ...]
PB = "application/x-protobuf"


# --- helpers (also used by test_ingest_crash) ------------------------------------------------

def make_group(logs: Iterable[dict[str, str]], *, time0: int = 1_764_300_000_000_000,
               source: str | None = None, filename: str | None = None,
               hostname: str | None = None, tags: dict[str, str] | None = None) -> Any:
    group = cls_pb.LogGroup()
    for i, contents in enumerate(logs):
        log = group.logs.add()
        log.time = time0 + i
        for key, value in contents.items():
            content = log.contents.add()
            content.key, content.value = key, value
    if source is not None:
        group.source = source
    if filename is not None:
        group.filename = filename
    if hostname is not None:
        group.hostname = hostname
    for key, value in (tags or {}).items():
        tag = group.logTags.add()
        tag.key, tag.value = key, value
    return group


def make_list(*groups: Any) -> Any:
    out = cls_pb.LogGroupList()
    for group in groups:
        out.logGroupList.add().CopyFrom(group)
    return out


def lz4_body(message: Any) -> bytes:
    return bytes(lz4.block.compress(message.SerializeToString())[4:])  # as the SDK does


def upload(client: LegacyClient, topic: str, body: bytes, *, compress: str | None = "lz4",
           content_type: str = PB) -> httpx.Response:
    headers = {"Content-Type": content_type}
    if compress is not None:
        headers["x-cls-compress-type"] = compress
    return client.raw("POST", "/structuredlog", {"topic_id": topic}, body, headers)


def upload_ok(client: LegacyClient, topic: str, message: Any) -> None:
    resp = upload(client, topic, lz4_body(message))
    assert resp.status_code == 200, resp.text
    assert resp.content == b""


def flatten(message: Any) -> list[Record]:
    """One tuple per record: the group metadata and the log, as sent."""
    out: list[Record] = []
    for group in message.logGroupList:
        meta = (group.source if group.HasField("source") else None,
                group.filename if group.HasField("filename") else None,
                group.hostname if group.HasField("hostname") else None,
                tuple((t.key, t.value) for t in group.logTags))
        for log in group.logs:
            out.append((*meta, log.time, tuple((c.key, c.value) for c in log.contents)))
    return out


def read_all(client: LegacyClient, topic: str, start: str = "2000-01-01 00:00:00",
             count: int = 1000) -> tuple[list[Record], list[int]]:
    """Every record from `start` on via GET /cursor + GET /log; also the page sizes."""
    cursor = client.call("GET", "/cursor", {"topic_id": topic, "start": start})["cursor"]
    records: list[Record] = []
    pages: list[int] = []
    while True:
        resp = client.raw("GET", "/log", {"topic_id": topic, "cursor": cursor,
                                          "count": str(count)})
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"] == PB
        got = int(resp.headers["x-cls-count"])
        page = flatten(cls_pb.LogGroupList.FromString(resp.content))
        assert len(page) == got
        if got == 0:
            return records, pages
        pages.append(got)
        records += page
        cursor = resp.headers["x-cls-cursor"]


def chunk_offsets(data_dir: Path, topic: str) -> tuple[list[tuple[int, int, int]], int]:
    """(first_offset, record_count, ingest_ms) of the topic's chunks, and its next_offset,
    straight from the server's SQLite file (WAL allows a concurrent reader)."""
    with sqlite3.connect(f"file:{data_dir / 'cls-shipper.db'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT first_offset, record_count, ingest_ms FROM log_chunks "
                            "WHERE topic_id = ? ORDER BY first_offset", (topic,)).fetchall()
        head = conn.execute("SELECT next_offset FROM topics WHERE topic_id = ?",
                            (topic,)).fetchone()[0]
    return [tuple(r) for r in rows], int(head)


def assert_gap_free(chunks: list[tuple[int, int, int]], head: int) -> None:
    expected = 0
    last_ms = 0
    for first, count, ingest_ms in chunks:
        assert first == expected and count > 0
        assert ingest_ms >= last_ms
        expected, last_ms = first + count, ingest_ms
    assert expected == head


def nginx(i: int) -> dict[str, str]:
    return {"remote_addr": f"10.0.{i % 256}.{i * 7 % 256}", "status": str(200 + i % 5),
            "request": f"GET /item/{i} HTTP/1.1", "body_bytes_sent": str(1000 + i),
            "http_user_agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"}


# --- read-back of every accepted form ---------------------------------------------------------

def test_protobuf_lz4_reads_back_exactly(client: LegacyClient, topic: str) -> None:
    first = make_list(
        make_group([nginx(i) for i in range(3)], source="10.1.1.1", filename="/var/log/a.log",
                   tags={"env": "prod", "app": "web"}),
        make_group([{"msg": "второй ☃", "empty": ""}], time0=1_764_300_000),  # seconds
    )
    second = make_list(make_group([{"k": "v"}], hostname="h1", time0=1_764_300_000_123))
    upload_ok(client, topic, first)
    upload_ok(client, topic, second)
    records, _ = read_all(client, topic)
    assert records == flatten(first) + flatten(second)
    assert records[3][4] == 1_764_300_000  # the original time value, not normalised


@pytest.mark.parametrize("codec", ["zstd", "deflate-zlib", "deflate-gzip", "deflate-raw",
                                   "none", "NONE-header"])
def test_other_codecs(client: LegacyClient, topic: str, codec: str) -> None:
    message = make_list(make_group([nginx(i) for i in range(20)], source="s"))
    raw = message.SerializeToString()
    body, header = {
        "zstd": (zstandard.ZstdCompressor().compress(raw), "zstd"),
        "deflate-zlib": (zlib.compress(raw), "deflate"),
        "deflate-gzip": (gzip.compress(raw), "deflate"),
        "deflate-raw": (zlib.compress(raw, wbits=-15), "deflate"),
        "none": (raw, None),
        "NONE-header": (raw, ""),
    }[codec]
    assert upload(client, topic, body, compress=header).status_code == 200
    assert read_all(client, topic)[0] == flatten(message)


def test_json_upload(client: LegacyClient, topic: str) -> None:
    doc = {"logs": [{"time": 1_764_300_000_123, "contents": {"msg": "hello", "level": "info"}},
                    {"contents": {"msg": "no time: server time"}},
                    {"time": 1_764_300_001, "contents": {"__CONTENT__": "raw line"}}],
           "source": "10.9.9.9", "filename": "app.log", "hostname": "web-1",
           "tags": {"team": "core"}}
    resp = upload(client, topic, orjson.dumps(doc), compress=None,
                  content_type="application/json; charset=utf-8")
    assert resp.status_code == 200, resp.text
    # JSON may be compressed like protobuf.
    small = {"logs": [{"time": 5, "contents": {"a": "b"}}]}
    resp = upload(client, topic, bytes(lz4.block.compress(orjson.dumps(small))[4:]),
                  content_type="application/json")
    assert resp.status_code == 200, resp.text
    records, _ = read_all(client, topic)
    meta = ("10.9.9.9", "app.log", "web-1", (("team", "core"),))
    assert records[0] == (*meta, 1_764_300_000_123, (("msg", "hello"), ("level", "info")))
    assert records[1][:4] == meta and records[1][5] == (("msg", "no time: server time"),)
    assert records[1][4] > 1_700_000_000_000  # defaulted to now, in ms
    assert records[2] == (*meta, 1_764_300_001, (("__CONTENT__", "raw line"),))
    assert records[3] == (None, None, None, (), 5, (("a", "b"),))


def test_paging_cursor_and_count(client: LegacyClient, topic: str, server: ServerProcess) -> None:
    big = make_list(make_group([{"i": str(i)} for i in range(1500)], source="a"),
                    make_group([{"i": str(i)} for i in range(1500, 2500)], filename="f"))
    upload_ok(client, topic, big)
    upload_ok(client, topic, make_list(make_group([{"i": "2500"}])))
    records, pages = read_all(client, topic)
    last = (None, None, None, (), 1_764_300_000_000_000, (("i", "2500"),))
    assert records == [*flatten(big), last]
    assert pages == [1000, 1000, 501]
    records, pages = read_all(client, topic, count=7)
    assert len(records) == 2501 and pages[0] == 7 and [r[5] for r in records] == [
        (("i", str(i)),) for i in range(2501)]
    # A cursor after the last upload is at the end: nothing, the same cursor back.
    far = client.call("GET", "/cursor", {"topic_id": topic, "start": "2999-01-01 00:00:00"})
    resp = client.raw("GET", "/log", {"topic_id": topic, "cursor": far["cursor"]})
    assert resp.status_code == 200 and resp.headers["x-cls-count"] == "0"
    assert resp.headers["x-cls-cursor"] == far["cursor"] and resp.content == b""
    # Epoch start (an extension) works too.
    by_epoch = client.call("GET", "/cursor", {"topic_id": topic, "start": "0"})["cursor"]
    resp = client.raw("GET", "/log", {"topic_id": topic, "cursor": by_epoch, "count": "1"})
    assert resp.headers["x-cls-count"] == "1"
    chunks, head = chunk_offsets(server.data_dir, topic)
    assert_gap_free(chunks, head)
    assert head == 2501


@pytest.mark.parametrize("params, status, code", [
    ({"cursor": "not a cursor!"}, 404, "CursorNotExist"),
    ({"cursor": "OTk5OTk="}, 404, "CursorNotExist"),  # offset 99999: beyond the end
    ({"cursor": "MA==", "count": "1001"}, 400, "InvalidParam"),
    ({"cursor": "MA==", "count": "0"}, 400, "InvalidParam"),
    ({}, 400, "InvalidParam"),
])
def test_log_errors(client: LegacyClient, topic: str, params: dict[str, str], status: int,
                    code: str) -> None:
    resp = client.raw("GET", "/log", {"topic_id": topic, **params})
    assert resp.status_code == status and resp.json()["errorcode"] == code
    assert resp.headers["x-cls-requestid"]


def test_cursor_errors(client: LegacyClient, topic: str) -> None:
    resp = client.raw("GET", "/cursor", {"topic_id": topic, "start": "yesterday"})
    assert resp.status_code == 400 and resp.json()["errorcode"] == "InvalidParam"
    resp = client.raw("GET", "/cursor", {"topic_id": "nope", "start": "2020-01-01 00:00:00"})
    assert resp.status_code == 404 and resp.json()["errorcode"] == "TopicNotExist"
    resp = client.raw("GET", "/log", {"topic_id": "nope", "cursor": "MA=="})
    assert resp.status_code == 404 and resp.json()["errorcode"] == "TopicNotExist"


# --- refusals ---------------------------------------------------------------------------------

def _pb(*groups: Any) -> bytes:
    return bytes(make_list(*groups).SerializeToString())


def _bad_utf8() -> bytes:
    raw = _pb(make_group([{"k": "vvvv"}]))
    return raw.replace(b"vvvv", b"v\xff\xfev")


def _json(doc: Any) -> bytes:
    return orjson.dumps(doc)


MiB = 1 << 20
BAD_UPLOADS: dict[str, tuple[bytes, str | None, str, int, str]] = {
    # name: (body, x-cls-compress-type ("lz4!": compress it first), content type, status,
    # errorcode)
    "compress-type": (_pb(make_group([{"k": "v"}])), "snappy", PB, 400, "InvalidCompressType"),
    "lz4-garbage": (b"\xff" * 64, "lz4", PB, 400, "InvalidContent"),
    "zstd-garbage": (b"not zstd at all", "zstd", PB, 400, "InvalidContent"),
    "deflate-garbage": (b"not deflate", "deflate", PB, 400, "InvalidContent"),
    "protobuf-garbage": (b"\x0a\xff\xff\xff\x0fxyz", None, PB, 400, "InvalidContent"),
    "truncated": (_pb(make_group([{"k": "v" * 50}]))[:-10], None, PB, 400, "InvalidContent"),
    "bad-utf8": (_bad_utf8(), None, PB, 400, "InvalidContent"),
    "no-logs": (_pb(make_group([])), None, PB, 400, "InvalidContent"),
    "underscore-key": (_pb(make_group([{"ok": "v"}, {"_hidden": "v"}])), None, PB, 400,
                       "InvalidContent"),
    "underscore-key-long": (_pb(make_group([{"_" + "k" * 200: "v"}])), None, PB, 400,
                            "InvalidContent"),
    "reserved-key": (_pb(make_group([{"__TAG__": "v"}])), None, PB, 400, "InvalidContent"),
    "empty": (b"", None, PB, 400, "MissingContent"),
    "empty-lz4": (b"", "lz4", PB, 400, "MissingContent"),
    "content-type": (_pb(make_group([{"k": "v"}])), None, "text/plain", 400,
                     "InvalidContentType"),
    "value-1mib": (_pb(make_group([{"k": "x" * (MiB + 1)}])), "lz4!", PB, 403,
                   "LogSizeExceed"),
    "group-5mib": (_pb(make_group([{"k": "y" * (MiB - 100)} for _ in range(6)])), "lz4!", PB,
                   403, "LogSizeExceed"),
    "10001-logs": (_pb(make_group([{"k": "v"}] * 10_001)), "lz4!", PB, 403, "LogSizeExceed"),
    "json-invalid": (b"{not json", None, "application/json", 400, "InvalidContent"),
    "json-shape": (_json({"logs": [{"contents": {"k": 1}}]}), None, "application/json", 400,
                   "InvalidContent"),
    "json-unknown": (_json({"logs": [{"contents": {"k": "v"}}], "x": 1}), None,
                     "application/json", 400, "InvalidContent"),
    "json-no-logs": (_json({"logs": []}), None, "application/json", 400, "InvalidContent"),
    "json-key": (_json({"logs": [{"contents": {"_k": "v"}}]}), None, "application/json", 400,
                 "InvalidContent"),
    "json-time": (_json({"logs": [{"time": "now", "contents": {"k": "v"}}]}), None,
                  "application/json", 400, "InvalidContent"),
    "json-value-1mib": (_json({"logs": [{"contents": {"k": "z" * (MiB + 1)}}]}), None,
                        "application/json", 403, "LogSizeExceed"),
    "json-5mib": (_json({"logs": [{"contents": {"k": "z" * (MiB - 10)}}] * 6}), None,
                  "application/json", 403, "LogSizeExceed"),
}


@pytest.mark.parametrize("name", sorted(BAD_UPLOADS))
def test_bad_uploads_store_nothing(client: LegacyClient, topic: str, name: str) -> None:
    body, compress, content_type, status, code = BAD_UPLOADS[name]
    if compress == "lz4!":  # a valid body, compressed here (stored uncompressed above)
        body, compress = bytes(lz4.block.compress(body)[4:]), "lz4"
    resp = upload(client, topic, body, compress=compress, content_type=content_type)
    assert resp.status_code == status, resp.text
    assert resp.json()["errorcode"] == code
    assert "Traceback" not in resp.text and resp.headers["x-cls-requestid"]
    # Nothing stored, and the server still serves.
    assert read_all(client, topic)[0] == []
    good = make_list(make_group([{"k": "v"}]))
    upload_ok(client, topic, good)
    assert read_all(client, topic)[0] == flatten(good)


def test_underscore_lookalikes_accepted(client: LegacyClient, topic: str) -> None:
    """Values, tags and filenames that trip the key prefilter are fine: only keys count."""
    message = make_list(make_group([{"msg": "line\n\x05_x", "a_b": "_v"}], filename="_f",
                                    tags={"_tag": "x"}))
    upload_ok(client, topic, message)
    assert read_all(client, topic)[0] == flatten(message)


def test_topic_errors(client: LegacyClient, topic: str) -> None:
    body = lz4_body(make_list(make_group([{"k": "v"}])))
    resp = upload(client, "no-such-topic", body)
    assert resp.status_code == 404 and resp.json()["errorcode"] == "TopicNotExist"
    resp = client.raw("POST", "/structuredlog", {}, body, {"Content-Type": PB})
    assert resp.status_code == 400 and resp.json()["errorcode"] == "InvalidParam"
    client.call("PUT", "/topic", json={"topic_id": topic, "collection": False})
    resp = upload(client, topic, body)
    assert resp.status_code == 400 and resp.json()["errorcode"] == "TopicClosed"
    client.call("PUT", "/topic", json={"topic_id": topic, "collection": True})
    assert upload(client, topic, body).status_code == 200
    assert len(read_all(client, topic)[0]) == 1


def test_upload_needs_signature(client: LegacyClient, topic: str) -> None:
    body = lz4_body(make_list(make_group([{"k": "v"}])))
    resp = client.raw("POST", "/structuredlog", {"topic_id": topic}, body,
                      {"Content-Type": PB, "x-cls-compress-type": "lz4"}, sign=False)
    assert resp.status_code == 400 and resp.json()["errorcode"] == "MissingAuthorization"
    other = LegacyClient(client.base_url, client.secret_id, "wrong-key")
    resp = upload(other, topic, body)
    assert resp.status_code == 401
    assert resp.json()["errorcode"] == "AuthFailure.SignatureFailure"
    assert read_all(client, topic)[0] == []


# --- concurrency ------------------------------------------------------------------------------

def test_concurrent_clients(client: LegacyClient, topic: str, server: ServerProcess) -> None:
    clients, uploads, per_upload = 6, 15, 40
    errors: list[str] = []

    def stream(n: int) -> None:
        mine = LegacyClient(server.base_url)
        for u in range(uploads):
            logs = [{"client": str(n), "seq": str(u * per_upload + i)}
                    for i in range(per_upload)]
            resp = upload(mine, topic, lz4_body(make_list(make_group(logs))))
            if resp.status_code != 200:
                errors.append(resp.text)

    threads = [threading.Thread(target=stream, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    records, _ = read_all(client, topic)
    assert len(records) == clients * uploads * per_upload
    seen: dict[str, list[int]] = {}
    for record in records:
        contents = dict(record[5])
        seen.setdefault(contents["client"], []).append(int(contents["seq"]))
    for n in range(clients):
        assert seen[str(n)] == list(range(uploads * per_upload))  # no loss, dup or reorder
    chunks, head = chunk_offsets(server.data_dir, topic)
    assert len(chunks) == clients * uploads
    assert_gap_free(chunks, head)


# --- the official SDK -------------------------------------------------------------------------

SDK_SCRIPT = r"""
from tencentcloud.log.logclient import LogClient
from tencentcloud.log.cls_pb2 import LogGroupList

client = LogClient(ARGS["endpoint"], ARGS["secret_id"], ARGS["secret_key"])
ids = []
for batch in ARGS["batches"]:
    lgl = LogGroupList()
    for g in batch:
        group = lgl.logGroupList.add()
        if g.get("source"):
            group.source = g["source"]
        if g.get("filename"):
            group.filename = g["filename"]
        for k, v in g.get("tags", {}).items():
            tag = group.logTags.add()
            tag.key, tag.value = k, v
        for item in g["logs"]:
            log = group.logs.add()
            log.time = item["time"]
            for k, v in item["contents"]:
                c = log.contents.add()
                c.key, c.value = k, v
    resp = client.put_log_raw(ARGS["topic"], lgl)
    ids.append(resp.get_request_id())
errors = []
try:
    client.put_log_raw("no-such-topic", lgl)
except Exception as exc:
    errors.append([exc.get_error_code(), exc.get_request_id()])
print(json.dumps({"ids": ids, "errors": errors}))
"""


def test_official_sdk_put_log_raw(client: LegacyClient, topic: str,
                                  server: ServerProcess) -> None:
    batches: list[list[dict[str, Any]]] = []
    for b in range(3):
        batches.append([
            {"source": f"10.0.0.{b}", "filename": "/var/log/nginx/access.log",
             "tags": {"env": "test", "batch": str(b)},
             "logs": [{"time": 1_764_300_000_000_000 + b * 1000 + i,  # microseconds
                       "contents": sorted(nginx(b * 100 + i).items())} for i in range(50)]},
            {"logs": [{"time": 1_764_300_000 + b, "contents": [["msg", f"Grüße {b} ✓"]]}]},
        ])
    result = run_sdk_script(SDK_SCRIPT, {
        "endpoint": server.base_url.removeprefix("http://"), "secret_id": client.secret_id,
        "secret_key": client.secret_key, "topic": topic, "batches": batches})
    assert len(result["ids"]) == 3 and all(result["ids"])
    # (The SDK reads an error's request id case-sensitively as "X-Cls-Requestid"; uvicorn
    # sends header names lowercase, so it is empty there: README, known differences.)
    assert result["errors"][0][0] == "TopicNotExist"
    expected: list[Record] = []
    for batch in batches:
        for g in batch:
            meta = (g.get("source"), g.get("filename"), None,
                    tuple(g.get("tags", {}).items()))
            expected += [(*meta, item["time"], tuple(map(tuple, item["contents"])))
                         for item in g["logs"]]
    records, _ = read_all(client, topic)
    assert records == expected

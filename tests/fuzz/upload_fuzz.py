"""Coverage-guided fuzzing of the upload path in process: acknowledged means stored.

    make fuzz-upload FUZZ_SECONDS=60
    python tests/fuzz/upload_fuzz.py CORPUS_DIR [libFuzzer flags]

Each input becomes one upload (body bytes and headers) sent to the real application
(`cls_shipper.api.app.create_app`, SQLite in a temporary data directory) through Starlette's
TestClient, on `POST /structuredlog` or API 3.0 `UploadLog`. The body is the fuzzer's bytes as
they are, or a LogGroupList / JSON document built from them, split into compressed members
(gzip, zlib, raw deflate, zstd frames, an lz4 block), with bytes appended or not. The oracle:

- no answer is a 5xx (nor an exception in the app);
- an accepted upload stored exactly the records an independent decoder finds in the body
  (`expected_records`: stdlib zlib/gzip, zstandard, lz4 and the SDK-shaped protobuf classes,
  never ingest/decode.py), read back with `GET /log` from the topic's previous head, and the
  shipped view of them (formats/records.py) holds every content key and value.

A disagreement raises, which atheris reports as a finding (the input kept as crash-*)."""

from __future__ import annotations

import base64
import gzip
import json
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import atheris

with atheris.instrument_imports(include=["cls_shipper"]):
    from fastapi.testclient import TestClient

    from cls_shipper.api.app import create_app
    from cls_shipper.auth import qsign, tc3
    from cls_shipper.auth.keys import create_key
    from cls_shipper.formats.records import iter_batches
    from cls_shipper.ingest import cls_pb
    from cls_shipper.service import Context, logsets, topics
    from cls_shipper.settings import Settings
    from cls_shipper.store import open_database

import lz4.block
import zstandard
from google.protobuf.message import DecodeError

SECRET_ID = "AKIDfuzzupload000000000000000000"
SECRET_KEY = "fuzzuploadsecretkey0000000000000"
PB = "application/x-protobuf"
JSON_TYPE = "application/json"
COMPRESS_HEADERS = [None, "lz4", "zstd", "deflate", "none", "", "LZ4", " Deflate ", "gzip"]
CONTENT_TYPES = [PB, JSON_TYPE, "application/octet-stream", "application/json; charset=utf-8",
                 "text/plain", ""]
Record = tuple[Any, ...]


# --- the independent decoder ------------------------------------------------------------------

class Refused(Exception):
    """The body holds bytes the documented rules do not accept."""


def _zlib_members(body: bytes) -> bytes | None:
    """gzip members (RFC 1952) and zlib streams (RFC 1950) back to back, each to its end."""
    out, rest, first = b"", body, True
    while rest:
        wbits = 31 if rest[:2] == b"\x1f\x8b" else 15
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(rest)
        except zlib.error:
            if first:
                return None
            raise Refused("a member after the first is not zlib or gzip") from None
        if not inflater.eof:
            if first:
                return None
            raise Refused("a member is cut short")
        rest, first = inflater.unused_data, False
    return out


def inflate(codec: str, body: bytes) -> bytes:
    if codec == "none":
        return body
    if codec == "lz4":
        try:  # a raw block: no end marker, every byte is a sequence of it
            return bytes(lz4.block.decompress(body, uncompressed_size=64 << 20))
        except lz4.block.LZ4BlockError:
            raise Refused("not an lz4 block") from None
    if codec == "zstd":
        out: bytes = b""
        rest = body
        while rest:
            inflater: Any = zstandard.ZstdDecompressor().decompressobj()
            try:
                out += inflater.decompress(rest)
            except zstandard.ZstdError:
                raise Refused("not a zstd frame") from None
            if not inflater.eof:
                raise Refused("a zstd frame is cut short")
            rest = inflater.unused_data
        return out
    members = _zlib_members(body)
    if members is not None:
        return members
    inflater = zlib.decompressobj(-15)
    try:
        out = inflater.decompress(body)
    except zlib.error:
        raise Refused("not deflate") from None
    if not inflater.eof or inflater.unused_data:
        raise Refused("raw deflate cut short or followed by bytes")
    return out


def _codec(header: str | None) -> str:
    name = (header or "").strip().lower()
    return "none" if name in ("", "none") else name


def flatten(message: Any) -> list[Record]:
    out: list[Record] = []
    for group in message.logGroupList:
        meta = (group.source, group.filename, group.hostname,
                tuple((t.key, t.value) for t in group.logTags))
        for log in group.logs:
            out.append((*meta, log.time, tuple((c.key, c.value) for c in log.contents)))
    return out


def expected_records(body: bytes, header: str | None, json_body: bool) -> list[Record]:
    """The records an upload holds, decoded without ingest/decode.py; None for a JSON log
    without `time` (the server fills in its clock)."""
    raw = inflate(_codec(header), body)
    if not json_body:
        try:
            return flatten(cls_pb.LogGroupList.FromString(raw))
        except DecodeError as exc:
            raise Refused(f"not a LogGroupList: {exc}") from None
    doc = json.loads(raw)
    meta = (doc.get("source") or "", doc.get("filename") or "", doc.get("hostname") or "",
            tuple((doc.get("tags") or {}).items()))
    return [(*meta, log.get("time"), tuple(log["contents"].items())) for log in doc["logs"]]


# --- the application ------------------------------------------------------------------------

class Upload:
    """The app on a fresh SQLite data directory, one topic, and what it holds so far."""

    def __init__(self) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="upload-fuzz-")
        settings = Settings(data_dir=Path(self.dir.name))
        self.ctx = Context(open_database(settings.db_url), settings)
        create_key(self.ctx.db, "fuzz", (SECRET_ID, SECRET_KEY))
        self.topic = topics.create(self.ctx, logsets.create(self.ctx, "fuzz", 7), "fuzz")
        self.http = TestClient(create_app(settings, self.ctx), raise_server_exceptions=False)
        self.head = 0

    def legacy(self, method: str, path: str, params: dict[str, str], body: bytes | None,
               headers: dict[str, str]) -> Any:
        headers = {"Host": "testserver", **headers}
        headers["Authorization"] = qsign.sign(SECRET_ID, SECRET_KEY, method, path, params,
                                              headers, int(time.time()) - 60)
        return self.http.request(method, f"{path}?{urlencode(params)}", content=body,
                                 headers=headers)

    def upload(self, v3: bool, body: bytes, compress: str | None,
               content_type: str | None) -> tuple[int, bool]:
        """(HTTP status, accepted)."""
        if v3:
            stamp = int(time.time())
            ctype = content_type or "application/octet-stream"
            headers = {"Host": "testserver", "Content-Type": ctype, "X-TC-Action": "UploadLog",
                       "X-TC-Version": "2020-10-16", "X-TC-Timestamp": str(stamp),
                       "X-CLS-TopicId": self.topic,
                       "Authorization": tc3.sign(SECRET_ID, SECRET_KEY, "POST", "testserver",
                                                 ctype, body, stamp)}
            if compress is not None:
                headers["X-CLS-CompressType"] = compress
            resp = self.http.post("/", content=body, headers=headers)
            accepted = resp.status_code == 200 and "Error" not in resp.json()["Response"]
            return resp.status_code, accepted
        headers = {} if content_type is None else {"Content-Type": content_type}
        if compress is not None:
            headers["x-cls-compress-type"] = compress
        resp = self.legacy("POST", "/structuredlog", {"topic_id": self.topic}, body, headers)
        return resp.status_code, resp.status_code == 200

    def new_records(self) -> tuple[list[Record], list[bytes]]:
        """Records from the previous head on (GET /log), and the pages' bytes."""
        cursor = base64.b64encode(str(self.head).encode()).decode()
        records: list[Record] = []
        pages: list[bytes] = []
        while True:
            resp = self.legacy("GET", "/log", {"topic_id": self.topic, "cursor": cursor,
                                               "count": "1000"}, None, {})
            assert resp.status_code == 200, resp.text
            if resp.headers["x-cls-count"] == "0":
                return records, pages
            records += flatten(cls_pb.LogGroupList.FromString(resp.content))
            pages.append(resp.content)
            cursor = resp.headers["x-cls-cursor"]


_APP: Upload | None = None


def app() -> Upload:
    global _APP
    if _APP is None:
        _APP = Upload()
    return _APP


# --- building bodies from the fuzzer's bytes --------------------------------------------------

def _text(fdp: Any, limit: int = 12) -> str:
    return str(fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, limit)))


def _time(fdp: Any) -> int:
    choice = fdp.ConsumeIntInRange(0, 5)
    if choice == 0:
        return int(fdp.ConsumeIntInRange(-(2**63), 2**63 - 1))
    return [1_764_300_000, 1_764_300_000_123, 1_764_300_000_123_456, 0, 2**63 - 1][int(choice) - 1]


def _log_group_list(fdp: Any) -> bytes:
    message = cls_pb.LogGroupList()
    for _ in range(fdp.ConsumeIntInRange(0, 3)):
        group = message.logGroupList.add()
        for name in ("source", "filename", "hostname", "contextFlow"):
            if fdp.ConsumeBool():
                setattr(group, name, _text(fdp))
        for _ in range(fdp.ConsumeIntInRange(0, 2)):
            group.logTags.add(key=_text(fdp), value=_text(fdp))
        for _ in range(fdp.ConsumeIntInRange(0, 4)):
            log = group.logs.add(time=_time(fdp))
            if fdp.ConsumeBool():
                log.collectTime = fdp.ConsumeIntInRange(0, 2**63 - 1)
            for _ in range(fdp.ConsumeIntInRange(0, 4)):
                log.contents.add(key=_text(fdp), value=_text(fdp, 40))
    raw = bytes(message.SerializeToString())
    if fdp.ConsumeBool():  # an unknown field, or any bytes, spliced in
        at = fdp.ConsumeIntInRange(0, len(raw))
        raw = raw[:at] + fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 8)) + raw[at:]
    return raw


def _json_doc(fdp: Any) -> bytes:
    logs = []
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        log: dict[str, Any] = {"contents": {_text(fdp): _text(fdp, 40)
                                            for _ in range(fdp.ConsumeIntInRange(0, 3))}}
        if fdp.ConsumeBool():
            log["time"] = _time(fdp)
        logs.append(log)
    doc: dict[str, Any] = {"logs": logs}
    for name in ("source", "filename", "hostname"):
        if fdp.ConsumeBool():
            doc[name] = _text(fdp)
    if fdp.ConsumeBool():
        doc["tags"] = {_text(fdp): _text(fdp)}
    text = json.dumps(doc, ensure_ascii=fdp.ConsumeBool())
    if fdp.ConsumeBool():  # a repeated name
        text = text[:-1] + ', "logs": [{"contents": {"x": "y"}}]}'
    return text.encode()


def _compress(fdp: Any, codec: str, raw: bytes) -> bytes:
    if codec == "lz4":
        return bytes(lz4.block.compress(raw, store_size=False))
    if codec not in ("zstd", "deflate"):
        return raw
    cuts = sorted(fdp.ConsumeIntInRange(0, len(raw)) for _ in range(fdp.ConsumeIntInRange(0, 2)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    if codec == "zstd":
        return b"".join(zstandard.ZstdCompressor().compress(p) for p in pieces)
    framing = fdp.ConsumeIntInRange(0, 2)
    if framing == 2:
        return zlib.compress(raw, wbits=-15)
    compress: Callable[[bytes], bytes] = gzip.compress if framing == 0 else zlib.compress
    return b"".join(compress(p) for p in pieces)


def request_of(data: bytes) -> tuple[bool, bytes, str | None, str | None]:
    """(UploadLog?, body, x-cls-compress-type, Content-Type) from one fuzzer input."""
    fdp = atheris.FuzzedDataProvider(data)
    v3 = fdp.ConsumeBool()
    compress = fdp.PickValueInList(COMPRESS_HEADERS)
    content_type = fdp.PickValueInList([*CONTENT_TYPES, None])
    mode = fdp.ConsumeIntInRange(0, 2)
    if mode == 0:
        return v3, fdp.ConsumeBytes(fdp.remaining_bytes()), compress, content_type
    raw = _log_group_list(fdp) if mode == 1 else _json_doc(fdp)
    body = _compress(fdp, _codec(compress), raw)
    if fdp.ConsumeBool():  # bytes after the last member
        body += fdp.ConsumeBytes(fdp.ConsumeIntInRange(1, 80))
    return v3, body, compress, content_type


# --- the oracle ---------------------------------------------------------------------------------

def _shipped(pages: list[bytes]) -> list[dict[str, Any]]:
    return [row for page in pages for batch in iter_batches(page, "") for row in batch.rows]


def check_one(data: bytes) -> None:
    upload = app()
    v3, body, compress, content_type = request_of(data)
    status, accepted = upload.upload(v3, body, compress, content_type)
    if status >= 500:
        raise AssertionError(f"answered {status} to {(v3, body, compress, content_type)!r}")
    if not accepted:
        return
    stored, pages = upload.new_records()
    upload.head += len(stored)
    json_body = not v3 and (content_type or "").split(";")[0].strip() == JSON_TYPE
    try:
        expected = expected_records(body, compress, json_body)
    except Refused as exc:
        raise AssertionError(f"accepted a body the rules refuse ({exc}): {body!r}") from None
    if json_body:  # the server's clock fills in a missing time; its groups' absent fields
        stored = [(*r[:4], None if e[4] is None else r[4], r[5])
                  for r, e in zip(stored, expected, strict=False)]
    if stored != expected:
        raise AssertionError(f"stored {stored!r}, the body holds {expected!r}")
    # The shipped view holds every content of every record (last value of a repeated key).
    if _shipped(pages) != [dict(r[5]) for r in expected]:
        raise AssertionError(f"shipped {_shipped(pages)!r}, the body holds {expected!r}")


SEEDS = [
    b"\x00\x01\x00\x01" + b"\x00" * 64,
    b"\x01\x03\x00\x01" + bytes(range(200)),
    b"\x00\x03\x00\x02" + bytes(range(255, 0, -1)),
    b"\x00\x02\x01\x02" + b"\x10" * 120,
    b"\x00\x01\x00\x01" + b"\x07\x03\x05" * 60,
]


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(f"usage: {sys.argv[0]} CORPUS_DIR [libFuzzer flags]")
    corpus = Path(sys.argv[1])
    corpus.mkdir(parents=True, exist_ok=True)
    for index, seed in enumerate(SEEDS):
        (corpus / f"seed-{index}").write_bytes(seed)
    atheris.Setup([sys.argv[0], *sys.argv[1:]], check_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()

"""Decoding uploads (spec §5.3): body compression, protobuf `LogGroupList` and the JSON form,
and the CLS limits. Everything here is pure CPU work on bytes; no I/O, no HTTP.

The hot path is one upload of a few hundred kilobytes holding ~1,000 logs. It must not walk
every content in Python. With the C extension (`cls_shipper._wire`, built on install) one
pass in C checks the wire format, UTF-8 and every limit (~0.4 ms per 360 KB body, without
the GIL). Without it, a proto3 parse checks wire format and UTF-8, sizes are bounded by the
wire size first, and content keys are prefiltered with regular expressions over the wire
bytes; the exact walks run only when a bound or the prefilter says they might fail. Both
give the same decision, error kind and message (tests/unit/ingest/test_wire.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lz4.block
import orjson
import zstandard
from google.protobuf.message import DecodeError, Message
from zlib_ng import zlib_ng

from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.ingest import cls_pb
from cls_shipper.ingest.native import wire as _wire
from cls_shipper.ingest.schema import (
    ALLOWED_UNDERSCORE_KEYS,
    LOG_TIME_MAX,
    LOG_TIME_MIN,
    MAX_GROUP_VALUE_BYTES,
    MAX_LOGS_PER_GROUP,
    MAX_VALUE_BYTES,
    MESSAGES,
    MiB,
    message_classes,
    read_varint,
    wire_tags,
)
from cls_shipper.timefmt import now_ms

# zlib-ng's inflate error (its stub types it as an instance, not a class).
_InflateError: type[Exception] = zlib_ng.error  # type: ignore[assignment]

# No size travels with an LZ4 block, so decompression needs a bound: far above what the
# limits allow in practice (a few 5 MiB groups), low enough that a bomb cannot hurt. It holds
# for the whole body, every member of it together.
MAX_RAW_BYTES = 64 * MiB
# A deflate body may be several zlib streams or gzip members back to back (RFC 1952 calls a
# concatenation of members valid gzip) and a zstd body several frames. Each member costs a
# decompressor of its own, so their number is bounded: an SDK sends one; 64 leave room for
# files concatenated by hand, and keep a body of 20-byte empty members from costing seconds.
MAX_MEMBERS = 64

CODECS = ("lz4", "zstd", "deflate", "none")

_zstd = zstandard.ZstdDecompressor()
# Input is fed to the decompressors in pieces: a zlib object copies what follows the end of a
# member (`unused_data`), and a zstd object has no output bound, so the piece bounds both the
# copying and what one call can produce (a 3-byte zstd RLE block yields 128 KiB).
_ZLIB_PIECE = 1 * MiB
_ZSTD_PIECE = 1024


def codec_of(header: str | None) -> str:
    """The codec named by an `x-cls-compress-type` header (absent or empty: none)."""
    if header is None:
        return "none"
    name = header.strip().lower()
    if name in ("", "none"):
        return "none"
    if name in CODECS:
        return name
    raise ServiceError(Kinds.INVALID_COMPRESS_TYPE,
                       f"x-cls-compress-type {header!r} is not supported; use lz4, zstd or "
                       "deflate, or leave it out")


def _corrupt(codec: str) -> ServiceError:
    return ServiceError(Kinds.INVALID_CONTENT,
                        f"the body could not be decompressed as {codec} (corrupt, truncated, "
                        f"or more than {MAX_RAW_BYTES // MiB} MiB uncompressed)")


def _trailing(codec: str, what: str, at: int, total: int) -> ServiceError:
    return ServiceError(Kinds.INVALID_CONTENT,
                        f"the {codec} body holds {total - at} bytes after its last {what} "
                        f"(at byte {at} of {total}) that are not another {what}; a body is "
                        "accepted only when every byte of it is understood")


def _too_many(codec: str, what: str) -> ServiceError:
    return ServiceError(Kinds.INVALID_CONTENT,
                        f"the {codec} body holds more than {MAX_MEMBERS} {what}; send fewer, "
                        "larger ones")


def _lz4(payload: bytes, size_hint: int | None) -> bytes:
    # An LZ4 block has no end marker: the decoder reads sequences up to the last input byte
    # and fails unless the last one ends exactly there, so no byte of a body goes unread.
    if size_hint is not None:
        try:
            return bytes(lz4.block.decompress(payload, uncompressed_size=size_hint))
        except lz4.block.LZ4BlockError:
            raise _corrupt("lz4") from None
    # A raw block (the SDK strips the 4-byte size prefix): guess generously (nginx logs
    # compress ~10x), then grow. A too-small buffer and corrupt data fail alike, so corrupt
    # data costs a few attempts up to the cap; the buffers are never touched beyond the data.
    size = min(MAX_RAW_BYTES, max(256 * 1024, len(payload) * 16))
    while True:
        try:
            return bytes(lz4.block.decompress(payload, uncompressed_size=size))
        except lz4.block.LZ4BlockError:
            if size >= MAX_RAW_BYTES:
                raise _corrupt("lz4") from None
            size = min(MAX_RAW_BYTES, size * 4)


def _zstd_decompress(payload: bytes, size_hint: int | None) -> bytes:
    """Every frame of the body (skippable frames count and yield nothing), each to its end.
    With `size_hint` (a stored chunk): its first `size_hint` bytes, what the upload was
    counted with, whatever follows (chunks stored before trailing bytes were refused)."""
    limit = MAX_RAW_BYTES if size_hint is None else size_hint
    view = memoryview(payload)
    parts: list[bytes] = []
    size = pos = frames = start = 0
    try:
        while pos < len(view) and (size_hint is None or size < size_hint):
            start = pos
            frames += 1
            if frames > MAX_MEMBERS:
                raise _too_many("zstd", "frames")
            inflater = _zstd.decompressobj()
            while not inflater.eof:
                if pos >= len(view):
                    if size_hint is not None and size >= size_hint:
                        break  # an old chunk whose last frame was cut short
                    if frames > 1:
                        raise _trailing("zstd", "frame", start, len(view))
                    raise _corrupt("zstd")  # the frame is cut short
                piece = view[pos:pos + _ZSTD_PIECE]
                out = inflater.decompress(piece)
                size += len(out)
                if size > limit:
                    raise _corrupt("zstd")
                parts.append(out)
                pos += len(piece) - len(inflater.unused_data)
    except zstandard.ZstdError:
        if frames > 1 and size_hint is None:
            raise _trailing("zstd", "frame", start, len(view)) from None
        raise _corrupt("zstd") from None
    if size_hint is not None and size != size_hint:
        raise _corrupt("zstd")
    return b"".join(parts)


def _inflate_members(view: memoryview, size_hint: int | None) -> bytes | None:
    """zlib streams and gzip members back to back, each to its end; None if the first is
    neither (the caller tries raw deflate). With `size_hint`, see _zstd_decompress."""
    limit = MAX_RAW_BYTES if size_hint is None else size_hint
    parts: list[bytes] = []
    size = pos = members = 0
    while pos < len(view) and (size_hint is None or size < size_hint):
        members += 1
        if members > MAX_MEMBERS:
            raise _too_many("deflate", "zlib streams or gzip members")
        start = pos
        inflater = zlib_ng.decompressobj(47)  # 32 + 15: a zlib or a gzip header, detected
        while not inflater.eof:
            if pos >= len(view):
                if members == 1:
                    return None
                raise _trailing("deflate", "zlib stream or gzip member", start, len(view))
            piece = view[pos:pos + _ZLIB_PIECE]
            try:
                out = inflater.decompress(piece, limit - size + 1)
            except _InflateError:
                if members == 1:
                    return None
                raise _trailing("deflate", "zlib stream or gzip member", start,
                                len(view)) from None
            size += len(out)
            if size > limit or inflater.unconsumed_tail:  # output bound reached: over the cap
                raise _corrupt("deflate")
            parts.append(out)
            pos += len(piece) - len(inflater.unused_data)
    if size_hint is not None and size != size_hint:
        raise _corrupt("deflate")
    return b"".join(parts)


def _deflate(payload: bytes, size_hint: int | None) -> bytes:
    # SDKs differ on what "deflate" means (Java calls it GZIP): accept zlib and gzip framing,
    # several members of them back to back, or one raw deflate stream.
    view = memoryview(payload)
    out = _inflate_members(view, size_hint)
    if out is not None:
        return out
    limit = MAX_RAW_BYTES if size_hint is None else size_hint
    inflater = zlib_ng.decompressobj(-15)
    try:
        out = inflater.decompress(payload, limit + 1)
    except _InflateError:
        raise _corrupt("deflate") from None
    if len(out) > limit or inflater.unconsumed_tail or not inflater.eof:
        raise _corrupt("deflate")
    if size_hint is None and inflater.unused_data:
        raise _trailing("deflate", "raw deflate stream", len(payload) - len(inflater.unused_data),
                        len(payload))
    if size_hint is not None and len(out) != size_hint:
        raise _corrupt("deflate")
    return out


def decompress(codec: str, payload: bytes, size_hint: int | None = None) -> bytes:
    """The LogGroupList protobuf bytes of a payload compressed with `codec` (as stored in
    `log_chunks.codec`, or returned by `codec_of`). Without `size_hint` (an upload) every
    byte of the payload must decode; `size_hint`, a stored chunk's `raw_size`, is the exact
    size of what the upload was validated and counted with. Raises
    ServiceError(InvalidContent)."""
    if codec == "lz4":
        return _lz4(payload, size_hint)
    if codec == "none":
        return payload
    if codec == "zstd":
        return _zstd_decompress(payload, size_hint)
    if codec == "deflate":
        return _deflate(payload, size_hint)
    raise ServiceError(Kinds.INVALID_COMPRESS_TYPE, f"unknown codec {codec!r}")


def compress_lz4(raw: bytes) -> bytes:
    """A raw LZ4 block as the SDK sends it (no size prefix): how we store what came without
    compression. ~0.1 ms per 360 KB; stored bytes shrink ~10x on logs."""
    return bytes(lz4.block.compress(raw, store_size=False))


# --- Validation parse ------------------------------------------------------------------------
# The proto3 view of the schema: UTF-8 checked while parsing (see ingest/schema.py).

CheckedLogGroupList: Any = message_classes("checked")["LogGroupList"]

# A content key is field 1 (tag byte 0x0a) of Log.Content, then a varint length, then the key.
# Any key starting with "_" therefore shows up as 0x0a, 1-5 length bytes, "_". Split in two
# searches because each is ~2x faster alone than the alternation (sre overhead per candidate
# 0x0a). Non-minimal tag encodings (0x8a 0x80.. 0x00, legal but never sent by an SDK) are
# caught by the third pattern, so the prefilter never misses a key; it only over-reports
# (tag keys, values with a newline two bytes before "_"), and the exact walk settles those.
_TAGS = wire_tags()
_KEY_TAG = _TAGS["Log.Content.key"]
assert _KEY_TAG < 0x80, "the prefilter below expects a one-byte key tag"
_KEY_SHORT = re.compile(re.escape(bytes([_KEY_TAG])) + rb"[\x00-\x7f]_", re.S)
_KEY_LONG = re.compile(re.escape(bytes([_KEY_TAG])) + rb"[\x80-\xff]{1,4}[\x00-\x7f]_", re.S)
_ODD_TAG = re.compile(re.escape(bytes([_KEY_TAG | 0x80])) + rb"[\x80\x00]", re.S)
_GROUP_TAG = _TAGS["LogGroupList.logGroupList"]


def _may_have_underscore_key(raw: bytes) -> bool:
    return bool(_KEY_SHORT.search(raw) or _KEY_LONG.search(raw) or _ODD_TAG.search(raw))


def _group_wire_sizes(raw: bytes) -> list[int] | None:
    """Byte length of each top-level LogGroup, read from the wire (a handful of varints);
    None if the top level holds something unexpected (then every group is checked)."""
    sizes: list[int] = []
    pos, end = 0, len(raw)
    while pos < end:
        tag, pos = read_varint(raw, pos)
        wire_type = tag & 7
        if wire_type == 2:
            length, pos = read_varint(raw, pos)
            if tag == _GROUP_TAG:
                sizes.append(length)
            pos += length
        elif wire_type == 0:
            _, pos = read_varint(raw, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:  # deprecated groups (3/4) as unknown fields: don't guess, check everything
            return None
    return sizes


# --- Unknown fields and times ---------------------------------------------------------------
# Shipping reads Log.Content and LogTag as map entries, and upb drops an entry holding any
# other field from a map: its key and value would be readable through GET /log yet missing
# from every shipped object. So an upload holding a field the schema does not declare, at any
# level (a declared number with another wire type is undeclared too, as upb sees it), is
# refused. The official SDKs send only declared fields (spec §5.3).

# Per message: its declared tags, and the message type of each message-valued one.
_DECLARED: dict[str, dict[int, str | None]] = {
    message: {_TAGS[f"{message}.{f.name}"]: (f.type if f.type in MESSAGES else None)
              for f in fields}
    for message, fields in MESSAGES.items()}


def _place(message: str, group: int, log: int) -> str:
    """Where a field is, in the C scanner's words."""
    if message == "LogGroupList":
        return "the LogGroupList"
    if message == "LogGroup":
        return f"log group {group}"
    if message == "Log":
        return f"log {log} of log group {group}"
    if message == "Log.Content":
        return f"a content of log {log} of log group {group}"
    return f"a tag of log group {group}"


def _first_unknown(raw: memoryview, message: str, group: int, log: int) -> str | None:
    """The first undeclared field in wire order, depth first, as a refusal; the bytes parsed
    already, so they are well-formed (a group is undeclared wherever it is)."""
    declared = _DECLARED[message]
    pos, end = 0, len(raw)
    groups = logs = 0
    while pos < end:
        tag, pos = read_varint(raw, pos)
        wire_type = tag & 7
        if tag not in declared:
            return (f"field {tag >> 3} with wire type {wire_type} in "
                    f"{_place(message, group, log)} is not in the CLS LogGroupList schema; an "
                    "upload with unknown fields is refused rather than stored in part")
        if wire_type == 0:
            _, pos = read_varint(raw, pos)
            continue
        length, pos = read_varint(raw, pos)  # every declared field is a varint or length-delimited
        child = declared[tag]
        if child is not None:
            found = _first_unknown(raw[pos:pos + length], child,
                                   groups if message == "LogGroupList" else group,
                                   logs if message == "LogGroup" and child == "Log" else log)
            if found is not None:
                return found
            if message == "LogGroupList":
                groups += 1
            elif child == "Log":
                logs += 1
        pos += length
    return None


def _check_fields(message: Any, raw: bytes) -> None:
    # Re-serialised without unknown fields, a message is never larger than its wire form
    # (canonical varints and lengths, repeated scalars merged): the same size proves there
    # was nothing unknown, and only a smaller one needs the walk.
    message.DiscardUnknownFields()
    if message.ByteSize() == len(raw):
        return
    found = _first_unknown(memoryview(raw), "LogGroupList", 0, 0)
    if found is not None:
        raise ServiceError(Kinds.INVALID_CONTENT, found)


def _check_times(groups: Any) -> None:
    for index, group in enumerate(groups):
        times = [log.time for log in group.logs]
        if times and (min(times) < LOG_TIME_MIN or max(times) > LOG_TIME_MAX):
            for number, time in enumerate(times):
                if not LOG_TIME_MIN <= time <= LOG_TIME_MAX:
                    raise ServiceError(
                        Kinds.INVALID_CONTENT,
                        f"log {number} of log group {index} has time {time}; Log.time must "
                        f"be an integer from {LOG_TIME_MIN} to {LOG_TIME_MAX} (seconds, "
                        "milliseconds or microseconds)")


def _check_values(group: Any, index: int) -> None:
    """Exact size checks of one group; only called when its wire size exceeds a limit."""
    total = 0
    for log in group.logs:
        for content in log.contents:
            value = content.value
            # Limits are in bytes; isascii() is O(1) in CPython, so most values need no encode.
            size = len(value) if value.isascii() else len(value.encode())
            if size > MAX_VALUE_BYTES:
                raise ServiceError(Kinds.LOG_SIZE_EXCEED,
                                   f"a value of key {content.key!r} in log group {index} is "
                                   f"{size} bytes; at most {MAX_VALUE_BYTES} are allowed")
            total += size
    if total > MAX_GROUP_VALUE_BYTES:
        raise ServiceError(Kinds.LOG_SIZE_EXCEED,
                           f"log group {index} holds {total} bytes of values; at most "
                           f"{MAX_GROUP_VALUE_BYTES} are allowed")


def _check_keys(groups: Any) -> None:
    for index, group in enumerate(groups):
        for log in group.logs:
            for content in log.contents:
                key = content.key
                if key.startswith("_") and key not in ALLOWED_UNDERSCORE_KEYS:
                    raise ServiceError(Kinds.INVALID_CONTENT,
                                       f"content key {key!r} in log group {index} starts with "
                                       "'_', which is reserved")


_SCAN_KINDS = {"InvalidContent": Kinds.INVALID_CONTENT, "LogSizeExceed": Kinds.LOG_SIZE_EXCEED}


def check_protobuf(raw: bytes) -> int:
    """Validate a LogGroupList against the CLS limits; return its number of logs."""
    if _wire is not None:
        try:
            logs, _groups = _wire.scan_log_group_list(raw)
        except _wire.ScanError as exc:
            kind, message = exc.args
            raise ServiceError(_SCAN_KINDS[kind], message) from None
        except _wire.Unsupported:
            pass  # protobuf groups (never sent by an SDK): the parser below decides
        else:
            return logs
    return check_protobuf_python(raw)


def check_protobuf_python(raw: bytes) -> int:
    """check_protobuf without the C extension (and the reference it is tested against)."""
    try:
        message = CheckedLogGroupList.FromString(raw)
    except (DecodeError, RuntimeError, ValueError):
        raise ServiceError(Kinds.INVALID_CONTENT,
                           "the body is not a valid protobuf LogGroupList (or a string in it "
                           "is not valid UTF-8)") from None
    _check_fields(message, raw)
    groups = message.logGroupList
    _check_times(groups)
    count = 0
    for index, group in enumerate(groups):
        logs = len(group.logs)
        if logs > MAX_LOGS_PER_GROUP:
            raise ServiceError(Kinds.LOG_SIZE_EXCEED,
                               f"log group {index} holds {logs} logs; at most "
                               f"{MAX_LOGS_PER_GROUP} are allowed")
        count += logs
    if count == 0:
        raise ServiceError(Kinds.INVALID_CONTENT, "the upload holds no logs")
    # Values are a subset of the wire bytes: below 1 MiB in all, no limit can be broken.
    if len(raw) > MAX_VALUE_BYTES:
        sizes = _group_wire_sizes(raw)
        for index, group in enumerate(groups):
            if sizes is None or index >= len(sizes) or sizes[index] > MAX_VALUE_BYTES:
                _check_values(group, index)
    if _may_have_underscore_key(raw):
        _check_keys(groups)
    return count


# --- JSON uploads ----------------------------------------------------------------------------

_JSON_FIELDS = frozenset({"logs", "source", "filename", "hostname", "tags"})
_LOG_FIELDS = frozenset({"time", "contents"})


def _bad_json(message: str) -> ServiceError:
    return ServiceError(Kinds.INVALID_CONTENT, f"JSON upload: {message}")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad_json(f"{where} must be a string")
    return value


def _unique_names(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    names = dict(pairs)
    if len(names) != len(pairs):
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen:
                raise _bad_json(f"the name {name!r} appears twice in one object; a repeated "
                                "name would silently drop what came before it")
            seen.add(name)
    return names


def _refuse_repeated_names(body: bytes) -> None:
    """orjson keeps the last of repeated names, so `{"logs": [a, b], "logs": [c]}` would store
    c alone and drop a and b: an object naming a field twice is refused. Runs after orjson
    accepted the body, so the text is one valid UTF-8 JSON value."""
    json.loads(body.decode("utf-8"), object_pairs_hook=_unique_names)


def json_to_protobuf(body: bytes) -> tuple[bytes, int]:
    """The JSON upload form as LogGroupList protobuf bytes (one LogGroup) and its log count.

    `{"logs": [{"time": <int s|ms|us, optional: now>, "contents": {"key": "value", ...}}, ...],
      "source": str?, "filename": str?, "hostname": str?, "tags": {"key": "value"}?}`
    """
    try:
        data = orjson.loads(body)  # one JSON value: orjson refuses anything after it
    except orjson.JSONDecodeError as exc:
        raise ServiceError(Kinds.INVALID_CONTENT, f"the body is not valid JSON: {exc}") from None
    _refuse_repeated_names(body)
    if not isinstance(data, dict):
        raise _bad_json("the body must be an object")
    unknown = sorted(set(data) - _JSON_FIELDS)
    if unknown:
        raise _bad_json(f"unknown field(s): {', '.join(unknown)}")
    logs = data.get("logs")
    if not isinstance(logs, list) or not logs:
        raise _bad_json("`logs` must be a non-empty array")
    if len(logs) > MAX_LOGS_PER_GROUP:
        raise ServiceError(Kinds.LOG_SIZE_EXCEED, f"{len(logs)} logs in one upload; at most "
                           f"{MAX_LOGS_PER_GROUP} are allowed")
    group_list = cls_pb.LogGroupList()
    group = group_list.logGroupList.add()
    for name in ("source", "filename", "hostname"):
        if data.get(name) is not None:
            setattr(group, name, _string(data[name], f"`{name}`"))
    tags = data.get("tags")
    if tags is not None:
        if not isinstance(tags, Mapping):
            raise _bad_json("`tags` must be an object of strings")
        for key, value in tags.items():
            tag = group.logTags.add()
            tag.key, tag.value = key, _string(value, f"tag {key!r}")
    default_time = now_ms()
    total = 0
    for index, item in enumerate(logs):
        if not isinstance(item, dict) or set(item) - _LOG_FIELDS:
            raise _bad_json(f"logs[{index}] must be an object with `time` and `contents`")
        contents = item.get("contents")
        if not isinstance(contents, dict) or not contents:
            raise _bad_json(f"logs[{index}].contents must be a non-empty object of strings")
        stamp = item.get("time", default_time)
        if (isinstance(stamp, bool) or not isinstance(stamp, int)
                or not LOG_TIME_MIN <= stamp <= LOG_TIME_MAX):
            raise _bad_json(f"logs[{index}].time must be an integer from {LOG_TIME_MIN} to "
                            f"{LOG_TIME_MAX} (seconds, milliseconds or microseconds)")
        log = group.logs.add()
        log.time = stamp
        for key, value in contents.items():
            if key.startswith("_") and key not in ALLOWED_UNDERSCORE_KEYS:
                raise ServiceError(Kinds.INVALID_CONTENT,
                                   f"content key {key!r} starts with '_', which is reserved")
            text = _string(value, f"logs[{index}].contents[{key!r}]")
            size = len(text.encode())
            if size > MAX_VALUE_BYTES:
                raise ServiceError(Kinds.LOG_SIZE_EXCEED,
                                   f"a value of key {key!r} is {size} bytes; at most "
                                   f"{MAX_VALUE_BYTES} are allowed")
            total += size
            content = log.contents.add()
            content.key, content.value = key, text
    if total > MAX_GROUP_VALUE_BYTES:
        raise ServiceError(Kinds.LOG_SIZE_EXCEED, f"the upload holds {total} bytes of values; "
                           f"at most {MAX_GROUP_VALUE_BYTES} are allowed")
    return group_list.SerializeToString(), len(logs)


# --- The whole upload ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class DecodedUpload:
    """What gets stored: the payload (compressed with `codec`), its protobuf size, its logs."""

    codec: str
    payload: bytes
    raw_size: int
    record_count: int


def is_json(content_type: str | None) -> bool:
    if content_type is None:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    if media in ("application/json", "text/json"):
        return True
    if media in ("", "application/x-protobuf", "application/protobuf",
                 "application/octet-stream"):
        return False
    raise ServiceError(Kinds.INVALID_CONTENT_TYPE,
                       f"Content-Type {content_type!r} is not supported; use "
                       "application/x-protobuf or application/json")


def decode_upload(body: bytes, content_type: str | None,
                  compress_type: str | None) -> DecodedUpload:
    """Decode and validate one upload body; raise ServiceError on anything the rules refuse."""
    json_body = is_json(content_type)
    codec = codec_of(compress_type)
    if not body:
        raise ServiceError(Kinds.MISSING_CONTENT, "the request body is empty")
    raw = decompress(codec, body)
    if not raw:
        raise ServiceError(Kinds.MISSING_CONTENT, "the request body is empty once decompressed")
    if json_body:
        pb, count = json_to_protobuf(raw)
        return DecodedUpload("lz4", compress_lz4(pb), len(pb), count)
    count = check_protobuf(raw)
    if codec == "none":
        return DecodedUpload("lz4", compress_lz4(raw), len(raw), count)
    # Compressed bodies are stored as received: no recompression on the hot path.
    return DecodedUpload(codec, body, len(raw), count)


def parse(raw: bytes) -> Message:
    """Raw protobuf bytes as a `cls_pb.LogGroupList` (for readers of stored chunks)."""
    message: Message = cls_pb.LogGroupList.FromString(raw)
    return message

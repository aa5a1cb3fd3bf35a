"""The CLS wire schema (spec §5.3): the one field table of the LogGroupList messages and the
limits an upload must keep, and the three views of them the code parses with.

- `"sdk"`: proto2 `package cls` as the SDKs declare it (ingest/cls_pb.py): what uploads are
  written and read back with.
- `"checked"`: the same messages declared proto3, for upload validation (ingest/decode.py).
  Field numbers and wire types are identical, so it parses the same bytes, but proto3 strings
  are checked for valid UTF-8 while parsing (proto2 hands undecodable strings back as bytes,
  which would break every reader later) and it parses ~1.8x faster than proto2 under upb.
  Required-field presence is not checked (a Log without `time` reads back as time 0), as the
  real parsers are lenient too.
- `"read"`: what shipping reads (formats/records.py), with every repeated key/value pair
  message as a `map<string, string>` (the wire format of a map entry is exactly such a pair)
  and the fields shipping never reads left out, so upb skips them.

The C walks (`cls_shipper._wire`) get their tags and limits from here too (ingest/native.py).
No generated code or protoc is needed: the descriptors are built at import time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

MiB = 1 << 20
MAX_LOGS_PER_GROUP = 10_000
MAX_GROUP_VALUE_BYTES = 5 * MiB
MAX_VALUE_BYTES = 1 * MiB
# Log.time is seconds, milliseconds or microseconds, told apart by magnitude
# (timefmt.normalise_log_time_ms). Accepted: 0 to 2**63 - 1, every int64 but the negative
# ones, the rule the JSON form always had. Negative times are no time any SDK sends, and the
# lowest (seconds below about -9.2e15) have no millisecond value in 64 bits, which JSON lines
# and Parquet need; every accepted value normalises into [0, 2**63 // 1000) ms.
LOG_TIME_MIN = 0
LOG_TIME_MAX = (1 << 63) - 1
# `__CONTENT__` is CLS's own key for an unstructured line (minimalist_log); it is the one
# underscore key accepted, so raw lines can be uploaded the way LogListener sends them.
ALLOWED_UNDERSCORE_KEYS = frozenset({"__CONTENT__"})

Label = Literal["required", "optional", "repeated"]
View = Literal["sdk", "checked", "read"]


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    number: int
    type: str  # "string", "int64", or the name of a message of MESSAGES
    label: Label
    shipped: bool = True  # read by shipping: declared in the "read" view


_PAIR = (Field("key", 1, "string", "required"), Field("value", 2, "string", "required"))

# Field numbers are the SDKs'. A dotted name is a nested message; parents come first.
MESSAGES: dict[str, tuple[Field, ...]] = {
    "Log": (
        Field("time", 1, "int64", "required"),
        Field("contents", 2, "Log.Content", "repeated"),
        Field("collectTime", 3, "int64", "optional", shipped=False),
    ),
    "Log.Content": _PAIR,
    "LogTag": _PAIR,
    "LogGroup": (
        Field("logs", 1, "Log", "repeated"),
        Field("contextFlow", 2, "string", "optional", shipped=False),
        Field("filename", 3, "string", "optional"),
        Field("source", 4, "string", "optional"),
        Field("logTags", 5, "LogTag", "repeated"),
        Field("hostname", 6, "string", "optional"),
    ),
    "LogGroupList": (
        Field("logGroupList", 1, "LogGroup", "repeated"),
    ),
}

_SCALARS = {"string": descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            "int64": descriptor_pb2.FieldDescriptorProto.TYPE_INT64}
_WIRE_TYPES = {"string": 2, "int64": 0}  # a message is length-delimited (2) too
_PACKAGES: dict[View, tuple[str, str, str]] = {  # package, file name, syntax
    "sdk": ("cls", "cls_shipper_cls.proto", "proto2"),
    "checked": ("clscheck", "cls_shipper_cls_check.proto", "proto3"),
    "read": ("cls_read", "cls_shipper_read.proto", "proto2"),
}


def _is_pair(message: str) -> bool:
    return MESSAGES.get(message) == _PAIR


def wire_tags() -> dict[str, int]:
    """`"Message.field"` -> its protobuf tag (field number << 3 | wire type), every field."""
    return {f"{message}.{f.name}": f.number << 3 | _WIRE_TYPES.get(f.type, 2)
            for message, fields in MESSAGES.items() for f in fields}


def read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    """The protobuf varint at `pos` and the position after it. ValueError if the bytes end
    inside it or it runs past 64 bits (no valid message holds either)."""
    value = shift = 0
    while pos < len(data):
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            break
    raise ValueError("a broken varint")


def _file(view: View) -> descriptor_pb2.FileDescriptorProto:
    package, file_name, syntax = _PACKAGES[view]
    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name=file_name, package=package, syntax=syntax)
    declared: dict[str, descriptor_pb2.DescriptorProto] = {}
    for name, fields in MESSAGES.items():
        if view == "read" and _is_pair(name):
            continue  # only ever read as map entries
        parent, _, short = name.rpartition(".")
        container = declared[parent].nested_type if parent else file.message_type
        message = declared[name] = container.add(name=short)
        for f in fields:
            if view == "read" and not f.shipped:
                continue
            label = {"required": F.LABEL_REQUIRED, "optional": F.LABEL_OPTIONAL,
                     "repeated": F.LABEL_REPEATED}[f.label]
            if view != "sdk" and label == F.LABEL_REQUIRED:
                label = F.LABEL_OPTIONAL
            field = message.field.add(name=f.name, number=f.number, label=label)
            if f.type in _SCALARS:
                field.type = _SCALARS[f.type]
                continue
            field.type = F.TYPE_MESSAGE
            field.type_name = f".{package}.{f.type}"
            if view == "read" and _is_pair(f.type):
                entry = message.nested_type.add(name=f.name[0].upper() + f.name[1:] + "Entry")
                entry.options.map_entry = True
                for pair_field in _PAIR:
                    entry.field.add(name=pair_field.name, number=pair_field.number,
                                    type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
                field.type_name = f".{package}.{name}.{entry.name}"
    return file


def message_classes(view: View) -> dict[str, Any]:
    """The message classes of one view, by name as in MESSAGES (pairs absent from "read")."""
    file = _file(view)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    package = file.package
    names = [name for name in MESSAGES if not (view == "read" and _is_pair(name))]
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(
        f"{package}.{name}")) for name in names}

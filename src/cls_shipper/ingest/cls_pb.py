"""The CLS wire messages (spec §5.3, proto2 `package cls`), built at import time from a
descriptor so no generated code or protoc is needed. Field numbers are the SDKs'."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _field(msg: descriptor_pb2.DescriptorProto, name: str, number: int, ftype: int,
           label: int, type_name: str = "") -> None:
    f = msg.field.add(name=name, number=number, type=ftype, label=label)  # type: ignore[arg-type]
    if type_name:
        f.type_name = type_name


def _build() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="cls_shipper_cls.proto", package="cls",
                                            syntax="proto2")
    log = fd.message_type.add(name="Log")
    content = log.nested_type.add(name="Content")
    _field(content, "key", 1, _F.TYPE_STRING, _F.LABEL_REQUIRED)
    _field(content, "value", 2, _F.TYPE_STRING, _F.LABEL_REQUIRED)
    _field(log, "time", 1, _F.TYPE_INT64, _F.LABEL_REQUIRED)
    _field(log, "contents", 2, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".cls.Log.Content")
    _field(log, "collectTime", 3, _F.TYPE_INT64, _F.LABEL_OPTIONAL)
    tag = fd.message_type.add(name="LogTag")
    _field(tag, "key", 1, _F.TYPE_STRING, _F.LABEL_REQUIRED)
    _field(tag, "value", 2, _F.TYPE_STRING, _F.LABEL_REQUIRED)
    group = fd.message_type.add(name="LogGroup")
    _field(group, "logs", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".cls.Log")
    _field(group, "contextFlow", 2, _F.TYPE_STRING, _F.LABEL_OPTIONAL)
    _field(group, "filename", 3, _F.TYPE_STRING, _F.LABEL_OPTIONAL)
    _field(group, "source", 4, _F.TYPE_STRING, _F.LABEL_OPTIONAL)
    _field(group, "logTags", 5, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".cls.LogTag")
    _field(group, "hostname", 6, _F.TYPE_STRING, _F.LABEL_OPTIONAL)
    group_list = fd.message_type.add(name="LogGroupList")
    _field(group_list, "logGroupList", 1, _F.TYPE_MESSAGE, _F.LABEL_REPEATED, ".cls.LogGroup")
    return fd


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_build())

Log = message_factory.GetMessageClass(_pool.FindMessageTypeByName("cls.Log"))
LogTag = message_factory.GetMessageClass(_pool.FindMessageTypeByName("cls.LogTag"))
LogGroup = message_factory.GetMessageClass(_pool.FindMessageTypeByName("cls.LogGroup"))
LogGroupList = message_factory.GetMessageClass(_pool.FindMessageTypeByName("cls.LogGroupList"))

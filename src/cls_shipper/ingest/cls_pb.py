"""The CLS wire messages as the SDKs declare them (proto2 `package cls`, spec §5.3), named
like the SDKs' `cls_pb2`; built from the field table in ingest/schema.py."""

from __future__ import annotations

from typing import Any

from cls_shipper.ingest.schema import message_classes

_classes = message_classes("sdk")

Log: Any = _classes["Log"]
LogTag: Any = _classes["LogTag"]
LogGroup: Any = _classes["LogGroup"]
LogGroupList: Any = _classes["LogGroupList"]

"""Helpers for the formats tests (no tests here): stored chunks, configs, part writers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cls_shipper.ingest.cls_pb import LogGroupList
from cls_shipper.model.shipper import ContentInfo, FilterRule, ShipperConfig
from cls_shipper.sinks.base import WrittenObject

MAX_WRITE = 4 * 1024 * 1024


def group(logs: Sequence[tuple[int, Sequence[tuple[str, str]]]], *, source: str = "",
          filename: str = "", hostname: str = "",
          tags: Sequence[tuple[str, str]] = ()) -> dict[str, Any]:
    return {"logs": logs, "source": source, "filename": filename, "hostname": hostname,
            "tags": tags}


def payload(groups: Iterable[dict[str, Any]]) -> bytes:
    message = LogGroupList()
    for spec in groups:
        out = message.logGroupList.add()
        for name in ("source", "filename", "hostname"):
            if spec[name]:
                setattr(out, name, spec[name])
        for key, value in spec["tags"]:
            tag = out.logTags.add()
            tag.key, tag.value = key, value
        for ms, contents in spec["logs"]:
            log = out.logs.add()
            log.time = ms
            for key, value in contents:
                content = log.contents.add()
                content.key, content.value = key, value
    return bytes(message.SerializeToString())


def config(content: ContentInfo, compress: str = "none", rules: Sequence[FilterRule] = (),
           max_size: int = 100) -> ShipperConfig:
    return ShipperConfig(topic_id="topic-1", bucket="bucket-1250000001", prefix="p/",
                         shipper_name="s", interval=300, max_size=max_size, partition="%Y/",
                         compress=compress, content=content, filter_rules=list(rules))


@dataclass
class Part:
    index: int
    writes: list[bytes] = field(default_factory=list)
    closed: bool = False
    aborted: bool = False

    @property
    def data(self) -> bytes:
        return b"".join(self.writes)


class Collector:
    """open_part for encode_window: records every write, checks the writer contract."""

    def __init__(self, fail_on_write: int | None = None) -> None:
        self.parts: list[Part] = []
        self._fail_on_write = fail_on_write
        self._writes = 0

    def open(self, index: int) -> PartWriter:
        assert index == len(self.parts), "parts are opened in order 0, 1, 2..."
        part = Part(index)
        self.parts.append(part)
        return PartWriter(self, part)

    def datas(self) -> list[bytes]:
        return [p.data for p in self.parts]


class PartWriter:
    def __init__(self, owner: Collector, part: Part) -> None:
        self._owner = owner
        self.part = part

    def write(self, data: bytes) -> None:
        assert not self.part.closed and not self.part.aborted
        assert isinstance(data, bytes) and 0 < len(data) <= MAX_WRITE
        self._owner._writes += 1
        if self._owner._fail_on_write == self._owner._writes:
            raise OSError("disk full")
        self.part.writes.append(data)

    def close(self) -> WrittenObject:
        assert not self.part.closed and not self.part.aborted
        self.part.closed = True
        data = self.part.data
        return WrittenObject(bucket="bucket-1250000001", key=f"part-{self.part.index}",
                             size=len(data), md5=hashlib.md5(data).hexdigest(),
                             sha256=hashlib.sha256(data).hexdigest())

    def abort(self) -> None:
        self.part.aborted = True

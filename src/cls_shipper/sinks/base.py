"""What every destination offers: a writer per object that streams bytes, hashes them on
the way, and makes the object visible under its key only when it is complete."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from cls_shipper.errors import SinkError
from cls_shipper.model.objects import ObjectWriter, WrittenObject

__all__ = ["PROBE_BODY", "Digests", "ObjectWriter", "Sink", "StoredObject", "WrittenObject",
           "check_bucket", "check_key", "probe_key"]

@dataclass(frozen=True)
class StoredObject:
    """An object as the store describes it, for audits."""

    key: str
    size: int
    md5: str  # hex digest when the store knows it (a file; an S3 single-part ETag), else ""


class Sink(Protocol):
    def open_writer(self, bucket: str, key: str, *, content_type: str,
                    storage_class: str = "STANDARD") -> ObjectWriter: ...

    def stat(self, bucket: str, key: str) -> StoredObject | None:
        """The object under `key`, or None when there is none."""
        ...

    def list_objects(self, bucket: str, prefix: str) -> Iterator[StoredObject]:
        """Every object whose key starts with `prefix` (any characters, not only up to a
        `/`), in no particular order."""
        ...

    def probe(self, bucket: str, prefix: str) -> None:
        """Check that objects can be written under `prefix` in `bucket`: writes a small
        object (`probe_key(prefix)`) and deletes it again. Raises SinkError, classified like
        a failed write, when they cannot. A refused delete is no failure (write-only
        credentials are enough to ship): the probe object is then left behind."""
        ...

    def describe(self) -> str:
        """Where objects go, for logs and status; never contains secrets."""
        ...


PROBE_NAME = ".cls-shipper-probe"
PROBE_BODY = b"written and deleted by cls-shipper to check that it can write here\n"


def probe_key(prefix: str) -> str:
    """The probe object's key: one fixed name under the prefix (a probe that cannot delete
    leaves one object, not one per probe), folded like object keys are."""
    return re.sub("/+", "/", prefix + PROBE_NAME).lstrip("/")


# Loose on purpose: the store itself is the authority on bucket names (S3 wants lowercase,
# COS wants `name-appid`); this only keeps names usable as one directory and one host label.
_BUCKET_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,254}")


def check_bucket(bucket: str) -> None:
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise SinkError("invalid", f"invalid bucket name {bucket!r} (10003): use letters, "
                                   "digits, '.', '-' and '_' only")


def check_key(key: str) -> None:
    """Keys are relative '/'-separated paths: no empty, '.' or '..' segment, no leading '/'.
    The same rule serves both sinks, so a key that works locally works on S3 too."""
    problem = None
    if not key:
        problem = "it is empty"
    elif key.startswith("/"):
        problem = "it is absolute"
    elif "\x00" in key or "\\" in key:
        problem = "it contains a NUL or backslash"
    elif any(part in ("", ".", "..") for part in key.split("/")):
        problem = "it has an empty, '.' or '..' path segment"
    elif len(key.encode()) > 1024:
        problem = "it is longer than 1024 bytes"
    if problem:
        raise SinkError("invalid", f"invalid object key {key!r} (10003): {problem}")


class Digests:
    """Size and digests of the bytes as they stream past."""

    __slots__ = ("_md5", "_sha256", "size")

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha256 = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes | memoryview) -> None:
        self._md5.update(data)
        self._sha256.update(data)
        self.size += len(data)

    def result(self, bucket: str, key: str) -> WrittenObject:
        return WrittenObject(bucket=bucket, key=key, size=self.size,
                             md5=self._md5.hexdigest(), sha256=self._sha256.hexdigest())

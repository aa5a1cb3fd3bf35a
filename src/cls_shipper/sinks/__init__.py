"""Destinations for shipped objects: a local directory (the embedded default) and
S3-compatible object storage. `open_sink(url)` picks one from `--object-store`."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cls_shipper.errors import SinkError, SinkErrorKind
from cls_shipper.sinks.base import ObjectWriter, Sink, WrittenObject
from cls_shipper.sinks.local import LocalSink
from cls_shipper.sinks.s3 import S3Sink

__all__ = [
    "LocalSink",
    "ObjectWriter",
    "S3Sink",
    "Sink",
    "SinkError",
    "SinkErrorKind",
    "WrittenObject",
    "open_sink",
]


def open_sink(url: str, environ: Mapping[str, str] | None = None) -> Sink:
    """`file:///abs/dir`, `s3://?endpoint=...`, `s3+http://host:port/`, `s3+https://host/`.
    `environ` replaces os.environ for AWS_* lookups (tests)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise SinkError("invalid", f"invalid object store URL: {url!r} names a host; use "
                                       "file:///absolute/path")
        return LocalSink(Path(unquote(parts.path)))
    if scheme in ("s3", "s3+http", "s3+https"):
        return S3Sink.from_url(url, environ)
    raise SinkError("invalid", f"invalid object store URL {url!r}: use file:///dir, "
                               "s3://?endpoint=..., s3+http://host:port/ or s3+https://host/")

"""stat and list_objects, which audits rely on, on both sinks."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from cls_shipper.sinks import open_sink
from cls_shipper.sinks.base import Sink
from tests.helpers.s3server import S3TestServer


@pytest.fixture(params=["local", "s3"])
def sink_and_bucket(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Sink, str]:
    if request.param == "local":
        return open_sink((tmp_path / "buckets").as_uri()), "audit-bucket"
    s3: S3TestServer = request.getfixturevalue("s3_server")
    s3.create_bucket("audit-bucket-s3")
    return open_sink(s3.sink_url, environ=s3.env), "audit-bucket-s3"


def _put(sink: Sink, bucket: str, key: str, data: bytes) -> None:
    writer = sink.open_writer(bucket, key, content_type="application/gzip")
    writer.write(data)
    writer.close()


def test_stat_and_list(sink_and_bucket: tuple[Sink, str]) -> None:
    sink, bucket = sink_and_bucket
    _put(sink, bucket, "p/2026/_1_0.gz", b"one")
    _put(sink, bucket, "p/2026/_1_1.gz", b"second")
    _put(sink, bucket, "p/2026x/_2_0.gz", b"other directory")
    found = sink.stat(bucket, "p/2026/_1_1.gz")
    assert found is not None and found.size == 6
    assert found.md5 == hashlib.md5(b"second").hexdigest()
    assert sink.stat(bucket, "p/2026/_1_9.gz") is None
    assert sorted(o.key for o in sink.list_objects(bucket, "p/2026/_1_")) == [
        "p/2026/_1_0.gz", "p/2026/_1_1.gz"]
    # A prefix that ends inside a name, and one that matches nothing.
    assert sorted(o.key for o in sink.list_objects(bucket, "p/2026")) == [
        "p/2026/_1_0.gz", "p/2026/_1_1.gz", "p/2026x/_2_0.gz"]
    assert list(sink.list_objects(bucket, "q/")) == []

"""Sinks against a real S3 endpoint (moto over HTTP) and a local directory: bytes, digests,
atomic visibility, aborts without leftovers, failure classification, bounded memory."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from cls_shipper.sinks import LocalSink, S3Sink, SinkError, open_sink
from cls_shipper.sinks.s3 import MAX_STORES, S3Options
from tests.helpers.s3server import S3TestServer

MIB = 1024 * 1024


def _payload(size: int, seed: int = 0) -> bytes:
    """Incompressible, reproducible bytes (distinct per seed)."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest() * 64
        counter += 1
    return bytes(out[:size])


def _stream(writer: object, data: bytes, chunk: int = MIB) -> None:
    for start in range(0, len(data), chunk):
        writer.write(data[start:start + chunk])  # type: ignore[attr-defined]


def _bucket(server: S3TestServer) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    server.create_bucket(name)
    return name


def _sink(server: S3TestServer, extra: str = "") -> S3Sink:
    sink = open_sink(server.sink_url + extra, server.env)
    assert isinstance(sink, S3Sink)
    return sink


# --- local directory -------------------------------------------------------------------


def _uploads_gone(s3: S3TestServer, bucket: str, deadline_s: float = 60.0) -> bool:
    """True once the bucket has no pending multipart upload. The abort is sent as the writer
    is closed with an error and can land well after abort() returns on a loaded machine (a
    15 s deadline was once not enough). A deadline, not a timing assertion: an upload that is
    never aborted still fails."""
    deadline = time.monotonic() + deadline_s
    while s3.list_uploads(bucket):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_local_roundtrip_small_and_large(tmp_path: Path) -> None:
    sink = open_sink((tmp_path / "buckets").as_uri())
    assert isinstance(sink, LocalSink)
    for key, data in (("a/small.json", b'{"x":1}\n'), ("deep/er/large.gz", _payload(20 * MIB))):
        writer = sink.open_writer("logs", key, content_type="application/gzip")
        _stream(writer, data)
        obj = writer.close()
        assert (obj.bucket, obj.key, obj.size) == ("logs", key, len(data))
        assert obj.md5 == hashlib.md5(data).hexdigest()
        assert obj.sha256 == hashlib.sha256(data).hexdigest()
        assert (tmp_path / "buckets" / "logs" / key).read_bytes() == data
    leftovers = [p for p in (tmp_path / "buckets").rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_local_invisible_until_close_then_overwrite(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    final = tmp_path / "b" / "k.txt"
    writer = sink.open_writer("b", "k.txt", content_type="text/plain")
    writer.write(b"first")
    assert not final.exists()
    writer.close()
    assert final.read_bytes() == b"first"
    again = sink.open_writer("b", "k.txt", content_type="text/plain")
    again.write(b"second, longer")
    assert final.read_bytes() == b"first"  # the old object stays whole while rewriting
    assert again.close().size == len(b"second, longer")
    assert final.read_bytes() == b"second, longer"


def test_local_abort_leaves_nothing(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    writer = sink.open_writer("b", "x/y.bin", content_type="application/octet-stream")
    writer.write(_payload(3 * MIB))
    writer.abort()
    writer.abort()  # idempotent
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []
    # abort after a successful close keeps the object
    done = sink.open_writer("b", "x/y.bin", content_type="application/octet-stream")
    done.write(b"kept")
    done.close()
    done.abort()
    assert (tmp_path / "b" / "x" / "y.bin").read_bytes() == b"kept"
    with pytest.raises(RuntimeError):
        done.write(b"more")


@pytest.mark.parametrize("key", ["../escape", "/etc/passwd", "a/../../b", "a//b", "./a", "",
                                 "a/..", "a\\..\\b"])
def test_local_rejects_path_traversal(tmp_path: Path, key: str) -> None:
    root = tmp_path / "root"
    sink = LocalSink(root)
    with pytest.raises(SinkError) as info:
        sink.open_writer("b", key, content_type="text/plain")
    assert info.value.kind == "invalid" and not info.value.transient
    assert list(tmp_path.rglob("*")) == []


@pytest.mark.parametrize("bucket", ["..", "a/b", "", ".hidden", "a..b", "abc\n"])
def test_local_rejects_bad_bucket(tmp_path: Path, bucket: str) -> None:
    with pytest.raises(SinkError) as info:
        LocalSink(tmp_path).open_writer(bucket, "k", content_type="text/plain")
    assert info.value.kind == "invalid"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores directory permissions")
def test_local_permission_denied(tmp_path: Path) -> None:
    root = tmp_path / "ro"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(SinkError) as info:
            LocalSink(root).open_writer("b", "k", content_type="text/plain")
    finally:
        root.chmod(0o700)
    assert (info.value.kind, info.value.code, info.value.transient) == ("access_denied", 10002,
                                                                        False)


def test_local_file_in_the_way_is_invalid(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    w = sink.open_writer("b", "a", content_type="text/plain")
    w.write(b"file")
    w.close()
    with pytest.raises(SinkError) as info:
        sink.open_writer("b", "a/child", content_type="text/plain")
    assert info.value.kind == "invalid"


def test_open_sink_rejects_bad_urls() -> None:
    for url in ("file://host/dir", "file:relative", "ftp://x/", "s3://bucket/prefix",
                "s3+http://user:secret@127.0.0.1:9000/", "s3://?endpoint=ftp://x",
                "s3://?addressing=sideways", "s3://?part_size=1", "s3://?regoin=x"):
        with pytest.raises(SinkError) as info:
            open_sink(url, {})
        assert info.value.kind == "invalid", url
        assert "secret" not in str(info.value)


# --- S3 URL -------------------------------------------------------------------------------


def test_s3_url_forms() -> None:
    env = {"AWS_REGION": "ap-guangzhou", "AWS_ENDPOINT_URL": "https://env.example:9000"}
    opts = S3Options.from_url("s3+http://127.0.0.1:9000/?region=us-east-1&part_size=16", env)
    assert opts.endpoint == "http://127.0.0.1:9000" and opts.region == "us-east-1"
    assert not opts.virtual_hosted and opts.part_size == 16 * MIB
    cos = S3Options.from_url("s3://?endpoint=https://cos.ap-guangzhou.myqcloud.com", env)
    assert cos.virtual_hosted and cos.region == "ap-guangzhou"
    assert cos.bucket_endpoint("logs-1250000000") == (
        "https://logs-1250000000.cos.ap-guangzhou.myqcloud.com")
    from_env = S3Options.from_url("s3://", env)
    assert from_env.endpoint == "https://env.example:9000" and not from_env.virtual_hosted
    aws = S3Options.from_url("s3://", {"AWS_DEFAULT_REGION": "eu-west-1"})
    assert aws.endpoint is None and aws.virtual_hosted and aws.region == "eu-west-1"
    forced = S3Options.from_url("s3+https://minio.internal/?addressing=virtual", {})
    assert forced.bucket_endpoint("b") == "https://b.minio.internal"


def test_describe_has_no_secrets(s3_server: S3TestServer) -> None:
    env = {**s3_server.env, "AWS_SECRET_ACCESS_KEY": "very-secret-value",
           "AWS_SESSION_TOKEN": "session-token-value"}
    text = open_sink(s3_server.sink_url, env).describe()
    assert s3_server.endpoint in text and "path-style" in text
    assert "very-secret" not in text and "session-token" not in text


# --- S3: data -----------------------------------------------------------------------------


def test_s3_small_object_roundtrip(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    data = b'{"a":1}\n{"a":2}\n'
    writer = _sink(s3_server).open_writer(bucket, "p/2024/01/x.json",
                                          content_type="application/json")
    writer.write(data)
    obj = writer.close()
    assert obj.md5 == hashlib.md5(data).hexdigest() and obj.size == len(data)
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert s3_server.get_object(bucket, "p/2024/01/x.json") == data
    head = s3_server.head_object(bucket, "p/2024/01/x.json")
    assert head["ContentType"] == "application/json"
    assert head["ETag"].strip('"') == obj.md5  # single PUT: the ETag is the MD5


def test_s3_multipart_roundtrip_and_atomic_visibility(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    data = _payload(20 * MIB, seed=1)
    writer = _sink(s3_server, "&part_size=5").open_writer(bucket, "big.bin",
                                                         content_type="application/octet-stream")
    _stream(writer, data[: 12 * MIB])
    # Parts are on the server but the object is not visible yet.
    assert s3_server.list_uploads(bucket) == ["big.bin"]
    assert s3_server.list_objects(bucket) == []
    _stream(writer, data[12 * MIB:])
    obj = writer.close()
    assert obj.size == len(data)
    assert obj.md5 == hashlib.md5(data).hexdigest()
    assert obj.sha256 == hashlib.sha256(data).hexdigest()
    assert s3_server.get_object(bucket, "big.bin") == data
    etag = s3_server.head_object(bucket, "big.bin")["ETag"].strip('"')
    assert etag.endswith("-4")  # 20 MiB in 5 MiB parts: a real multipart upload
    assert _uploads_gone(s3_server, bucket)


def test_s3_overwrite_same_key(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server, "&part_size=5")
    for data in (_payload(11 * MIB, seed=2), b"short now", _payload(6 * MIB, seed=3)):
        writer = sink.open_writer(bucket, "same/key", content_type="text/plain")
        _stream(writer, data)
        writer.close()
        assert s3_server.get_object(bucket, "same/key") == data
    assert s3_server.list_objects(bucket) == ["same/key"]


def test_s3_abort_leaves_no_object_and_no_upload(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server, "&part_size=5")
    small = sink.open_writer(bucket, "small", content_type="text/plain")
    small.write(b"never visible")
    small.abort()
    big = sink.open_writer(bucket, "big", content_type="text/plain")
    _stream(big, _payload(17 * MIB, seed=4))
    assert s3_server.list_uploads(bucket) == ["big"]
    big.abort()
    big.abort()
    assert s3_server.list_objects(bucket) == []
    assert _uploads_gone(s3_server, bucket)


def test_s3_aborted_rewrite_keeps_old_object(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server, "&part_size=5")
    first = sink.open_writer(bucket, "k", content_type="text/plain")
    first.write(b"old")
    first.close()
    second = sink.open_writer(bucket, "k", content_type="text/plain")
    _stream(second, _payload(12 * MIB, seed=5))
    second.abort()
    assert s3_server.get_object(bucket, "k") == b"old"
    assert _uploads_gone(s3_server, bucket)


@pytest.mark.parametrize("size", [1000, 11 * MIB])
def test_s3_storage_class_recorded(s3_server: S3TestServer, size: int) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server, "&part_size=5")
    writer = sink.open_writer(bucket, "ia", content_type="text/plain",
                              storage_class="STANDARD_IA")
    _stream(writer, _payload(size))
    writer.close()
    assert s3_server.head_object(bucket, "ia").get("StorageClass") == "STANDARD_IA"
    plain = sink.open_writer(bucket, "std", content_type="text/plain")
    plain.write(b"x")
    plain.close()
    assert s3_server.head_object(bucket, "std").get("StorageClass", "STANDARD") == "STANDARD"


def test_s3_unknown_storage_class_is_invalid(s3_server: S3TestServer) -> None:
    # COS accepts ARCHIVE; S3 (and moto) reject it: a configuration error, not an outage.
    bucket = _bucket(s3_server)
    writer = _sink(s3_server).open_writer(bucket, "k", content_type="text/plain",
                                          storage_class="ARCHIVE")
    writer.write(b"x")
    with pytest.raises(SinkError) as info:
        writer.close()
    err = info.value
    assert (err.kind, err.transient, err.code) == ("invalid", False, 10003)
    assert "InvalidStorageClass" in str(err)


def test_s3_virtual_hosted_addressing(s3_server: S3TestServer) -> None:
    # `<bucket>.localhost` does not resolve here, so requests go through the relay as an
    # HTTP proxy; moto then sees the bucket in the Host header only.
    bucket = _bucket(s3_server)
    url = (f"s3+http://localhost:{s3_server.port}/?addressing=virtual&retries=0"
           f"&proxy=http://127.0.0.1:{s3_server.port}")
    sink = open_sink(url, s3_server.env)
    assert "virtual-hosted" in sink.describe()
    writer = sink.open_writer(bucket, "vh/key", content_type="text/plain")
    writer.write(b"virtual")
    writer.close()
    assert s3_server.get_object(bucket, "vh/key") == b"virtual"


def test_s3_concurrent_writers_share_one_store(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server)
    errors: list[Exception] = []

    def work(i: int) -> None:
        try:
            writer = sink.open_writer(bucket, f"t/{i}", content_type="text/plain")
            writer.write(_payload(200_000, seed=i))
            writer.close()
        except Exception as exc:  # noqa: BLE001 - reported by the test thread below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(s3_server.list_objects(bucket, "t/")) == sorted(f"t/{i}" for i in range(8))
    assert sink.store(bucket) is sink.store(bucket)


# --- S3: failures -------------------------------------------------------------------------


@pytest.mark.parametrize("size", [10, 12 * MIB])
def test_s3_bucket_missing(s3_server: S3TestServer, size: int) -> None:
    sink = _sink(s3_server, "&part_size=5")
    with pytest.raises(SinkError) as info:
        writer = sink.open_writer("no-such-bucket", "k", content_type="text/plain")
        _stream(writer, _payload(size))
        writer.close()
    err = info.value
    assert (err.kind, err.transient, err.code) == ("bucket_missing", False, 10001)
    assert str(err) == (f"bucket 'no-such-bucket' does not exist at {s3_server.endpoint} "
                        "(10001): create it, then retry the task")


def test_s3_endpoint_down_then_back(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server, "&part_size=5")
    with s3_server.down():
        writer = sink.open_writer(bucket, "k", content_type="text/plain")
        writer.write(b"x")
        with pytest.raises(SinkError) as info:
            writer.close()
    err = info.value
    assert (err.kind, err.transient, err.code) == ("unreachable", True, 10003)
    assert s3_server.endpoint in str(err) and len(str(err)) < 300
    assert "no answer" in str(err)
    # Same sink, same cached store, same port: works again.
    writer = sink.open_writer(bucket, "k", content_type="text/plain")
    writer.write(b"after")
    writer.close()
    assert s3_server.get_object(bucket, "k") == b"after"


def test_s3_endpoint_dies_mid_multipart(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server, "&part_size=5")
    data = _payload(16 * MIB, seed=6)
    writer = sink.open_writer(bucket, "mid", content_type="text/plain")
    _stream(writer, data[: 11 * MIB])
    try:
        s3_server.stop()
        with pytest.raises(SinkError) as info:
            _stream(writer, data[11 * MIB:])
            writer.close()
    finally:
        s3_server.start()
    assert info.value.kind == "unreachable" and info.value.transient
    assert s3_server.list_objects(bucket) == []  # nothing partial became visible
    # The retry rewrites the key; the abort could not reach the store while it was down,
    # so the first upload may linger until a lifecycle rule removes it.
    retry = sink.open_writer(bucket, "mid", content_type="text/plain")
    _stream(retry, data)
    retry.close()
    assert s3_server.get_object(bucket, "mid") == data


def test_s3_timeout_is_unreachable(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server, "&timeout=1")
    s3_server.hang()
    try:
        writer = sink.open_writer(bucket, "k", content_type="text/plain")
        writer.write(b"x")
        with pytest.raises(SinkError) as info:
            writer.close()
    finally:
        s3_server.start()
    assert (info.value.kind, info.value.transient, info.value.code) == ("unreachable", True,
                                                                        10003)
    # obstore's writer reports a timeout only as "error sending request"; the message names
    # the possible causes, a timeout among them.
    assert "timed out" in str(info.value)


@pytest.mark.parametrize("status", [503, 500])
def test_s3_throttling_and_5xx_are_transient(s3_server: S3TestServer, status: int) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server)
    s3_server.fail_with(status)
    try:
        writer = sink.open_writer(bucket, "k", content_type="text/plain")
        writer.write(b"x")
        with pytest.raises(SinkError) as info:
            writer.close()
    finally:
        s3_server.start()
    err = info.value
    assert (err.kind, err.transient, err.code) == ("other", True, 10003)
    assert str(status) in str(err)


def _auth_sink(server: S3TestServer, key: str, secret: str) -> S3Sink:
    env = {**server.env, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    sink = open_sink(server.sink_url, env)
    assert isinstance(sink, S3Sink)
    return sink


def _put(sink: S3Sink, bucket: str, data: bytes = b"x") -> None:
    writer = sink.open_writer(bucket, "k", content_type="text/plain")
    writer.write(data)
    writer.close()


def test_s3_credentials_from_environment(s3_auth_server: S3TestServer,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = _bucket(s3_auth_server)
    for name, value in s3_auth_server.env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    sink = open_sink(s3_auth_server.sink_url)  # os.environ
    assert isinstance(sink, S3Sink)
    _put(sink, bucket, b"signed")
    assert s3_auth_server.get_object(bucket, "k") == b"signed"


@pytest.mark.parametrize("case", ["bad_secret", "unknown_key", "no_policy"])
def test_s3_access_denied(s3_auth_server: S3TestServer, case: str) -> None:
    bucket = _bucket(s3_auth_server)
    if case == "bad_secret":
        key, secret, s3_code = s3_auth_server.access_key, "wrong", "SignatureDoesNotMatch"
    elif case == "unknown_key":
        key, secret, s3_code = "AKIAUNKNOWN000000000", "wrong", "InvalidAccessKeyId"
    else:
        key, secret = s3_auth_server.create_user(f"u{uuid.uuid4().hex[:8]}")
        s3_code = "AccessDenied"
    with pytest.raises(SinkError) as info:
        _put(_auth_sink(s3_auth_server, key, secret), bucket)
    err = info.value
    assert (err.kind, err.transient, err.code) == ("access_denied", False, 10002)
    assert f"bucket '{bucket}'" in str(err) and s3_code in str(err)
    assert secret not in str(err) or secret == "wrong"
    assert s3_auth_server.list_objects(bucket) == []


def test_s3_multipart_denied_by_policy(s3_auth_server: S3TestServer) -> None:
    """Allowed to PUT but not to start a multipart upload: large objects fail clearly."""
    bucket = _bucket(s3_auth_server)
    key, secret = s3_auth_server.create_user(f"u{uuid.uuid4().hex[:8]}", {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"],
                       "Resource": f"arn:aws:s3:::{bucket}/small/*"}]})
    sink = open_sink(s3_auth_server.sink_url + "&part_size=5",
                     {**s3_auth_server.env, "AWS_ACCESS_KEY_ID": key,
                      "AWS_SECRET_ACCESS_KEY": secret})
    ok = sink.open_writer(bucket, "small/k", content_type="text/plain")
    ok.write(b"fine")
    ok.close()
    with pytest.raises(SinkError) as info:
        w = sink.open_writer(bucket, "other/k", content_type="text/plain")
        w.write(b"no")
        w.close()
    assert info.value.kind == "access_denied"
    assert s3_auth_server.list_objects(bucket) == ["small/k"]


# --- probes -------------------------------------------------------------------------------


def test_s3_probe_writes_and_deletes(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server)
    sink.probe(bucket, "//logs//app/")
    assert s3_server.list_objects(bucket) == []  # written, then deleted
    missing = f"gone-{uuid.uuid4().hex[:8]}"
    with pytest.raises(SinkError) as info:
        sink.probe(missing, "p/")
    assert (info.value.kind, info.value.code) == ("bucket_missing", 10001)
    s3_server.create_bucket(missing)
    sink.probe(missing, "p/")  # the same sink sees the bucket once it exists


def test_s3_probe_needs_write_not_delete(s3_auth_server: S3TestServer) -> None:
    """Write-only credentials ship, so they pass the probe (its object stays behind); no
    write permission under the prefix fails it as access denied."""
    bucket = _bucket(s3_auth_server)
    key, secret = s3_auth_server.create_user(f"u{uuid.uuid4().hex[:8]}", {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:PutObject"],
                       "Resource": f"arn:aws:s3:::{bucket}/ok/*"}]})
    sink = _auth_sink(s3_auth_server, key, secret)
    sink.probe(bucket, "ok/")
    assert s3_auth_server.list_objects(bucket) == ["ok/.cls-shipper-probe"]
    with pytest.raises(SinkError) as info:
        sink.probe(bucket, "other/")
    assert (info.value.kind, info.value.code) == ("access_denied", 10002)


def test_s3_probe_of_a_stalled_store_times_out(s3_server: S3TestServer) -> None:
    bucket = _bucket(s3_server)
    sink = _sink(s3_server, "&timeout=1")
    s3_server.hang()
    try:
        with pytest.raises(SinkError) as info:
            sink.probe(bucket, "p/")
    finally:
        s3_server.start()
    assert (info.value.kind, info.value.transient) == ("unreachable", True)


def test_local_probe(tmp_path: Path) -> None:
    sink = LocalSink(tmp_path)
    sink.probe("b", "a/b/")
    assert [p for p in (tmp_path / "b").rglob("*") if p.is_file()] == []
    (tmp_path / "file").write_text("a file, not a bucket directory")
    with pytest.raises(SinkError):
        sink.probe("file", "p/")
    with pytest.raises(SinkError) as info:
        sink.probe("../x", "p/")
    assert info.value.kind == "invalid"


# --- memory -------------------------------------------------------------------------------


def test_s3_large_object_memory_is_bounded(s3_server: S3TestServer, tmp_path: Path) -> None:
    """Stream 96 MiB in 1 MiB writes with 5 MiB parts, 2 in flight, in a fresh process; its
    peak RSS may grow by a few parts, never by the object size."""
    bucket = _bucket(s3_server)
    script = textwrap.dedent(f"""
        import json, os
        from cls_shipper.sinks import open_sink

        def rss_kib():
            # Resident set now (Linux): sampled after every write, so a buffer that grows
            # with the object shows; ru_maxrss would be dominated by import-time peaks.
            pages = int(open("/proc/self/statm").read().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE") // 1024

        sink = open_sink({s3_server.sink_url + "&part_size=5&concurrency=2"!r},
                         {s3_server.env!r})
        w = sink.open_writer({bucket!r}, "warm", content_type="x")
        w.write(b"warm" * 1024)
        w.close()
        base = rss_kib()
        peak = base
        w = sink.open_writer({bucket!r}, "huge", content_type="x")
        for i in range(96):
            # A fresh 1 MiB object per write, as an encoder produces: obstore keeps
            # references to written buffers, so reusing one object would hide buffering.
            w.write(i.to_bytes(4, "big") * (256 * 1024))
            peak = max(peak, rss_kib())
        obj = w.close()
        print(json.dumps({{"grow_kib": peak - base, "size": obj.size}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    import json

    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["size"] == 96 * MIB
    assert s3_server.head_object(bucket, "huge")["ContentLength"] == 96 * MIB
    # 5 MiB parts x (2 in flight + 1 filling) = 15 MiB, plus slack for the HTTP client;
    # measured ~10 MiB. Buffering the object (or 64 MiB parts) grows it by ~100 MiB.
    assert report["grow_kib"] < 40 * 1024, report


def test_s3_stores_per_bucket_are_bounded() -> None:
    # Buckets come from clients' shipper configurations: a store per bucket ever seen would
    # grow without end.
    sink = S3Sink.from_url("s3+http://127.0.0.1:9/?region=us-east-1",
                           {"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"})
    first = sink.store("bucket-0")
    assert sink.store("bucket-0") is first
    for i in range(MAX_STORES * 3):
        sink.store(f"bucket-{i}")
    assert len(sink._stores) == MAX_STORES

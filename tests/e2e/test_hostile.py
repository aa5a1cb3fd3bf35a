"""Hostile input against a real server: values that must be refused in the API's own format
and leave nothing behind."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_ingest import lz4_body, make_group, make_list, upload
from tests.helpers.server import ApiError, LegacyClient, ServerProcess
from tests.helpers.v3 import signed_post, v3_json

NEWLINE_FIELDS = [{"bucket": "abc\n"}, {"prefix": "a/\n"}, {"prefix": "\n"}]


def _shipper(topic: str, **over: Any) -> dict[str, Any]:
    return {"topic_id": topic, "bucket": "test-1250000001", "prefix": "test",
            "shipper_name": uuid.uuid4().hex[:8], "interval": 300, **over}


@pytest.mark.parametrize("override", NEWLINE_FIELDS, ids=repr)
def test_legacy_refuses_a_newline_in_bucket_or_prefix(
        server: ServerProcess, client: LegacyClient, topic: str,
        override: dict[str, str]) -> None:
    with pytest.raises(ApiError) as err:
        client.call("POST", "/shipper", json=_shipper(topic, **override))
    assert (err.value.status, err.value.code) == (400, "InvalidParam")
    shipper_id = client.call("POST", "/shipper", json=_shipper(topic))["shipper_id"]
    with pytest.raises(ApiError) as err:
        client.call("PUT", "/shipper", json={"shipper_id": shipper_id, **override})
    assert (err.value.status, err.value.code) == (400, "InvalidParam")
    assert not [p for p in (server.data_dir / "buckets").rglob("*") if "\n" in p.name]


@pytest.mark.parametrize("override", [{"Bucket": "abc\n"}, {"Prefix": "a/\n"}, {"Prefix": "\n"}],
                         ids=repr)
def test_v3_refuses_a_newline_in_bucket_or_prefix(server: ServerProcess,
                                                  override: dict[str, str]) -> None:
    logset = v3_json(server, "CreateLogset", {"LogsetName": uuid.uuid4().hex})["LogsetId"]
    topic = v3_json(server, "CreateTopic", {"LogsetId": logset, "TopicName": "t"})["TopicId"]
    base = {"TopicId": topic, "Bucket": "b-1250000000", "Prefix": "p",
            "ShipperName": uuid.uuid4().hex[:8]}
    error = v3_json(server, "CreateShipper", {**base, **override})["Error"]
    assert error["Code"] == "InvalidParameterValue", error
    shipper_id = v3_json(server, "CreateShipper", base)["ShipperId"]
    error = v3_json(server, "ModifyShipper", {"ShipperId": shipper_id, **override})["Error"]
    assert error["Code"] == "InvalidParameterValue", error


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_a_100_kb_header_is_refused(server: ServerProcess, client: LegacyClient) -> None:
    resp = client.raw("GET", "/logsets", headers={"X-Pad": "a" * 100_000})
    assert resp.status_code == 431
    assert resp.json()["errorcode"] == "InvalidParam"
    assert "MAX_HEADER_BYTES" in resp.json()["errormessage"]
    # A 100 KB SecretId is refused the same way, before any lookup.
    resp = LegacyClient(server.base_url, secret_id="A" * 100_000).raw("GET", "/logsets")
    assert resp.status_code == 431
    # Headers of an ordinary size still work, on a fresh connection.
    assert client.raw("GET", "/logsets", headers={"X-Pad": "a" * 8_000}).status_code == 200


def test_a_head_that_never_ends_is_cut_off(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(b"GET /logsets HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        answer = b""
        with contextlib.suppress(ConnectionError):
            for _ in range(200):  # 1.6 MB at most, far beyond the limit
                sock.sendall(b"a" * 8192)
        with contextlib.suppress(ConnectionError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_unknown_secret_ids_do_not_grow_the_server(tmp_path: Path) -> None:
    proc = ServerProcess(tmp_path / "data")
    proc.start()
    try:
        assert proc.proc is not None
        client = LegacyClient(proc.base_url)
        # Warm up: the first requests load code and fill pools that are not growth.
        for i in range(300):
            client.secret_id = f"AKIDwarm{i}"
            client.raw("GET", "/logsets")
        before = _rss_kib(proc.proc.pid)
        # Each SecretId ~20 KB (under the header limit) and distinct: 3,000 of them were
        # 60 MB held for ever by an unbounded cache.
        pad = "x" * 20_000
        for i in range(3_000):
            client.secret_id = f"AKID{i}{pad}"
            resp = client.raw("GET", "/logsets")
            assert resp.status_code == 401, resp.text
        growth_mib = (_rss_kib(proc.proc.pid) - before) / 1024
        assert growth_mib < 25, growth_mib
    finally:
        proc.stop()


@pytest.fixture()
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (root only: elsewhere the test is skipped)."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_database_disk_is_named_in_the_upload_answer(tmp_path: Path,
                                                          small_disk: Path) -> None:
    database = small_disk / "cls-shipper.db"
    proc = ServerProcess(tmp_path / "data", args=["--database-url", f"sqlite:///{database}"])
    proc.start()
    try:
        client = LegacyClient(proc.base_url)
        logset = client.call("POST", "/logset", json={"logset_name": "ls", "period": 7})
        topic = client.call("POST", "/topic", json={"logset_id": logset["logset_id"],
                                                    "topic_name": "t"})["topic_id"]
        # Incompressible records: 2 MiB fill within a few dozen uploads.
        group = make_group([{"m": os.urandom(48_000).hex()}])
        for _ in range(200):
            resp = upload(client, topic, lz4_body(make_list(group)))
            if resp.status_code != 200:
                break
        assert resp.status_code == 500, resp.text
        assert resp.json() == {
            "errorcode": "InternalError",
            "errormessage": f"the log store could not commit: the disk of the SQLite "
                            f"{database} is full"}
        answer = signed_post(proc, "UploadLog", lz4_body(make_list(group)),
                             content_type="application/x-protobuf",
                             extra_headers={"X-CLS-TopicId": topic,
                                            "X-CLS-CompressType": "lz4"})
        error = answer.json()["Response"]["Error"]
        assert error["Code"] == "InternalError", error
        assert error["Message"] == resp.json()["errormessage"]
    finally:
        proc.stop()

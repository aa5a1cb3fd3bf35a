"""The shipping engine end to end: logs uploaded with the official SDK, windows of a second,
objects in a real S3-compatible server, read back with independent readers. Every record
must be in the bucket exactly once, whatever happens in between."""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.s3server import S3TestServer
from tests.helpers.sdk_env import sdk_put_logs
from tests.helpers.server import ApiError, LegacyClient, ServerProcess
from tests.helpers.shipping import legacy, read_records, tasks_of, wait_shipped

ENGINE_ENV = {
    "CLS_SHIPPER_SCHEDULER_TICK": "0.2",
    "CLS_SHIPPER_LEASE_SECONDS": "4",
    "CLS_SHIPPER_RETRY_BASE_SECONDS": "0.5",
    "CLS_SHIPPER_RETRY_BACKOFF_CAP_SECONDS": "2",
    "CLS_SHIPPER_MAX_ATTEMPTS": "8",
}


def shipping_server(data_dir: Path, s3: S3TestServer, workers: int = 2) -> ServerProcess:
    return ServerProcess(data_dir, args=["--min-interval", "1", "--workers", str(workers),
                                         "--object-store", s3.sink_url],
                         env={**s3.env, **ENGINE_ENV})


@pytest.fixture(scope="module")
def s3ship(tmp_path_factory: pytest.TempPathFactory,
           s3_server: S3TestServer) -> Iterator[ServerProcess]:
    proc = shipping_server(tmp_path_factory.mktemp("ship"), s3_server).start()
    yield proc
    proc.stop()


@pytest.fixture()
def sclient(s3ship: ServerProcess) -> LegacyClient:
    return LegacyClient(s3ship.base_url)


def new_topic(client: LegacyClient) -> str:
    logset = client.call("POST", "/logset", json={"logset_name": uuid.uuid4().hex,
                                                  "period": 7})["logset_id"]
    return str(client.call("POST", "/topic", json={"logset_id": logset,
                                                   "topic_name": "app"})["topic_id"])


def new_bucket(s3: S3TestServer) -> str:
    name = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(name)
    return name


def record(seq: int) -> dict[str, str]:
    return {"seq": str(seq), "status": ("200", "404", "500")[seq % 3],
            "path": f"/api/items/{seq % 17}", "msg": f"line {seq}, with \"quotes\" and ,commas"}


def upload(server: ServerProcess, topic: str, first: int, count: int, batch: int = 250) -> None:
    client = LegacyClient(server.base_url)
    now_us = int(time.time() * 1_000_000)
    batches = [[(now_us, record(seq)) for seq in range(start, min(start + batch, first + count))]
               for start in range(first, first + count, batch)]
    assert sdk_put_logs(server.base_url, client.secret_id, client.secret_key, topic,
                        batches) == count


def shipped_records(s3: S3TestServer, client: LegacyClient, shipper_id: str, bucket: str,
                    fmt: str, codec: str, csv_keys: list[str] | None = None
                    ) -> list[dict[str, Any]]:
    """All records in the shipper's objects, checked against what the ledger says it wrote."""
    out: list[dict[str, Any]] = []
    ledger_keys = set()
    for task in tasks_of(client, shipper_id):
        detail = client.call("GET", "/task", {"shipper_id": shipper_id,
                                              "task_id": task["task_id"]})
        for obj in detail["objects"]:
            data = s3.get_object(bucket, obj["key"])
            assert hashlib.md5(data).hexdigest() == obj["md5"]
            assert len(data) == obj["size"]
            records = read_records(data, fmt, codec, csv_keys)
            assert len(records) == obj["records"]
            ledger_keys.add(obj["key"])
            out += records
        assert detail["records"] == sum(o["records"] for o in detail["objects"])
    prefix = client.call("GET", "/shipper", {"shipper_id": shipper_id})["prefix"]
    # nothing under the shipper's prefix that the ledger does not know of
    assert set(s3.list_objects(bucket, prefix)) == ledger_keys
    return out


def assert_each_once(records: list[dict[str, Any]], expected: range) -> None:
    counts = Counter(int(r["seq"]) for r in records)
    duplicated = [seq for seq, n in counts.items() if n > 1]
    missing = [seq for seq in expected if seq not in counts]
    assert not duplicated and not missing, (duplicated[:10], missing[:10])
    assert set(counts) == set(expected)


CASES = [
    ("json", "gzip"), ("json", "lzop"), ("json", "snappy"), ("json", "zstd"), ("json", "lz4"),
    ("json", "none"), ("csv", "gzip"), ("parquet", "snappy"), ("parquet", "none"),
]
JSON_META = ["__SOURCE__", "__FILENAME__", "__HOSTNAME__", "__TAG__", "__TIMESTAMP__"]
CSV_KEYS = ["seq", "status", "path", "msg", "__SOURCE__", "__TIMESTAMP__", "absent"]


def content_for(fmt: str) -> dict[str, Any]:
    if fmt == "csv":
        return {"format": "csv", "csv_info": {"keys": CSV_KEYS, "delimiter": ",",
                                              "escape_char": '"', "non_existing_field": "-",
                                              "print_key": False}}
    if fmt == "parquet":
        return {"format": "parquet", "parquet_info": {"parquet_key_info": [
            {"key_name": "seq", "key_type": "int64", "key_non_existing_field": ""},
            {"key_name": "status", "key_type": "int32", "key_non_existing_field": ""},
            {"key_name": "msg", "key_type": "string", "key_non_existing_field": ""}]}}
    return {"format": "json"}


def test_every_format_and_codec_ships_each_record_once(
        s3ship: ServerProcess, sclient: LegacyClient, s3_server: S3TestServer) -> None:
    topic = new_topic(sclient)
    bucket = new_bucket(s3_server)
    shippers = {}
    for fmt, codec in CASES:
        shippers[(fmt, codec)] = sclient.call("POST", "/shipper", json={
            "topic_id": topic, "bucket": bucket, "prefix": f"{fmt}-{codec}/",
            "shipper_name": f"{fmt}-{codec}", "interval": 1, "partition": "%Y%m%d/%H%M%S/",
            "compress": {"format": codec}, "content": content_for(fmt)})["shipper_id"]
    # Three uploaders at once for ~3 s: records land on both sides of many window ends.
    per_thread = 1200
    threads = [threading.Thread(target=upload, args=(s3ship, topic, i * per_thread, per_thread,
                                                     100)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = 3 * per_thread
    done_at = time.time() * 1000
    for shipper_id in shippers.values():
        wait_shipped(sclient, shipper_id, done_at)
    for (fmt, codec), shipper_id in shippers.items():
        keys = s3_server.list_objects(bucket, f"{fmt}-{codec}/")
        assert keys, (fmt, codec)
        records = shipped_records(s3_server, sclient, shipper_id, bucket, fmt, codec, CSV_KEYS)
        assert_each_once(records, range(total))
        if fmt in ("json", "csv"):  # every record as uploaded, with the same keys
            for r in records:
                assert {k: r[k] for k in record(0)} == record(int(r["seq"])), (fmt, codec, r)
            if fmt == "json":
                assert {tuple(sorted(r)) for r in records} == {tuple(sorted(
                    [*record(0), *JSON_META]))}, (fmt, codec)
        sample = next(r for r in records if int(r["seq"]) == 4)
        if fmt == "json":
            assert sample["msg"] == record(4)["msg"] and sample["__SOURCE__"] == "10.1.2.3"
            assert sample["__TAG__"] == {"env": "test"}
        elif fmt == "csv":
            assert sample["msg"] == record(4)["msg"] and sample["absent"] == "-"
        else:
            assert sample["status"] == 404 and sample["seq"] == 4


def test_filter_rules_ship_only_matching(s3ship: ServerProcess, sclient: LegacyClient,
                                         s3_server: S3TestServer) -> None:
    topic, bucket = new_topic(sclient), new_bucket(s3_server)
    shipper_id = sclient.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": bucket, "prefix": "f/", "shipper_name": "only-404",
        "interval": 1, "compress": {"format": "gzip"},
        "filter_rules": [{"key": "status", "regex": "(.*)", "value": "404"},
                         {"key": "path", "regex": r"^/api/(\w+)/", "value": "items"}]}
    )["shipper_id"]
    upload(s3ship, topic, 0, 300)
    wait_shipped(sclient, shipper_id, time.time() * 1000)
    records = shipped_records(s3_server, sclient, shipper_id, bucket, "json", "gzip")
    assert_each_once(records, range(1, 300, 3))


def test_destination_is_checked_on_create_and_modify(
        s3ship: ServerProcess, sclient: LegacyClient, s3_server: S3TestServer) -> None:
    """A missing bucket is refused when the shipper is created or moved to it, not found out
    window by window; the probe object leaves nothing behind."""
    topic, bucket = new_topic(sclient), new_bucket(s3_server)
    missing = f"nowhere-{uuid.uuid4().hex[:10]}"
    body = {"topic_id": topic, "bucket": missing, "prefix": "chk/", "shipper_name": "chk",
            "interval": 1}
    with pytest.raises(ApiError) as err:
        sclient.call("POST", "/shipper", json=body)
    assert err.value.status == 400 and err.value.code == "InvalidParam"
    assert missing in err.value.body["errormessage"]
    assert "does not exist" in err.value.body["errormessage"]
    shipper_id = sclient.call("POST", "/shipper", json={**body, "bucket": bucket})["shipper_id"]
    with pytest.raises(ApiError) as err:
        sclient.call("PUT", "/shipper", json={"shipper_id": shipper_id, "bucket": missing})
    assert err.value.status == 400 and "does not exist" in err.value.body["errormessage"]
    assert sclient.call("GET", "/shipper", {"shipper_id": shipper_id})["bucket"] == bucket
    sclient.call("PUT", "/shipper", json={"shipper_id": shipper_id, "prefix": "moved/"})
    assert s3_server.list_objects(bucket, "") == []  # the probes were deleted
    sclient.call("DELETE", "/shipper", {"shipper_id": shipper_id})


def test_destination_check_can_be_skipped(tmp_path: Path, s3_server: S3TestServer) -> None:
    """CHECK_DESTINATION=false: shippers are created before their buckets exist."""
    server = ServerProcess(tmp_path, args=["--object-store", s3_server.sink_url],
                           env={**s3_server.env, "CLS_SHIPPER_CHECK_DESTINATION": "false"})
    try:
        client = LegacyClient(server.start().base_url)
        assert client.call("POST", "/shipper", json={
            "topic_id": new_topic(client), "bucket": f"later-{uuid.uuid4().hex[:10]}",
            "prefix": "p/", "shipper_name": "offline"})["shipper_id"]
    finally:
        server.stop()


def wait_blocked(client: LegacyClient, shipper_id: str, timeout: float = 60.0
                 ) -> dict[str, Any]:
    """The shipper's `blocked` field once it is blocked."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        blocked: dict[str, Any] | None = client.call(
            "GET", "/shipper", {"shipper_id": shipper_id})["blocked"]
        if blocked is not None:
            return blocked
        time.sleep(0.2)
    raise AssertionError(f"shipper not blocked in {timeout}s: {tasks_of(client, shipper_id)}")


def test_missing_bucket_fails_at_once_then_heals_by_itself(
        s3ship: ServerProcess, sclient: LegacyClient, s3_server: S3TestServer) -> None:
    topic = new_topic(sclient)
    bucket = new_bucket(s3_server)  # there when the shipper is created (it is checked)...
    shipper_id = sclient.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": bucket, "prefix": "m/", "shipper_name": "missing",
        "interval": 1, "compress": {"format": "gzip"}})["shipper_id"]
    s3_server.client().delete_bucket(Bucket=bucket)  # ... and gone when windows ship
    upload(s3ship, topic, 0, 100)
    blocked = wait_blocked(sclient, shipper_id)
    assert blocked["code"] == 10001 and "does not exist" in blocked["reason"]
    upload(s3ship, topic, 100, 100)  # more windows while blocked: they wait, untried
    time.sleep(2)
    listed = tasks_of(sclient, shipper_id)
    failed = [t for t in listed if t["status"] == "failed"]
    assert failed and all("does not exist" in t["message"] and "10001" in t["message"]
                          for t in failed)
    progress = sclient.call("GET", "/shipper", {"shipper_id": shipper_id})["progress"]
    assert progress["failed_tasks"] == len(failed) and progress["oldest_failed_window"]
    # Failed at once, and the other windows spent nothing of their budget.
    for task in listed:
        if task["status"] != "success":
            detail = sclient.call("GET", "/task", {"shipper_id": shipper_id,
                                                   "task_id": task["task_id"]})
            assert detail["attempts"] <= 1, detail
    s3_server.create_bucket(bucket)
    # No command: the shipper's probe finds the bucket and queues the windows again.
    wait_shipped(sclient, shipper_id, time.time() * 1000)
    assert sclient.call("GET", "/shipper", {"shipper_id": shipper_id})["blocked"] is None
    assert_each_once(shipped_records(s3_server, sclient, shipper_id, bucket, "json", "gzip"),
                     range(200))
    detail = sclient.call("GET", "/task", {"shipper_id": shipper_id,
                                           "task_id": failed[0]["task_id"]})
    outcomes = [run["outcome"] for run in detail["runs"]]
    assert outcomes == ["failed", "success"], outcomes
    assert all(run["worker"] and run["start_time"] for run in detail["runs"])


def test_a_deleted_bucket_heals_when_it_is_recreated(
        s3ship: ServerProcess, sclient: LegacyClient, s3_server: S3TestServer) -> None:
    topic, bucket = new_topic(sclient), new_bucket(s3_server)
    shipper_id = sclient.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": bucket, "prefix": "x/", "shipper_name": "deleted",
        "interval": 1, "compress": {"format": "gzip"}})["shipper_id"]
    upload(s3ship, topic, 0, 100)
    wait_shipped(sclient, shipper_id, time.time() * 1000)
    s3 = s3_server.client()
    for key in s3_server.list_objects(bucket):
        s3.delete_object(Bucket=bucket, Key=key)
    s3.delete_bucket(Bucket=bucket)
    upload(s3ship, topic, 100, 100)
    assert wait_blocked(sclient, shipper_id)["code"] == 10001
    upload(s3ship, topic, 200, 100)
    s3_server.create_bucket(bucket)
    wait_shipped(sclient, shipper_id, time.time() * 1000)
    assert sclient.call("GET", "/shipper", {"shipper_id": shipper_id})["blocked"] is None
    # What was in the bucket went with it; everything uploaded since is there, once.
    records = [r for key in s3_server.list_objects(bucket, "x/")
               for r in read_records(s3_server.get_object(bucket, key), "json", "gzip")]
    assert_each_once(records, range(100, 300))


def test_endpoint_down_part_of_the_time(s3ship: ServerProcess, sclient: LegacyClient,
                                        s3_server: S3TestServer) -> None:
    topic, bucket = new_topic(sclient), new_bucket(s3_server)
    shipper_id = sclient.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": bucket, "prefix": "d/", "shipper_name": "outage",
        "interval": 1, "compress": {"format": "zstd"}})["shipper_id"]
    upload(s3ship, topic, 0, 300)
    with s3_server.down():
        upload(s3ship, topic, 300, 300)
        time.sleep(2.5)
        during = tasks_of(sclient, shipper_id)
    assert any("unreachable" in t["message"] for t in during), during
    s3_server.fail_with(503)
    upload(s3ship, topic, 600, 300)
    time.sleep(1.5)
    s3_server.start()
    upload(s3ship, topic, 900, 300)
    wait_shipped(sclient, shipper_id, time.time() * 1000)
    assert_each_once(shipped_records(s3_server, sclient, shipper_id, bucket, "json", "zstd"),
                     range(1200))


def test_sigkill_while_shipping(tmp_path: Path, s3_server: S3TestServer) -> None:
    server = shipping_server(tmp_path / "kill", s3_server, workers=1).start()
    client = LegacyClient(server.base_url)
    topic, bucket = new_topic(client), new_bucket(s3_server)
    shipper_id = client.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": bucket, "prefix": "k/", "shipper_name": "killed",
        "interval": 1, "compress": {"format": "gzip"}})["shipper_id"]
    stop = threading.Event()
    uploaded = [0]

    def feed() -> None:
        while not stop.is_set():
            upload(server, topic, uploaded[0], 500, batch=500)
            uploaded[0] += 500

    feeder = threading.Thread(target=feed)
    feeder.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            t["status"] == "success" for t in tasks_of(client, shipper_id)):
        time.sleep(0.2)
    stop.set()
    feeder.join()
    server.kill()  # workers and scheduler die with it, mid-window
    server.start()
    wait_shipped(client, shipper_id, time.time() * 1000)
    records = shipped_records(s3_server, client, shipper_id, bucket, "json", "gzip")
    assert_each_once(records, range(uploaded[0]))
    server.stop()


def test_switching_off_pauses_and_switching_on_ships_the_paused_span(
        s3ship: ServerProcess, sclient: LegacyClient, s3_server: S3TestServer) -> None:
    topic, bucket = new_topic(sclient), new_bucket(s3_server)
    shipper_id = sclient.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": bucket, "prefix": "p/", "shipper_name": "pause",
        "interval": 1, "compress": {"format": "gzip"}})["shipper_id"]
    upload(s3ship, topic, 0, 100)
    wait_shipped(sclient, shipper_id, time.time() * 1000)
    sclient.call("PUT", "/shipper", json={"shipper_id": shipper_id, "effective": False})
    time.sleep(0.5)
    before = len(tasks_of(sclient, shipper_id))
    upload(s3ship, topic, 100, 100)
    time.sleep(2)
    assert len(tasks_of(sclient, shipper_id)) == before  # no windows while switched off
    sclient.call("PUT", "/shipper", json={"shipper_id": shipper_id, "effective": True})
    wait_shipped(sclient, shipper_id, time.time() * 1000)
    listed = tasks_of(sclient, shipper_id)
    assert all(a["range_end"] == b["range_start"] for a, b in itertools.pairwise(listed))
    assert_each_once(shipped_records(s3_server, sclient, shipper_id, bucket, "json", "gzip"),
                     range(200))


def test_audit_proves_the_bucket_matches_the_ledger(
        s3ship: ServerProcess, sclient: LegacyClient, s3_server: S3TestServer) -> None:
    topic, bucket = new_topic(sclient), new_bucket(s3_server)
    shipper_id = sclient.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": bucket, "prefix": "a/", "shipper_name": "audited",
        "interval": 1, "compress": {"format": "gzip"}})["shipper_id"]
    upload(s3ship, topic, 0, 300)
    upload(s3ship, topic, 300, 300)
    wait_shipped(sclient, shipper_id, time.time() * 1000)
    span = {"shipper_id": shipper_id, "start_time": legacy(time.time() * 1000 - 600_000),
            "end_time": legacy(time.time() * 1000)}
    report = sclient.call("GET", "/audit", span)
    assert report["clean"] and report["records"] == 600 and report["findings"] == []
    assert report["objects"] == len(s3_server.list_objects(bucket, "a/")) >= 1

    keys = sorted(s3_server.list_objects(bucket, "a/"))
    s3 = s3_server.client()
    if len(keys) > 1:
        s3.delete_object(Bucket=bucket, Key=keys[1])
    s3.put_object(Bucket=bucket, Key=keys[0], Body=b"tampered")
    stray = keys[0].rsplit("_", 1)[0] + "_7.gz"
    s3.put_object(Bucket=bucket, Key=stray, Body=b"not ours")
    report = sclient.call("GET", "/audit", span)
    kinds = {(f["kind"], f["key"]) for f in report["findings"]}
    assert not report["clean"]
    assert ("mismatched", keys[0]) in kinds and ("extra", stray) in kinds
    if len(keys) > 1:
        assert ("missing", keys[1]) in kinds
    with pytest.raises(ApiError) as err:
        sclient.call("GET", "/audit", {**span, "shipper_id": "nope"})
    assert err.value.code == "ShipperNotExist"


def test_a_config_mistake_is_fixed_by_retrying_with_the_current_config(
        s3ship: ServerProcess, sclient: LegacyClient, s3_server: S3TestServer) -> None:
    topic, bucket = new_topic(sclient), new_bucket(s3_server)
    # The mistyped bucket passes the check at creation and is gone when windows ship.
    s3_server.create_bucket(bucket + "-typo")
    shipper_id = sclient.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": bucket + "-typo", "prefix": "r/", "shipper_name": "typo",
        "interval": 1, "compress": {"format": "gzip"}})["shipper_id"]
    s3_server.client().delete_bucket(Bucket=bucket + "-typo")
    upload(s3ship, topic, 0, 150)
    assert wait_blocked(sclient, shipper_id)["code"] == 10001
    failed = [t for t in tasks_of(sclient, shipper_id) if t["status"] == "failed"]
    assert failed
    sclient.call("PUT", "/shipper", json={"shipper_id": shipper_id, "bucket": bucket})
    # A plain retry lifts the block but ships the window as it was cut: into the mistyped
    # bucket, again, which blocks the shipper again (its probe checks the mistyped bucket,
    # so it stays blocked until the windows are retried with the fixed config).
    first = {"shipper_id": shipper_id, "task_id": failed[0]["task_id"]}
    sclient.call("PUT", "/task", json=first)
    deadline = time.monotonic() + 30
    detail = sclient.call("GET", "/task", first)
    while time.monotonic() < deadline and (detail["status"] != "failed"
                                           or len(detail["runs"]) < 2):
        time.sleep(0.2)
        detail = sclient.call("GET", "/task", first)
    assert detail["status"] == "failed" and "-typo" in detail["message"]
    # All of them at once (PUT /tasks), with the fixed config.
    retried = sclient.call("PUT", "/tasks", json={"shipper_id": shipper_id,
                                                  "reload_config": True})["retried"]
    assert retried >= len(failed)
    wait_shipped(sclient, shipper_id, time.time() * 1000)
    assert_each_once(shipped_records(s3_server, sclient, shipper_id, bucket, "json", "gzip"),
                     range(150))

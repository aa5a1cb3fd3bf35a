"""The full life of an API 3.0 shipper with real shipping, through the official SDK: upload
logs with UploadLog, tasks succeed, a task fails on a missing bucket, the bucket is made, the
task is retried and succeeds; a historical shipper reaches HistoryStatus 4.

Needs the shipping engine (scheduler and workers run by `cls-shipper serve`), the ingest
service `cls_shipper.service.logs` and the moto S3 fixture; skipped where the ingest service
is absent (a build without it).
"""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.s3server import S3TestServer
from tests.helpers.server import ServerProcess
from tests.helpers.v3 import Sdk, upload_logs, v3_json

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(importlib.util.find_spec("cls_shipper.service.logs") is None,
                       reason="waits for the shipping engine and cls_shipper.service.logs"),
]



@pytest.fixture(scope="module")
def shipping_server(tmp_path_factory: pytest.TempPathFactory,
                    s3_server: S3TestServer) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("v3shipping"),
        args=["--min-interval", "1", "--object-store", s3_server.sink_url],
        env={**s3_server.env, "CLS_SHIPPER_SCHEDULER_TICK": "0.2",
             "CLS_SHIPPER_MAX_ATTEMPTS": "1", "CLS_SHIPPER_RETRY_BASE_SECONDS": "0.1"})
    proc.start()
    yield proc
    proc.stop()


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_shipping_lifecycle(shipping_server: ServerProcess, s3_server: S3TestServer,
                            tmp_path: Path) -> None:
    server = shipping_server
    sdk = Sdk(server)
    bucket = f"v3-{uuid.uuid4().hex[:10]}"
    logset = sdk.call("CreateLogset", {"LogsetName": f"ls-{uuid.uuid4().hex[:8]}"})["LogsetId"]
    topic = sdk.call("CreateTopic", {"LogsetId": logset, "TopicName": "app"})["TopicId"]
    refused = v3_json(server, "CreateShipper", {"TopicId": topic, "Bucket": bucket,
                                                "Prefix": "v3/", "ShipperName": "early"})
    # A missing bucket is refused at creation...
    assert refused["Error"]["Code"] == "InvalidParameterValue", refused
    assert "does not exist" in refused["Error"]["Message"]
    s3_server.create_bucket(bucket)
    shipper = sdk.call("CreateShipper", {
        "TopicId": topic, "Bucket": bucket, "Prefix": "v3/", "ShipperName": "live",
        "Interval": 2, "Partition": "%Y%m%d/", "Compress": {"Format": "gzip"},
        "Content": {"Format": "json", "Json": {"EnableTag": False, "MetaFields": [],
                                               "JsonType": 1}}})["ShipperId"]
    s3_server.client().delete_bucket(Bucket=bucket)  # ... and gone later: the tasks fail
    assert upload_logs(server, topic, 50)["ok"]["RequestId"]

    def task_list() -> list[dict[str, Any]]:
        now = int(time.time() * 1000)
        listed: list[dict[str, Any]] = v3_json(server, "DescribeShipperTasks", {
            "ShipperId": shipper, "StartTime": now - 600_000, "EndTime": now + 1000})["Tasks"]
        return listed

    failed = wait_for("a task failing on the missing bucket",
                      lambda: [t for t in task_list() if t["Status"] == "failed"])
    assert "10001" in failed[0]["Message"] or "bucket" in failed[0]["Message"].lower()
    info = sdk.call("DescribeShippers", {"Filters": [{"Key": "shipperId",
                                                       "Values": [shipper]}]})["Shippers"][0]
    assert info["TaskStatus"] == 2

    s3_server.create_bucket(bucket)
    results = sdk.batch([("RetryShipperTask", {"ShipperId": shipper, "TaskId": t["TaskId"]},
                          True) for t in failed])
    # The shipper heals by itself once its bucket exists (its probe finds it): a task it
    # queued again first is no longer failed, and retrying it is refused as documented.
    assert all("ok" in r or r.get("code") == "FailedOperation.ShipperTaskNotToRetry"
               for r in results), results
    wait_for("every task to succeed after the retry",
             lambda: (lambda ts: ts and all(t["Status"] == "success" for t in ts))(
                 [t for t in task_list() if t["TaskId"] in {f["TaskId"] for f in failed}]),
             timeout=90)
    keys = wait_for("objects in the bucket", lambda: s3_server.list_objects(bucket, "v3/"))
    assert keys
    done = failed[0]["TaskId"]
    assert sdk.error("RetryShipperTask", {"ShipperId": shipper, "TaskId": done}).code == \
        "FailedOperation.ShipperTaskNotToRetry"

    # Historical shipping of what was uploaded: StartTime a minute back, EndTime now.
    now_s = int(time.time())
    history = sdk.call("CreateShipper", {
        "TopicId": topic, "Bucket": bucket, "Prefix": "hist/", "ShipperName": "history",
        "Interval": 5, "StartTime": now_s - 60, "EndTime": now_s})["ShipperId"]

    def history_info() -> dict[str, Any]:
        found: dict[str, Any] = v3_json(server, "DescribeShippers", {"Filters": [
            {"Key": "shipperId", "Values": [history]}]})["Shippers"][0]
        return found

    wait_for("HistoryStatus 4 (complete)", lambda: history_info()["HistoryStatus"] == 4,
             timeout=120)
    final = history_info()
    assert (final["Progress"], final["RemainTime"]) == (1.0, 0)
    assert s3_server.list_objects(bucket, "hist/")
    sdk.call("DeleteShipper", {"ShipperId": shipper})
    sdk.call("DeleteShipper", {"ShipperId": history})

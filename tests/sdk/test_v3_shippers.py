"""The life of a shipper through the official SDK (spec §7.2-§7.9), and the same shipper seen
and managed through both APIs."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, insert, select

from cls_shipper.store.schema import shippers, tasks
from tests.helpers.server import ApiError, LegacyClient, ServerProcess
from tests.helpers.v3 import Sdk

SHIPPER_INFO_TYPES: dict[str, type | tuple[type, ...]] = {
    "ShipperId": str, "TopicId": str, "Bucket": str, "Prefix": str, "ShipperName": str,
    "Interval": int, "MaxSize": int, "Status": bool, "FilterRules": list, "Partition": str,
    "Compress": dict, "Content": dict, "CreateTime": str, "FilenameMode": int,
    "StartTime": int, "EndTime": int, "Progress": float, "RemainTime": int,
    "HistoryStatus": int, "StorageType": str, "RoleArn": str, "ExternalId": str,
    "TaskStatus": int, "TimeZone": str, "DSLFilter": str,
}
TASK_INFO_TYPES: dict[str, type] = {
    "TaskId": str, "ShipperId": str, "TopicId": str, "RangeStart": int, "RangeEnd": int,
    "StartTime": int, "EndTime": int, "Status": str, "Message": str,
}


def check_types(item: dict[str, Any], types: dict[str, Any]) -> None:
    assert set(types) <= set(item), set(types) - set(item)
    for name, kind in types.items():
        value = item[name]
        assert isinstance(value, kind) and not (kind is int and isinstance(value, bool)), \
            f"{name}={value!r} is not {kind}"


@pytest.fixture()
def sdk(server: ServerProcess) -> Sdk:
    return Sdk(server)


@pytest.fixture()
def v3_topic(sdk: Sdk) -> str:
    logset = sdk.call("CreateLogset", {"LogsetName": f"ls-{uuid.uuid4().hex[:8]}"})["LogsetId"]
    return str(sdk.call("CreateTopic", {"LogsetId": logset, "TopicName": "app"})["TopicId"])


def insert_task(server: ServerProcess, shipper_id: str, topic_id: str, status: str,
                range_start_ms: int, interval_s: int = 900) -> str:
    """A ledger row written straight into the server's SQLite, for windows the scheduler never
    cuts (before the shipper's first window), so these tests do not need the engine. With the
    engine running, a `wait` row is due only tomorrow so no worker claims it meanwhile, and
    rows carry the shipper's real config so a retried one ships (an empty window)."""
    engine = create_engine(f"sqlite:///{Path(server.data_dir) / 'cls-shipper.db'}")
    task_id = str(uuid.uuid4())
    now = int(time.time() * 1000)
    with engine.begin() as conn:
        config = conn.execute(select(shippers.c.config)
                              .where(shippers.c.shipper_id == shipper_id)).scalar_one()
        conn.execute(insert(tasks).values(
            task_id=task_id, shipper_id=shipper_id, topic_id=topic_id,
            range_start_ms=range_start_ms, range_end_ms=range_start_ms + interval_s * 1000,
            status=status, message={"failed": "bucket does not exist"}.get(status, status),
            created_ms=now - 60_000, run_start_ms=now - 60_000,
            run_end_ms=None if status in ("wait", "running") else now - 30_000,
            config=config, attempts=1,
            next_attempt_ms=now + 86_400_000 if status == "wait" else now))
    engine.dispose()
    return task_id


def test_shipper_lifecycle(server: ServerProcess, sdk: Sdk, v3_topic: str) -> None:
    now_s = int(time.time())
    full = {
        "TopicId": v3_topic, "Bucket": "examplebucket-1250000000", "Prefix": "logs/",
        "ShipperName": "realtime", "Interval": 900, "MaxSize": 5, "FilenameMode": 1,
        "FilterRules": [{"Key": "http", "Regex": r"^(\d+\.\d+)\..*", "Value": "172.16"}],
        "Partition": "/%Y/%m/%d/%H/", "Compress": {"Format": "snappy"},
        "Content": {"Format": "json", "Json": {
            "EnableTag": True, "MetaFields": ["__SOURCE__", "__TIMESTAMP__"], "JsonType": 1}},
        "StorageType": "STANDARD_IA", "TimeZone": "UTC+08:00", "RoleArn": "", "ExternalId": "",
    }
    realtime = sdk.call("CreateShipper", full)["ShipperId"]
    history = sdk.call("CreateShipper", {
        "TopicId": v3_topic, "Bucket": "examplebucket-1250000000", "Prefix": "hist",
        "ShipperName": "history-2", "Interval": 900, "StartTime": now_s - 7200,
        "EndTime": now_s - 3600,
        "Content": {"Format": "csv", "Csv": {"PrintKey": True, "Keys": ["a", "b"],
                                             "Delimiter": ",", "EscapeChar": "\"",
                                             "NonExistingField": "-"}}})["ShipperId"]

    errors = Sdk.batch(sdk, [
        ("CreateShipper", {**full, "ShipperName": "realtime"}, True),
        ("CreateShipper", {**full, "TopicId": "no-such-topic", "ShipperName": "x"}, True),
        ("CreateShipper", {**full, "ShipperName": "x", "Interval": 5000}, True),
        ("CreateShipper", {**full, "ShipperName": "x", "MaxSize": 1000}, True),
        ("CreateShipper", {**full, "ShipperName": "x", "StartTime": now_s + 3600}, True),
        ("CreateShipper", {"TopicId": v3_topic, "Prefix": "p", "ShipperName": "x"}, True),
    ])
    assert [e.get("code") for e in errors] == [
        "InvalidParameter.ShipperConflict", "ResourceNotFound.TopicNotExist",
        "InvalidParameterValue", "InvalidParameterValue", "InvalidParameterValue",
        "MissingParameter"], errors

    # DescribeShippers: filters, paging, TotalCount, every field typed.
    by_topic = sdk.call("DescribeShippers", {"Filters": [{"Key": "topicId",
                                                           "Values": [v3_topic]}]})
    assert by_topic["TotalCount"] == 2
    assert [s["ShipperId"] for s in by_topic["Shippers"]] == [realtime, history]
    info = by_topic["Shippers"][0]
    check_types(info, SHIPPER_INFO_TYPES)
    assert info["Content"] == {"Format": "json", "Csv": None, "Parquet": None, "Json": {
        "EnableTag": True, "MetaFields": ["__SOURCE__", "__TIMESTAMP__"], "JsonType": 1}}
    assert (info["Compress"], info["FilenameMode"], info["StorageType"], info["TimeZone"],
            info["FilterRules"][0]["Value"], info["StartTime"], info["HistoryStatus"],
            info["TaskStatus"], info["Status"]) == (
        {"Format": "snappy"}, 1, "STANDARD_IA", "UTC+08:00", "172.16", 0, 0, 1, True)
    hist = by_topic["Shippers"][1]
    assert (hist["StartTime"], hist["EndTime"], hist["HistoryStatus"], hist["Progress"]) == \
        (now_s - 7200, now_s - 3600, 1, 0.0) or hist["HistoryStatus"] in (2, 3, 4)
    assert hist["Content"]["Csv"]["Keys"] == ["a", "b"]

    page = sdk.call("DescribeShippers", {"Filters": [{"Key": "topicId", "Values": [v3_topic]}],
                                         "Offset": 1, "Limit": 1})
    assert page["TotalCount"] == 2 and [s["ShipperId"] for s in page["Shippers"]] == [history]

    def ids(filters: list[dict[str, Any]], precise: int = 0) -> list[str]:
        found = sdk.call("DescribeShippers", {
            "Filters": [{"Key": "topicId", "Values": [v3_topic]}, *filters],
            "PreciseSearch": precise})
        return [s["ShipperId"] for s in found["Shippers"]]

    assert ids([{"Key": "shipperName", "Values": ["hist"]}]) == [history]
    assert ids([{"Key": "shipperName", "Values": ["hist"]}], precise=1) == []
    assert ids([{"Key": "shipperName", "Values": ["history-2"]}], precise=1) == [history]
    assert ids([{"Key": "shipperId", "Values": [realtime]}]) == [realtime]

    # ModifyShipper: partial, Status, immutable fields, unknown ids.
    sdk.call("ModifyShipper", {"ShipperId": realtime, "TimeZone": "UTC+04:30"})
    sdk.call("ModifyShipper", {"ShipperId": realtime, "Status": False, "MaxSize": 64})
    after = sdk.call("DescribeShippers", {"Filters": [{"Key": "shipperId",
                                                        "Values": [realtime]}]})["Shippers"][0]
    assert (after["TimeZone"], after["Status"], after["MaxSize"], after["TaskStatus"],
            after["Compress"], after["FilterRules"]) == (
        "UTC+04:30", False, 64, 0, {"Format": "snappy"}, info["FilterRules"])
    assert ids([{"Key": "taskStatus", "Values": ["0"]}]) == [realtime]
    errors = sdk.batch([
        ("ModifyShipper", {"ShipperId": realtime, "StartTime": now_s}, False),
        ("ModifyShipper", {"ShipperId": "no-such-shipper", "MaxSize": 10}, True),
        ("ModifyShipper", {"ShipperId": realtime, "ShipperName": "history-2"}, True),
        ("ModifyShipper", {"ShipperId": realtime, "Interval": 0}, True),
    ])
    assert [e.get("code") for e in errors] == [
        "InvalidParameterValue", "ResourceNotFound.ShipperNotExist",
        "InvalidParameter.ShipperConflict", "InvalidParameterValue"], errors
    sdk.call("ModifyShipper", {"ShipperId": realtime, "Status": True})

    # Tasks: ledger rows for windows a day ago (never cut by the scheduler here).
    day_ago = (now_s - 86_400) // 900 * 900 * 1000
    ok_task = insert_task(server, realtime, v3_topic, "success", day_ago)
    failed_task = insert_task(server, realtime, v3_topic, "failed", day_ago + 900_000)
    insert_task(server, realtime, v3_topic, "wait", day_ago + 1_800_000)
    now_ms = int(time.time() * 1000)
    listed = sdk.call("DescribeShipperTasks", {"ShipperId": realtime,
                                               "StartTime": now_ms - 3_600_000,
                                               "EndTime": now_ms})["Tasks"]
    ours = [t for t in listed if t["RangeStart"] >= day_ago and t["RangeEnd"] <= day_ago
            + 2_700_000]
    assert [t["Status"] for t in ours] == ["success", "failed", "running"]  # wait -> running
    for task in ours:
        check_types(task, TASK_INFO_TYPES)
    assert ours[1]["TaskId"] == failed_task and ours[1]["Message"] == "bucket does not exist"
    assert ours[0]["RangeEnd"] - ours[0]["RangeStart"] == 900_000
    assert ids([{"Key": "taskStatus", "Values": ["2"]}]) == [realtime]

    errors = sdk.batch([
        ("RetryShipperTask", {"ShipperId": realtime, "TaskId": ok_task}, True),
        ("RetryShipperTask", {"ShipperId": realtime, "TaskId": "no-such-task"}, True),
        ("RetryShipperTask", {"ShipperId": "no-such-shipper", "TaskId": ok_task}, True),
        ("DescribeShipperTasks", {"ShipperId": realtime, "StartTime": now_ms - 4 * 86_400_000,
                                  "EndTime": now_ms}, True),
        ("DescribeShipperTasks", {"ShipperId": realtime, "StartTime": now_ms,
                                  "EndTime": now_ms - 1}, True),
        ("DescribeShipperTasks", {"ShipperId": "no-such-shipper",
                                  "StartTime": now_ms - 1000, "EndTime": now_ms}, True),
        ("RetryShipperTask", {"ShipperId": realtime, "TaskId": failed_task}, True),
    ])
    assert [e.get("code") for e in errors] == [
        "FailedOperation.ShipperTaskNotToRetry", "ResourceNotFound.ShipperTaskNotExist",
        "ResourceNotFound.ShipperNotExist", "InvalidParameterValue", "InvalidParameterValue",
        "ResourceNotFound.ShipperNotExist", None], errors
    assert ids([{"Key": "taskStatus", "Values": ["2"]}]) == []  # retried: no failure left

    # DeleteShipper
    sdk.call("DeleteShipper", {"ShipperId": history})
    assert sdk.error("DeleteShipper", {"ShipperId": history}).code == \
        "ResourceNotFound.ShipperNotExist"
    assert ids([]) == [realtime]


def test_interval_lowered_by_server_setting(sdk: Sdk, v3_topic: str) -> None:
    """The test server runs with --min-interval 1, which lowers API 3.0's 300 s bound."""
    new = sdk.call("CreateShipper", {"TopicId": v3_topic, "Bucket": "b-1250000000",
                                     "Prefix": "p", "ShipperName": "fast", "Interval": 5})
    assert new["ShipperId"]
    assert sdk.error("CreateShipper", {"TopicId": v3_topic, "Bucket": "b-1250000000",
                                       "Prefix": "p", "ShipperName": "slow",
                                       "Interval": 901}).code == "InvalidParameterValue"


def test_describe_shippers_via_get(server: ServerProcess, v3_topic: str) -> None:
    sdk = Sdk(server)
    created = sdk.call("CreateShipper", {"TopicId": v3_topic, "Bucket": "b-1250000000",
                                         "Prefix": "p", "ShipperName": "viaget"})["ShipperId"]
    got = Sdk(server, method="GET").call("DescribeShippers", {
        "Filters": [{"Key": "topicId", "Values": [v3_topic]},
                    {"Key": "taskStatus", "Values": ["1", "2"]}],
        "Limit": 10, "PreciseSearch": 1})
    assert [s["ShipperId"] for s in got["Shippers"]] == [created]
    assert got["Shippers"][0]["Status"] is True


def test_one_shipper_two_apis(server: ServerProcess, client: LegacyClient, sdk: Sdk,
                              topic: str) -> None:
    """Created with the legacy API, managed with API 3.0, and the other way round."""
    legacy_id = client.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": "legacy-1250000000", "prefix": "old/",
        "shipper_name": "from-legacy", "interval": 300, "max_size": 100,
        "partition": "%Y%m%d", "compress": {"format": "lzop"},
        "content": {"format": "csv", "csv_info": {
            "print_key": False, "keys": ["__CONTENT__"], "delimiter": " ", "escape_char": "",
            "non_existing_field": ""}}})["shipper_id"]
    seen = sdk.call("DescribeShippers", {"Filters": [{"Key": "shipperId",
                                                       "Values": [legacy_id]}]})
    info = seen["Shippers"][0]
    check_types(info, SHIPPER_INFO_TYPES)
    assert (info["Bucket"], info["Compress"]["Format"], info["Content"]["Csv"]["Keys"],
            info["MaxSize"], info["Status"]) == ("legacy-1250000000", "lzop", ["__CONTENT__"],
                                                 100, True)
    sdk.call("ModifyShipper", {"ShipperId": legacy_id, "Status": False, "Interval": 600,
                               "ShipperName": "renamed-by-v3"})
    got = client.call("GET", "/shipper", params={"shipper_id": legacy_id})
    assert (got["effective"], got["interval"], got["shipper_name"]) == \
        (False, 600, "renamed-by-v3")

    v3_id = sdk.call("CreateShipper", {"TopicId": topic, "Bucket": "new-1250000000",
                                       "Prefix": "new", "ShipperName": "from-v3",
                                       "MaxSize": 5})["ShipperId"]
    listed = client.call("GET", "/shippers", params={"topic_id": topic})["shippers"]
    assert [s["shipper_id"] for s in listed] == [legacy_id, v3_id]
    client.call("PUT", "/shipper", json={"shipper_id": v3_id, "effective": False,
                                         "prefix": "changed"})
    info = sdk.call("DescribeShippers", {"Filters": [{"Key": "shipperId",
                                                       "Values": [v3_id]}]})["Shippers"][0]
    # MaxSize 5 is below the legacy bound, yet the legacy API may change other fields.
    assert (info["Status"], info["Prefix"], info["MaxSize"]) == (False, "changed", 5)
    with pytest.raises(ApiError) as refused:
        client.call("PUT", "/shipper", json={"shipper_id": v3_id, "max_size": 5})
    assert refused.value.code == "InvalidParam"
    client.call("DELETE", "/shipper", params={"shipper_id": v3_id})
    sdk.call("DeleteShipper", {"ShipperId": legacy_id})
    assert client.call("GET", "/shippers", params={"topic_id": topic})["shippers"] == []

"""Partitions through the official SDKs: API 3.0 `UploadLog` with `HashKey` lands each upload
in the partition whose range (as `DescribePartitions` shows it) holds the key, read back with
the legacy SDK's `pull_logs`; `SplitPartition` and `MergePartition` are refused plainly."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from tests.helpers.sdk_env import run_sdk_script
from tests.helpers.server import SECRET_ID, SECRET_KEY, ServerProcess
from tests.helpers.v3 import Sdk

# In the SDK venv: DescribePartitions through its typed model (with the warnings the SDK
# gives for any answer field its model lacks), then one UploadLog per key, lz4 as the SDK
# documents, then every partition pulled from its oldest record.
SCRIPT = r"""
import json, warnings
import lz4.block
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cls.v20201016 import cls_client, models
from tencentcloud.log import cls_pb2
from tencentcloud.log.logclient import LogClient

cred = credential.Credential(ARGS["secret_id"], ARGS["secret_key"])
http = HttpProfile(endpoint=ARGS["host"], protocol="http")
client = cls_client.ClsClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    req = models.DescribePartitionsRequest()
    req.TopicId = ARGS["topic"]
    listed = json.loads(client.DescribePartitions(req).to_json_string())["Partitions"]
for key, rid in ARGS["uploads"]:
    lgl = cls_pb2.LogGroupList()
    log = lgl.logGroupList.add().logs.add()
    log.time = 1764300000000
    c = log.contents.add()
    c.key, c.value = "id", rid
    up = models.UploadLogRequest()
    up.TopicId, up.HashKey, up.CompressType = ARGS["topic"], key, "lz4"
    client.UploadLog(up, lz4.block.compress(lgl.SerializeToString(), store_size=False))
pulled = {}
legacy = LogClient(ARGS["endpoint"], ARGS["secret_id"], ARGS["secret_key"])
for p in listed:
    r = legacy.pull_logs(ARGS["topic"], p["PartitionId"], 1 << 20, offset=-1)
    pulled[str(p["PartitionId"])] = [c.value for g in r.get_log_groups() for l in g.logs
                                     for c in l.contents]
print(json.dumps({"partitions": listed, "pulled": pulled,
                  "warnings": [str(w.message) for w in caught]}))
"""

COUNT = 4


def _holder(listed: list[dict[str, Any]], key: str) -> int:
    """The partition whose [InclusiveBeginKey, ExclusiveEndKey) holds the key's place: the
    key itself when it is 32 hex digits, else its MD5 (the last range ends with the space's
    last key, which it holds too)."""
    hexed = key if len(key) == 32 and all(c in "0123456789abcdef" for c in key) \
        else hashlib.md5(key.encode()).hexdigest()
    place = int(hexed, 16)
    found = [p["PartitionId"] for p in listed
             if int(p["InclusiveBeginKey"], 16) <= place < int(p["ExclusiveEndKey"], 16)
             or (place == int(p["ExclusiveEndKey"], 16) == (1 << 128) - 1)]
    assert len(found) == 1, (key, listed)
    return int(found[0])


def test_upload_hash_keys_land_in_the_partition_whose_range_holds_them(
        server: ServerProcess) -> None:
    sdk = Sdk(server)
    logset = sdk.call("CreateLogset", {"LogsetName": f"p-{uuid.uuid4().hex[:8]}"})["LogsetId"]
    topic = sdk.call("CreateTopic", {"LogsetId": logset, "TopicName": "keys",
                                     "PartitionCount": COUNT})["TopicId"]
    keys = ["0" * 32, "3" + "f" * 31, "4" + "0" * 31, "8" + "0" * 31, "bfffffffffffffff" * 2,
            "c" + "0" * 31, "f" * 32, "user-42", "user-43", "order/9"]
    uploads = [[key, f"r{i}"] for i, key in enumerate(keys)] * 2
    out = run_sdk_script(SCRIPT, {"host": f"127.0.0.1:{server.port}",
                                  "endpoint": server.base_url, "secret_id": SECRET_ID,
                                  "secret_key": SECRET_KEY, "topic": topic,
                                  "uploads": uploads})
    listed = out["partitions"]
    assert out["warnings"] == []
    assert [(p["PartitionId"], p["Status"], p["LastWriteTime"]) for p in listed] == [
        (n, "readwrite", None) for n in range(1, COUNT + 1)]
    # Four even ranges covering the key space, end to end.
    assert listed[0]["InclusiveBeginKey"] == "0" * 32 and listed[-1]["ExclusiveEndKey"] == "f" * 32
    assert [p["ExclusiveEndKey"] for p in listed[:-1]] == [p["InclusiveBeginKey"]
                                                          for p in listed[1:]]
    assert [int(p["InclusiveBeginKey"], 16) for p in listed] == [
        n << 126 for n in range(COUNT)]
    expected: dict[str, list[str]] = {str(n): [] for n in range(1, COUNT + 1)}
    for key, rid in uploads:
        expected[str(_holder(listed, key))].append(rid)
    assert out["pulled"] == expected
    # The keys chosen reach every partition, so a routing that ignored HashKey would fail.
    assert all(expected.values())


def test_split_and_merge_answer_unsupported_operation(server: ServerProcess) -> None:
    sdk = Sdk(server)
    logset = sdk.call("CreateLogset", {"LogsetName": f"p-{uuid.uuid4().hex[:8]}"})["LogsetId"]
    topic = sdk.call("CreateTopic", {"LogsetId": logset, "TopicName": "t",
                                     "PartitionCount": 2})["TopicId"]
    split = sdk.error("SplitPartition", {"TopicId": topic, "PartitionId": 1, "Number": 2},
                      typed=True)
    merge = sdk.error("MergePartition", {"TopicId": topic, "PartitionId": 1}, typed=True)
    for refused in (split, merge):
        assert refused.code == "UnsupportedOperation"
        assert "PartitionCount" in refused.message
    missing = sdk.error("DescribePartitions", {"TopicId": "no-such-topic"}, typed=True)
    assert missing.code == "ResourceNotFound.TopicNotExist"
    # Nothing changed: still two writable partitions.
    listed = sdk.call("DescribePartitions", {"TopicId": topic})["Partitions"]
    assert [(p["PartitionId"], p["Status"]) for p in listed] == [(1, "readwrite"),
                                                                 (2, "readwrite")]


def test_deleting_a_topic_or_logset_leaves_no_consumer_group_behind(
        server: ServerProcess) -> None:
    sdk = Sdk(server)
    logset = sdk.call("CreateLogset", {"LogsetName": f"p-{uuid.uuid4().hex[:8]}"})["LogsetId"]
    topic, other = (sdk.call("CreateTopic", {"LogsetId": logset, "TopicName": name})["TopicId"]
                    for name in ("a", "b"))
    sdk.call("CreateConsumerGroup", {"LogsetId": logset, "ConsumerGroup": "g", "Timeout": 10,
                                     "Topics": [topic, other]})
    sdk.call("SendConsumerHeartbeat", {"LogsetId": logset, "ConsumerGroup": "g",
                                       "Consumer": "c"})
    sdk.call("CommitConsumerOffsets", {
        "LogsetId": logset, "ConsumerGroup": "g", "Consumer": "c",
        "TopicPartitionOffsetsInfo": [{"TopicID": topic, "PartitionOffsets": [
            {"PartitionId": 1, "Offset": 0}]}]})
    sdk.call("DeleteTopic", {"TopicId": topic})
    groups = sdk.call("DescribeConsumerGroups", {"LogsetId": logset})["ConsumerGroupsInfo"]
    assert [(g["ConsumerGroup"], g["Topics"]) for g in groups] == [("g", [other])]
    gone = sdk.error("DescribeConsumerOffsets", {"LogsetId": logset, "ConsumerGroup": "g",
                                                 "TopicId": topic})
    assert gone.code == "ResourceNotFound.TopicNotExist"
    held = sdk.call("SendConsumerHeartbeat", {"LogsetId": logset, "ConsumerGroup": "g",
                                              "Consumer": "c"})["TopicPartitionsInfo"]
    assert held == [{"TopicID": other, "Partitions": [1]}]
    # The logset must be empty of topics; then its groups go with it.
    assert sdk.error("DeleteLogset", {"LogsetId": logset}).code == "FailedOperation.LogsetNotEmpty"
    sdk.call("DeleteTopic", {"TopicId": other})
    sdk.call("DeleteLogset", {"LogsetId": logset})
    again = sdk.call("CreateLogset", {"LogsetName": "again", "LogsetId": logset})["LogsetId"]
    assert again == logset
    assert sdk.call("DescribeConsumerGroups", {"LogsetId": logset})["ConsumerGroupsInfo"] == []

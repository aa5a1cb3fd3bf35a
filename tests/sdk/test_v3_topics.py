"""Topic options through the official API 3.0 SDK: every parameter of CreateTopic and
ModifyTopic is taken, checked and read back with DescribeTopics, whose answers carry only
fields the SDK's models know."""

from __future__ import annotations

import uuid
from typing import Any

from tests.helpers.sdk_env import run_sdk_script
from tests.helpers.server import SECRET_ID, SECRET_KEY, ServerProcess
from tests.helpers.v3 import Sdk

# Typed calls in the SDK venv with its warnings recorded (the SDK warns "X fileds are
# useless" for every answer field its model lacks, at any depth), and each raw answer's keys
# compared with the model's attributes, recursively.
SCRIPT = r"""
import json, warnings
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cls.v20201016 import cls_client, models

cred = credential.Credential(ARGS["secret_id"], ARGS["secret_key"])
http = HttpProfile(endpoint=ARGS["endpoint"], protocol="http")
client = cls_client.ClsClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))

def attrs(model):
    return {k[1:] for k in vars(model()) if k.startswith("_")}

NESTED = {"Topics": models.TopicInfo, "Tags": models.Tag, "CustomKmsInfo": models.CustomKmsInfo,
          "Extends": models.TopicExtendInfo, "AnonymousAccess": models.AnonymousInfo,
          "Conditions": models.ConditionInfo}

def unknown(data, model, path):
    found = []
    for key, value in data.items():
        if key not in attrs(model):
            found.append(path + key)
        elif key in NESTED:
            for item in value if isinstance(value, list) else [value] if value else []:
                found += unknown(item, NESTED[key], path + key + ".")
    return found

out = []
for action, params in ARGS["calls"]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            req = getattr(models, action + "Request")()
            req.from_json_string(json.dumps(params))
            typed = json.loads(getattr(client, action)(req).to_json_string())
            raw = client.call_json(action, params)["Response"] if action.startswith("Describe") \
                else {}
            response = getattr(models, action + "Response")
            out.append({"ok": typed, "unknown": unknown(raw, response, ""),
                        "warnings": [str(w.message) for w in caught]})
        except TencentCloudSDKException as e:
            out.append({"code": e.get_code(), "message": e.get_message()})
print(json.dumps(out))
"""


def _run(server: ServerProcess, calls: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = run_sdk_script(SCRIPT, {
        "endpoint": f"127.0.0.1:{server.port}", "secret_id": SECRET_ID,
        "secret_key": SECRET_KEY, "calls": [list(c) for c in calls]})
    return result


def _logset(server: ServerProcess) -> str:
    return str(Sdk(server).call("CreateLogset", {"LogsetName": f"o-{uuid.uuid4().hex[:8]}"})[
        "LogsetId"])


EVERY_OPTION: dict[str, Any] = {
    "PartitionCount": 3, "Tags": [{"Key": "team", "Value": "web"}], "AutoSplit": False,
    "MaxSplitPartitions": 8, "StorageType": "hot", "Period": 60, "Describes": "nginx access",
    "HotPeriod": 14, "Encryption": 1,
    "CustomKmsInfo": {"KmsRegion": "ap-guangzhou", "KmsKeyId": "kms-123"},
    "BizType": 0, "IsWebTracking": True,
    "Extends": {"AnonymousAccess": {"Operations": ["trackLog"], "Conditions": [
        {"Attributes": "VpcID", "Rule": 1, "ConditionValue": "vpc-1"}]}},
    "IsSourceFrom": True, "BillingMode": 0,
}


def test_every_create_option_is_stored_and_read_back(server: ServerProcess) -> None:
    logset = _logset(server)
    name = f"all-{uuid.uuid4().hex[:8]}"
    custom = f"t{uuid.uuid4().hex[:10]}-1250000000"
    [created, described] = _run(server, [
        ("CreateTopic", {"LogsetId": logset, "TopicName": name, "TopicId": custom,
                         **EVERY_OPTION}),
        ("DescribeTopics", {"Filters": [{"Key": "topicId", "Values": [custom]}]}),
    ])
    assert created["ok"]["TopicId"] == custom, created
    assert described["warnings"] == [] and described["unknown"] == [], described
    [topic] = described["ok"]["Topics"]
    expected = {k: v for k, v in EVERY_OPTION.items() if k not in ("Encryption",)}
    assert {k: topic[k] for k in expected} == expected
    assert topic["KeyId"] == "kms-123" and topic["Status"] is True
    assert topic["LogsetId"] == logset and topic["TopicName"] == name


def test_every_modify_option_is_stored_and_read_back(server: ServerProcess) -> None:
    logset = _logset(server)
    [created] = _run(server, [("CreateTopic", {"LogsetId": logset, "TopicName": "m"})])
    topic_id = created["ok"]["TopicId"]
    changes: dict[str, Any] = {
        "TopicName": "m2", "Tags": [{"Key": "k", "Value": "v"}], "Status": False,
        "AutoSplit": True, "MaxSplitPartitions": 20, "Period": 30, "StorageType": "cold",
        "Describes": "moved to cold", "HotPeriod": 0, "IsWebTracking": False,
        "Extends": {"AnonymousAccess": {"Operations": ["realtimeProducer"]}},
        "PartitionCount": 12, "CancelTopicAsyncTaskID": "", "Encryption": 1,
        "CustomKmsInfo": {"KmsRegion": "ap-shanghai", "KmsKeyId": "kms-9"},
        "IsSourceFrom": True, "BillingMode": 1,
    }
    [before, modified, after] = _run(server, [
        ("DescribeTopics", {"Filters": [{"Key": "topicId", "Values": [topic_id]}]}),
        ("ModifyTopic", {"TopicId": topic_id, **changes}),
        ("DescribeTopics", {"Filters": [{"Key": "topicId", "Values": [topic_id]}]}),
    ])
    # The documented defaults first.
    [fresh] = before["ok"]["Topics"]
    assert (fresh["AutoSplit"], fresh["MaxSplitPartitions"], fresh["StorageType"],
            fresh["PartitionCount"], fresh["BizType"], fresh["IsWebTracking"]) == \
        (True, 50, "hot", 1, 0, False)
    assert "code" not in modified, modified
    assert after["warnings"] == [] and after["unknown"] == [], after
    [topic] = after["ok"]["Topics"]
    assert topic["Extends"] == {"AnonymousAccess": {"Operations": ["realtimeProducer"],
                                                    "Conditions": []}}
    plain = {k: v for k, v in changes.items()
             if k not in ("Extends", "CancelTopicAsyncTaskID", "Encryption")}
    assert {k: topic[k] for k in plain} == plain


def test_storage_type_and_period_rules(server: ServerProcess) -> None:
    logset = _logset(server)
    results = _run(server, [
        ("CreateTopic", {"LogsetId": logset, "TopicName": "c1", "StorageType": "cold",
                         "Period": 3}),
        ("CreateTopic", {"LogsetId": logset, "TopicName": "c2", "StorageType": "warm"}),
        ("CreateTopic", {"LogsetId": logset, "TopicName": "c3", "Period": 3601}),
        ("CreateTopic", {"LogsetId": logset, "TopicName": "c4", "HotPeriod": 30,
                         "Period": 30}),
        ("CreateTopic", {"LogsetId": logset, "TopicName": "c5", "PartitionCount": 5,
                         "MaxSplitPartitions": 4}),
        ("CreateTopic", {"LogsetId": logset, "TopicName": "c6", "BizType": 2}),
        ("CreateTopic", {"LogsetId": logset, "TopicName": "c7",
                         "Extends": {"AnonymousAccess": {"Operations": ["deleteAll"]}}}),
        ("CreateTopic", {"LogsetId": logset, "TopicName": "c8",
                         "CustomKmsInfo": {"KmsKeyId": "k"}}),
        ("CreateTopic", {"LogsetId": logset, "TopicName": "forever", "StorageType": "cold",
                         "Period": 3640}),
    ])
    messages = [r.get("code", "") + " " + r.get("message", "") for r in results[:-1]]
    assert all(m.startswith("InvalidParameterValue") for m in messages), messages
    for word, message in zip(["cold", "StorageType", "Period", "HotPeriod", "MaxSplitPartitions",
                              "BizType", "Operations", "Encryption"], messages, strict=True):
        assert word in message, message
    forever = results[-1]["ok"]["TopicId"]
    [cold_topic, modify] = _run(server, [
        ("DescribeTopics", {"Filters": [{"Key": "storageType", "Values": ["cold"]},
                                        {"Key": "logsetId", "Values": [logset]}]}),
        # A cold topic keeps at least 7 days: shortening it below is refused.
        ("ModifyTopic", {"TopicId": forever, "Period": 5}),
    ])
    assert [t["TopicId"] for t in cold_topic["ok"]["Topics"]] == [forever]
    assert cold_topic["ok"]["Topics"][0]["Period"] == 3640
    assert modify["code"] == "InvalidParameterValue" and "7" in modify["message"]


def test_partition_count_follows_modify_topic_rules(server: ServerProcess) -> None:
    logset = _logset(server)
    [created] = _run(server, [("CreateTopic", {"LogsetId": logset, "TopicName": "p",
                                               "PartitionCount": 2})])
    topic_id = created["ok"]["TopicId"]
    results = _run(server, [
        ("ModifyTopic", {"TopicId": topic_id, "PartitionCount": 0}),  # taken as 1
        ("DescribeTopics", {"Filters": [{"Key": "topicId", "Values": [topic_id]}]}),
        ("ModifyTopic", {"TopicId": topic_id, "PartitionCount": 51}),
        ("ModifyTopic", {"TopicId": topic_id, "MaxSplitPartitions": 4, "PartitionCount": 6}),
        ("ModifyTopic", {"TopicId": topic_id, "CancelTopicAsyncTaskID": "task-1"}),
    ])
    assert results[1]["ok"]["Topics"][0]["PartitionCount"] == 1
    assert [r.get("code") for r in results[2:]] == [
        "InvalidParameterValue", "InvalidParameterValue", "InvalidParameterValue"], results

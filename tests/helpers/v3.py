"""Helpers for the API 3.0 tests (no tests here): drive the server with the official
`tencentcloud-sdk-python-cls` client in its own venv, and sign raw requests with our TC3."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from cls_shipper.auth import tc3
from tests.helpers.sdk_env import run_sdk_script
from tests.helpers.server import SECRET_ID, SECRET_KEY, ServerProcess

# Runs in the SDK venv. Each call is [action, params, typed]: typed calls go through the
# generated request/response models (`client.CreateShipper(models.CreateShipperRequest())`),
# the others through `call_json`, which sends any parameters (to test unknown ones).
SDK_SCRIPT = r"""
import json, time
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cls.v20201016 import cls_client, models

if ARGS.get("time_offset"):
    _real_time = time.time
    time.time = lambda: _real_time() + ARGS["time_offset"]
cred = credential.Credential(ARGS["secret_id"], ARGS["secret_key"])
http = HttpProfile(endpoint=ARGS["endpoint"], protocol="http", reqMethod=ARGS["method"])
client = cls_client.ClsClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))
out = []
for action, params, typed in ARGS["calls"]:
    try:
        if typed:
            req = getattr(models, action + "Request")()
            req.from_json_string(json.dumps(params))
            resp = getattr(client, action)(req)
            out.append({"ok": json.loads(resp.to_json_string())})
        else:
            out.append({"ok": client.call_json(action, params)["Response"]})
    except TencentCloudSDKException as e:
        out.append({"code": e.get_code(), "message": e.get_message(),
                    "request_id": e.get_request_id()})
print(json.dumps(out))
"""


UPLOAD_SCRIPT = r"""
import json, time
import lz4.block
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cls.v20201016 import cls_client, models
from tencentcloud.log import cls_pb2

groups = cls_pb2.LogGroupList()
group = groups.logGroupList.add()
group.source = "10.0.0.1"
for i in range(ARGS["count"]):
    log = group.logs.add()
    log.time = int(time.time() * 1000)
    for key, value in (("n", str(i)), ("msg", "hello %d" % i)):
        content = log.contents.add()
        content.key, content.value = key, value
cred = credential.Credential(ARGS["secret_id"], ARGS["secret_key"])
http = HttpProfile(endpoint=ARGS["endpoint"], protocol="http")
client = cls_client.ClsClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))
req = models.UploadLogRequest()
req.TopicId = ARGS["topic_id"]
req.CompressType = "lz4"
body = lz4.block.compress(groups.SerializeToString(), store_size=False)
if ARGS.get("garble"):
    body = b"not lz4 at all"
try:
    print(json.dumps({"ok": json.loads(client.UploadLog(req, body).to_json_string())}))
except TencentCloudSDKException as e:
    print(json.dumps({"code": e.get_code(), "message": e.get_message()}))
"""


def upload_logs(server: ServerProcess, topic_id: str, count: int,
                garble: bool = False) -> dict[str, Any]:
    """UploadLog through the SDK: a LogGroupList of `count` logs, lz4-compressed."""
    result: dict[str, Any] = run_sdk_script(UPLOAD_SCRIPT, {
        "endpoint": f"127.0.0.1:{server.port}", "secret_id": SECRET_ID,
        "secret_key": SECRET_KEY, "topic_id": topic_id, "count": count, "garble": garble})
    return result


class SdkError(Exception):
    def __init__(self, result: dict[str, Any]) -> None:
        super().__init__(f"{result['code']}: {result['message']}")
        self.code: str = result["code"]
        self.message: str = result["message"]
        self.request_id: str = result["request_id"]


class Sdk:
    """The official SDK pointed at a test server."""

    def __init__(self, server: ServerProcess, secret_id: str = SECRET_ID,
                 secret_key: str = SECRET_KEY, method: str = "POST",
                 time_offset: int = 0) -> None:
        self.args: dict[str, Any] = {
            "endpoint": f"127.0.0.1:{server.port}", "secret_id": secret_id,
            "secret_key": secret_key, "method": method, "time_offset": time_offset}

    def batch(self, calls: list[tuple[str, dict[str, Any], bool]]) -> list[dict[str, Any]]:
        """Several calls in one SDK process; each result is {"ok": Response} or an error."""
        result: list[dict[str, Any]] = run_sdk_script(
            SDK_SCRIPT, {**self.args, "calls": [list(c) for c in calls]})
        return result

    def call(self, action: str, params: dict[str, Any] | None = None,
             typed: bool = True) -> dict[str, Any]:
        """One call; the Response (without RequestId for typed calls' None fields) or
        SdkError."""
        [result] = self.batch([(action, params or {}, typed)])
        if "code" in result:
            raise SdkError(result)
        response: dict[str, Any] = result["ok"]
        return response

    def error(self, action: str, params: dict[str, Any] | None = None,
              typed: bool = False) -> SdkError:
        try:
            self.call(action, params, typed)
        except SdkError as exc:
            return exc
        raise AssertionError(f"{action} {params} succeeded; an error was expected")


def signed_post(server: ServerProcess, action: str, body: bytes, *,
                version: str = "2020-10-16", content_type: str = "application/json",
                secret_key: str = SECRET_KEY, timestamp: int | None = None,
                extra_headers: dict[str, str] | None = None) -> httpx.Response:
    """A raw API 3.0 request signed with cls_shipper.auth.tc3 (the SDK tests prove that it
    signs as the SDK does)."""
    host = f"127.0.0.1:{server.port}"
    stamp = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Host": host, "Content-Type": content_type, "X-TC-Action": action,
        "X-TC-Version": version, "X-TC-Timestamp": str(stamp),
        "Authorization": tc3.sign(SECRET_ID, secret_key, "POST", host, content_type, body,
                                  stamp),
        **(extra_headers or {}),
    }
    return httpx.post(server.base_url + "/", content=body, headers=headers, timeout=30)


def v3_json(server: ServerProcess, action: str, params: dict[str, Any]) -> dict[str, Any]:
    resp = signed_post(server, action, orjson.dumps(params))
    assert resp.status_code == 200
    body: dict[str, Any] = resp.json()["Response"]
    return body

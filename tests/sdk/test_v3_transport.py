"""API 3.0 transport: TC3 signatures, envelopes, codes for unknown actions, versions and
parameters, through the official SDK where it can send the request and raw HTTP where it
cannot (wrong version, malformed bodies)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, func, select

from cls_shipper.api.app import create_app
from cls_shipper.api.v3.actions import ACTIONS, Action, Call
from cls_shipper.api.v3.params import DescribeLogsets as DescribeLogsetsParams
from cls_shipper.auth import tc3
from cls_shipper.auth.keys import create_key
from cls_shipper.service import Context
from cls_shipper.settings import Settings
from cls_shipper.store import open_database
from cls_shipper.store.schema import log_chunks
from tests.helpers.server import SECRET_ID, SECRET_KEY, ServerProcess
from tests.helpers.v3 import Sdk, signed_post, upload_logs, v3_json


def test_sdk_auth_failures(server: ServerProcess) -> None:
    assert Sdk(server, secret_key="not-the-key").error("DescribeLogsets").code == \
        "AuthFailure.SignatureFailure"
    assert Sdk(server, secret_id="AKIDunknown").error("DescribeLogsets").code == \
        "AuthFailure.SecretIdNotFound"
    expired = Sdk(server, time_offset=-3600).error("DescribeLogsets")
    assert expired.code == "AuthFailure.SignatureExpire"
    assert expired.request_id  # errors carry a RequestId too


def test_sdk_unknown_action_and_bad_parameters(server: ServerProcess) -> None:
    results = Sdk(server).batch([
        ("DescribeNothing", {}, False),
        ("CreateLogset", {"LogsetName": "x", "Colour": "red"}, False),
        ("CreateLogset", {}, False),
        ("CreateLogset", {"LogsetName": 42}, False),
        ("DescribeLogsets", {"Limit": 1000}, False),
        ("DescribeLogsets", {"Filters": [{"Key": "nope", "Values": ["a"]}]}, False),
        ("CreateShipper", {"TopicId": "t", "Bucket": "b-1", "Prefix": "p",
                           "ShipperName": "n", "Content": {"Format": "json", "Extra": 1}},
         False),
    ])
    codes = [r.get("code") for r in results]
    assert codes == ["InvalidAction", "UnknownParameter", "MissingParameter",
                     "InvalidParameter", "InvalidParameterValue", "InvalidParameterValue",
                     "UnknownParameter"], results
    assert "Colour" in results[1]["message"]
    assert "Content.Extra" in results[6]["message"]


def test_sdk_get_requests_with_query_parameters(server: ServerProcess) -> None:
    """HttpProfile(reqMethod="GET") sends flattened query parameters (Filters.0.Values.0)."""
    name = f"get-{uuid.uuid4().hex[:8]}"
    logset = Sdk(server).call("CreateLogset", {"LogsetName": name})["LogsetId"]
    got = Sdk(server, method="GET").call("DescribeLogsets", {
        "Filters": [{"Key": "logsetName", "Values": [name]}], "Limit": 5})
    assert got["TotalCount"] == 1
    assert got["Logsets"][0]["LogsetId"] == logset
    assert Sdk(server, method="GET").call("DeleteLogset", {"LogsetId": logset})["RequestId"]


def test_envelope_and_request_id(server: ServerProcess) -> None:
    ok = signed_post(server, "DescribeLogsets", b"{}")
    assert ok.status_code == 200
    assert ok.headers["content-type"] == "application/json"
    assert ok.json()["Response"]["RequestId"] == ok.headers["x-cls-requestid"]
    bad = signed_post(server, "DescribeLogsets", b'{"Limit": 0}')
    assert bad.status_code == 200  # errors too, as the real service does
    body = bad.json()["Response"]
    assert body["Error"]["Code"] == "InvalidParameterValue"
    assert body["RequestId"] == bad.headers["x-cls-requestid"]


def test_raw_transport_errors(server: ServerProcess) -> None:
    def code(resp: httpx.Response) -> str:
        assert resp.status_code == 200
        return str(resp.json()["Response"]["Error"]["Code"])

    assert code(signed_post(server, "DescribeLogsets", b"{}", version="2017-03-12")) == \
        "NoSuchVersion"
    assert code(signed_post(server, "DescribeLogsets", b"{nope")) == "InvalidParameter"
    assert code(signed_post(server, "DescribeLogsets", b"[]")) == "InvalidParameter"
    assert code(signed_post(server, "DescribeLogsets", b"{}",
                            timestamp=int(time.time()) - 86_400)) == "AuthFailure.SignatureExpire"
    assert code(signed_post(server, "DescribeLogsets", b"{}",
                            extra_headers={"X-TC-Token": "t"})) == "AuthFailure.TokenFailure"
    unsigned = signed_post(server, "DescribeLogsets", b"{}",
                           extra_headers={"X-TC-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert code(unsigned) == "AuthFailure.SignatureFailure"
    # A body other than the one signed.
    host = f"127.0.0.1:{server.port}"
    stamp = int(time.time())
    headers = {"Host": host, "Content-Type": "application/json", "X-TC-Action": "DeleteLogset",
               "X-TC-Version": "2020-10-16", "X-TC-Timestamp": str(stamp),
               "Authorization": tc3.sign(SECRET_ID, SECRET_KEY, "POST", host,
                                         "application/json", b'{"LogsetId": "a"}', stamp)}
    tampered = httpx.post(server.base_url + "/", content=b'{"LogsetId": "b"}', headers=headers)
    assert code(tampered) == "AuthFailure.SignatureFailure"
    del headers["Authorization"]
    assert code(httpx.post(server.base_url + "/", content=b"{}", headers=headers)) == \
        "AuthFailure.InvalidAuthorization"
    headers["Authorization"] = "TC3-HMAC-SHA256 Credential=x/2020-01-01/cls/tc3_request, " \
        "SignedHeaders=content-type;host, Signature=" + "0" * 64
    assert code(httpx.post(server.base_url + "/", content=b"{}", headers=headers)) == \
        "AuthFailure.InvalidAuthorization"  # the credential date is not the timestamp's


def test_odd_input_gets_a_code_not_a_trace(server: ServerProcess) -> None:
    resp = signed_post(server, "DeleteShipper", orjson.dumps({"ShipperId": "x" * 5000}))
    assert resp.status_code == 200 and "Traceback" not in resp.text
    assert resp.json()["Response"]["Error"]["Code"] == "ResourceNotFound.ShipperNotExist"


def test_logsets_and_topics(server: ServerProcess) -> None:
    sdk = Sdk(server)
    name = f"ls-{uuid.uuid4().hex[:8]}"
    logset = sdk.call("CreateLogset", {"LogsetName": name,
                                       "Tags": [{"Key": "team", "Value": "web"}]})["LogsetId"]
    assert sdk.error("CreateLogset", {"LogsetName": name}).code == \
        "InvalidParameter.LogsetConflict"
    topic = sdk.call("CreateTopic", {"LogsetId": logset, "TopicName": "nginx",
                                     "Period": 7})["TopicId"]
    assert sdk.error("CreateTopic", {"LogsetId": logset, "TopicName": "nginx"}).code == \
        "InvalidParameter.TopicConflict"
    assert sdk.error("CreateTopic", {"LogsetId": "nope", "TopicName": "a"}).code == \
        "ResourceNotFound.LogsetNotExist"
    sdk.call("ModifyTopic", {"TopicId": topic, "TopicName": "nginx2", "Status": False})
    sdk.call("ModifyLogset", {"LogsetId": logset, "LogsetName": name + "b"})
    found = sdk.call("DescribeTopics", {"Filters": [{"Key": "logsetId", "Values": [logset]}]})
    assert found["TotalCount"] == 1
    info = found["Topics"][0]
    assert (info["TopicId"], info["TopicName"], info["Status"], info["Period"]) == \
        (topic, "nginx2", False, 7)
    sets = sdk.call("DescribeLogsets", {"Filters": [{"Key": "tag:team", "Values": ["web"]}]})
    mine = [s for s in sets["Logsets"] if s["LogsetId"] == logset]
    assert mine and mine[0]["LogsetName"] == name + "b" and mine[0]["TopicCount"] == 1
    assert sdk.error("DeleteLogset", {"LogsetId": logset}).code == \
        "FailedOperation.LogsetNotEmpty"
    sdk.call("DeleteTopic", {"TopicId": topic})
    sdk.call("DeleteLogset", {"LogsetId": logset})
    assert v3_json(server, "DescribeLogsets", {"Filters": [
        {"Key": "logsetId", "Values": [logset]}]})["TotalCount"] == 0


def test_upload_log(server: ServerProcess) -> None:
    sdk = Sdk(server)
    logset = sdk.call("CreateLogset", {"LogsetName": f"up-{uuid.uuid4().hex[:8]}"})["LogsetId"]
    topic = sdk.call("CreateTopic", {"LogsetId": logset, "TopicName": "app"})["TopicId"]
    assert upload_logs(server, topic, 20)["ok"]["RequestId"]
    assert upload_logs(server, "no-such-topic", 1)["code"] == "ResourceNotFound.TopicNotExist"
    assert upload_logs(server, topic, 1, garble=True)["code"].startswith("InvalidParameter")
    engine = create_engine(f"sqlite:///{server.data_dir / 'cls-shipper.db'}")
    with engine.connect() as conn:
        stored = conn.execute(select(func.sum(log_chunks.c.record_count))
                              .where(log_chunks.c.topic_id == topic)).scalar()
    engine.dispose()
    assert stored == 20


def test_unexpected_exception_is_internal_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process, with a handler that breaks: InternalError in the envelope, no trace."""
    settings = Settings(data_dir=tmp_path)
    ctx = Context(open_database(settings.db_url), settings)
    create_key(ctx.db, "test", (SECRET_ID, SECRET_KEY))

    def broken(call: Call, q: object) -> dict[str, object]:
        raise RuntimeError("secret detail that must not leak")

    monkeypatch.setitem(ACTIONS, "DescribeLogsets", Action(DescribeLogsetsParams, broken))
    stamp = int(time.time())
    headers = {"Host": "testserver", "Content-Type": "application/json",
               "X-TC-Action": "DescribeLogsets", "X-TC-Version": "2020-10-16",
               "X-TC-Timestamp": str(stamp),
               "Authorization": tc3.sign(SECRET_ID, SECRET_KEY, "POST", "testserver",
                                         "application/json", b"{}", stamp)}
    with TestClient(create_app(settings, ctx)) as http:
        resp = http.post("/", content=b"{}", headers=headers)
    assert resp.status_code == 200
    body = resp.json()["Response"]
    assert body["Error"]["Code"] == "InternalError"
    assert "secret detail" not in resp.text and body["RequestId"] == resp.headers[
        "x-cls-requestid"]
    ctx.db.dispose()


def test_json_types_are_not_coerced_and_ids_are_checked(server: ServerProcess) -> None:
    logset = v3_json(server, "CreateLogset", {"LogsetName": uuid.uuid4().hex})["LogsetId"]
    topic = v3_json(server, "CreateTopic", {"LogsetId": logset, "TopicName": "t"})["TopicId"]
    base = {"TopicId": topic, "Bucket": "b-1250000000", "Prefix": "p", "ShipperName": "s"}
    cases: list[tuple[dict[str, Any], str]] = [
        ({"Interval": "300"}, "InvalidParameter"),
        ({"Interval": True}, "InvalidParameter"),
        ({"FilenameMode": True}, "InvalidParameter"),
        ({"EndTime": -5}, "InvalidParameterValue"),
        ({"EndTime": int(time.time()) - 10}, "InvalidParameterValue"),  # no StartTime
        ({"Prefix": "a\u0000b"}, "InvalidParameterValue"),
        ({"Partition": "/../../x/"}, "InvalidParameterValue"),
    ]
    for override, code in cases:
        error = v3_json(server, "CreateShipper", {**base, **override})["Error"]
        assert error["Code"] == code, (override, error)
    error = v3_json(server, "CreateTopic", {"LogsetId": logset, "TopicName": "long",
                                            "TopicId": "T" * 70})["Error"]
    assert error["Code"] == "InvalidParameterValue"
    resp = signed_post(server, "DescribeShippers", b'{"Offset": 9223372036854775808}')
    assert resp.json()["Response"]["Error"]["Code"] in ("InvalidParameter",
                                                        "InvalidParameterValue")

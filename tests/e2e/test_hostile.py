"""Hostile input against a real server: values that must be refused in the API's own format
and leave nothing behind."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.helpers.server import ApiError, LegacyClient, ServerProcess
from tests.helpers.v3 import v3_json

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

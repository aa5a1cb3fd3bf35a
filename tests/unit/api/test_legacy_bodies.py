"""Legacy bodies: strict JSON types, unknown fields refused, errors in the legacy words."""

from __future__ import annotations

from typing import Any

import pytest

from cls_shipper.api.legacy import bodies
from cls_shipper.api.legacy.requests import Body, given, parse
from cls_shipper.errors import Kinds, ServiceError

SHIPPER = {"topic_id": "t", "bucket": "b-1", "prefix": "p", "shipper_name": "n"}


def refusal(model: type[Body], data: Any) -> tuple[str, str]:
    with pytest.raises(ServiceError) as err:
        parse(model, data)
    return err.value.kind.v3_code, err.value.message


INVALID, MISSING = Kinds.INVALID_PARAM.v3_code, Kinds.MISSING_PARAM.v3_code


@pytest.mark.parametrize(("data", "expected"), [
    ([1], (INVALID, "the body must be a JSON object")),
    ({**SHIPPER, "zz": 1, "aa": 2}, (INVALID, "unknown field(s) in the body: aa, zz")),
    ({"bucket": "b-1", "prefix": "p", "shipper_name": "n"},
     (MISSING, "missing required parameter 'topic_id'")),
    ({**SHIPPER, "topic_id": 5}, (INVALID, "topic_id must be of type str")),
    ({**SHIPPER, "compress": "gzip"}, (INVALID, "the compress object must be a JSON object")),
    ({**SHIPPER, "compress": None}, (INVALID, "the compress object must be a JSON object")),
    ({**SHIPPER, "content": {"format": "json", "json_info": {"x": 1}}},
     (INVALID, "unknown field(s) in the json_info object: x")),
    ({**SHIPPER, "filter_rules": [{"key": "k", "regex": "r"}]},
     (MISSING, "missing required parameter 'value'")),
    ({**SHIPPER, "filter_rules": "k"}, (INVALID, "filter_rules must be of type list")),
    ({**SHIPPER, "filter_rules": [1]}, (INVALID, "the filter rule must be a JSON object")),
    ({**SHIPPER, "content": {"format": "parquet", "parquet_info": {"parquet_key_info": [
        {"key_name": "a", "key_type": "int64", "key_non_existing_field": 0}]}}},
     (INVALID, "key_non_existing_field must be of type str")),
])
def test_new_shipper_refusals(data: Any, expected: tuple[str, str]) -> None:
    assert refusal(bodies.NewShipper, data) == expected


def test_types_are_strict() -> None:
    assert refusal(bodies.TaskRetry, {"shipper_id": "s", "task_id": "t",
                                      "reload_config": 1}) == \
        (INVALID, "reload_config must be of type bool")
    assert refusal(bodies.ShipperChanges, {"shipper_id": "s", "effective": "true"}) == \
        (INVALID, "effective must be of type bool")
    assert refusal(bodies.TaskRetry, {"shipper_id": 1, "task_id": "t"}) == \
        (INVALID, "shipper_id must be of type str")


def test_only_the_fields_a_client_gave_are_read() -> None:
    body = parse(bodies.ShipperChanges, {"shipper_id": "s", "interval": "300",
                                         "content": {"format": "json", "json_info": {}}})
    assert given(body).keys() == {"shipper_id", "interval", "content"}
    # values only the service judges pass as they came ("300" is refused there, by rule)
    assert given(body)["interval"] == "300"
    assert body.content.json_info.meta_fields == []

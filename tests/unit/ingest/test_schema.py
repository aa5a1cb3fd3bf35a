"""The one CLS wire schema (ingest/schema.py): its three views read the same bytes alike, and
the C extension takes its limits and tags from it (ingest/native.py)."""

from __future__ import annotations

import importlib.util
from types import ModuleType
from typing import Any

import pytest

from cls_shipper.ingest import cls_pb, schema
from cls_shipper.ingest.native import wire
from cls_shipper.timefmt import MS_HIGH, MS_LOW, normalise_log_time_ms


def sample() -> bytes:
    group_list = cls_pb.LogGroupList()
    group = group_list.logGroupList.add(filename="f", source="s", hostname="h", contextFlow="c")
    log = group.logs.add(time=1_717_200_000_123, collectTime=7)
    log.contents.add(key="a", value="1")
    log.contents.add(key="a", value="2")
    group.logTags.add(key="t", value="v")
    return bytes(group_list.SerializeToString())


def test_the_three_views_read_the_same_bytes() -> None:
    raw = sample()
    checked = schema.message_classes("checked")["LogGroupList"].FromString(raw)
    read = schema.message_classes("read")["LogGroupList"].FromString(raw)
    sdk = cls_pb.LogGroupList.FromString(raw)
    for message in (checked, sdk):
        group = message.logGroupList[0]
        assert (group.filename, group.source, group.hostname, group.contextFlow) == (
            "f", "s", "h", "c")
        assert [(c.key, c.value) for c in group.logs[0].contents] == [("a", "1"), ("a", "2")]
        assert group.logs[0].collectTime == 7
    group = read.logGroupList[0]
    assert dict(group.logs[0].contents) == {"a": "2"}  # a map: the last value wins
    assert dict(group.logTags) == {"t": "v"}
    assert (group.filename, group.logs[0].time) == ("f", 1_717_200_000_123)
    assert not hasattr(group, "contextFlow")  # not shipped: upb skips it


def test_views_follow_the_table() -> None:
    checked = schema.message_classes("checked")["Log"].DESCRIPTOR
    sdk = cls_pb.Log.DESCRIPTOR
    assert sdk.fields_by_name["time"].is_required
    assert not checked.fields_by_name["time"].is_required  # proto3: lenient like the SDKs
    read = schema.message_classes("read")
    assert "Log.Content" not in read and "LogTag" not in read
    assert read["Log"].DESCRIPTOR.fields_by_name["contents"].message_type.GetOptions().map_entry


def test_wire_tags() -> None:
    tags = schema.wire_tags()
    assert tags["Log.time"] == 1 << 3 | 0
    assert tags["Log.Content.key"] == tags["LogTag.key"] == 1 << 3 | 2
    assert tags["LogGroup.hostname"] == 6 << 3 | 2
    assert len(tags) == sum(len(fields) for fields in schema.MESSAGES.values())


# --- configuring the C extension ------------------------------------------------------------


@pytest.fixture
def fresh() -> ModuleType:
    """A new, unconfigured instance of the extension (each module object has its own state)."""
    if wire is None:
        pytest.skip("cls_shipper._wire is not built")
    spec = importlib.util.spec_from_file_location("cls_shipper._wire", wire.__file__)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module is not wire
    return module


def settings(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "max_logs_per_group": schema.MAX_LOGS_PER_GROUP,
        "max_value_bytes": schema.MAX_VALUE_BYTES,
        "max_group_value_bytes": schema.MAX_GROUP_VALUE_BYTES,
        "allowed_underscore_keys": sorted(schema.ALLOWED_UNDERSCORE_KEYS),
        "time_ms_low": MS_LOW, "time_ms_high": MS_HIGH, "log_time_min": schema.LOG_TIME_MIN,
        "log_time_max": schema.LOG_TIME_MAX, "tags": schema.wire_tags(),
    }
    values.update(changes)
    return values


def test_walks_refuse_before_configure(fresh: ModuleType) -> None:
    with pytest.raises(RuntimeError, match="not configured"):
        fresh.scan_log_group_list(sample())
    with pytest.raises(RuntimeError, match="not configured"):
        fresh.encode_json_lines(sample(), "ip", [], False)
    fresh.configure(**settings())
    assert fresh.scan_log_group_list(sample()) == (1, 1)
    with pytest.raises(RuntimeError, match="configured already"):
        fresh.configure(**settings())


def test_the_shared_instance_is_configured() -> None:
    if wire is None:
        pytest.skip("cls_shipper._wire is not built")
    assert wire.scan_log_group_list(sample()) == (1, 1)


@pytest.mark.parametrize("tags, message", [
    ({**schema.wire_tags(), "Log.time": 2 << 3}, r"reads Log.time as tag 8 .* has 16"),
    ({**schema.wire_tags(), "LogGroup.extra": 7 << 3 | 2}, "has 15 fields, _wire.c knows 14"),
    ({k: v for k, v in schema.wire_tags().items() if k != "LogTag.value"},
     "reads LogTag.value as tag 18 .* has None"),
])
def test_configure_refuses_another_schema(fresh: ModuleType, tags: dict[str, int],
                                          message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fresh.configure(**settings(tags=tags))
    with pytest.raises(RuntimeError, match="not configured"):  # a refused call sets nothing
        fresh.scan_log_group_list(sample())


def test_configure_refuses_nonsense(fresh: ModuleType) -> None:
    with pytest.raises(ValueError):
        fresh.configure(**settings(max_value_bytes=0))
    with pytest.raises(ValueError):
        fresh.configure(**settings(time_ms_low=MS_HIGH))
    with pytest.raises(ValueError, match="log_time_min"):  # negative times are never accepted
        fresh.configure(**settings(log_time_min=-1))
    with pytest.raises(ValueError, match="log_time_min"):
        fresh.configure(**settings(log_time_min=10, log_time_max=9))
    with pytest.raises(TypeError):
        fresh.configure(**settings(allowed_underscore_keys=[b"__CONTENT__"]))


def test_every_accepted_time_ships_as_64_bit_milliseconds() -> None:
    """The accepted range keeps every value's normalised ms within int64 (JSON lines'
    integers, Parquet int64): its extremes and the unit boundaries inside it."""
    inside = [t for t in (MS_LOW - 1, MS_LOW, MS_HIGH - 1, MS_HIGH)
              if schema.LOG_TIME_MIN <= t <= schema.LOG_TIME_MAX]
    for value in (schema.LOG_TIME_MIN, schema.LOG_TIME_MAX, *inside):
        assert 0 <= normalise_log_time_ms(value) < 1 << 63


def body(contents: list[tuple[str, str]], logs: int = 1, time: int = 1_717_200_000_123
         ) -> bytes:
    group_list = cls_pb.LogGroupList()
    group = group_list.logGroupList.add()
    for _ in range(logs):
        log = group.logs.add(time=time)
        for key, value in contents:
            log.contents.add(key=key, value=value)
    return bytes(group_list.SerializeToString())


def test_the_walks_use_the_configured_values(fresh: ModuleType) -> None:
    fresh.configure(**settings(max_logs_per_group=2, max_value_bytes=3, max_group_value_bytes=5,
                               allowed_underscore_keys=["_ok", "__x"], time_ms_low=10,
                               time_ms_high=1000))

    def verdict(raw: bytes) -> Any:
        try:
            return fresh.scan_log_group_list(raw)
        except fresh.ScanError as exc:
            return exc.args

    assert verdict(body([("a", "1")], logs=3)) == (
        "LogSizeExceed", "log group 0 holds 3 logs; at most 2 are allowed")
    assert verdict(body([("a", "1234")])) == (
        "LogSizeExceed", "a value of key 'a' in log group 0 is 4 bytes; at most 3 are allowed")
    assert verdict(body([("a", "123"), ("b", "123")])) == (
        "LogSizeExceed", "log group 0 holds 6 bytes of values; at most 5 are allowed")
    assert verdict(body([("_ok", "1"), ("__x", "1")])) == (1, 1)
    assert verdict(body([("__CONTENT__", "1")]))[0] == "InvalidContent"
    times = {t: fresh.encode_json_lines(body([("a", "1")], time=t), "", ["__TIMESTAMP__"],
                                        False)[0] for t in (9, 10, 999, 1000, 12345)}
    assert times == {9: b'{"__TIMESTAMP__":9000,"a":"1"}\n', 10: b'{"__TIMESTAMP__":10,"a":"1"}\n',
                     999: b'{"__TIMESTAMP__":999,"a":"1"}\n',
                     1000: b'{"__TIMESTAMP__":1,"a":"1"}\n',
                     12345: b'{"__TIMESTAMP__":12,"a":"1"}\n'}

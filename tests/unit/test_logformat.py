"""The log formatters: what one line holds in each format, whatever is logged."""

from __future__ import annotations

import logging
import sys

import orjson
import pytest

from cls_shipper import logctx
from cls_shipper.errors import SettingsError
from cls_shipper.logformat import MAX_FIELD_CHARS, JsonFormatter, TextFormatter
from cls_shipper.settings import load_settings


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("broken\nacross lines")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("cls_shipper.test", logging.ERROR, __file__, 1, message, args,
                             exc_info)


def test_json_line_holds_the_fields_and_the_exception_on_one_line() -> None:
    logctx.set_node("host:1/w0")
    with logctx.bound(shipper_id="s1", task_id="t1", topic_id="tp"):
        line = JsonFormatter().format(_record("task %s failed", "t1", exc=True))
    assert "\n" not in line
    doc = orjson.loads(line)
    assert doc["time"].endswith("Z") and "T" in doc["time"]
    assert (doc["level"], doc["logger"], doc["message"]) == ("error", "cls_shipper.test",
                                                             "task t1 failed")
    assert (doc["node"], doc["shipper_id"], doc["task_id"], doc["topic_id"]) == (
        "host:1/w0", "s1", "t1", "tp")
    assert "request_id" not in doc
    assert "ValueError: broken\nacross lines" in doc["exception"]
    # Outside the block the fields are gone.
    assert "task_id" not in orjson.loads(JsonFormatter().format(_record("later")))


def test_a_huge_message_is_cut() -> None:
    doc = orjson.loads(JsonFormatter().format(_record("x" * (MAX_FIELD_CHARS * 4))))
    assert len(doc["message"]) < MAX_FIELD_CHARS + 100
    assert doc["message"].endswith("characters cut]")


def test_text_line_names_the_request() -> None:
    logctx.set_node("host:2")
    with logctx.bound(request_id="r-1"):
        line = TextFormatter().format(_record("hello %s", "there"))
    assert line.endswith(" ERROR cls_shipper.test [host:2 request_id=r-1]: hello there")


def test_log_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLS_SHIPPER_LOG_FORMAT", "JSON")
    monkeypatch.setenv("CLS_SHIPPER_ACCESS_LOG", "true")
    settings = load_settings()
    assert (settings.log_format, settings.access_log) == ("json", True)
    monkeypatch.setenv("CLS_SHIPPER_LOG_FORMAT", "xml")
    with pytest.raises(SettingsError, match="log_format"):
        load_settings()


def test_tls_files_need_a_certificate() -> None:
    with pytest.raises(SettingsError, match="ssl_certfile"):
        load_settings(ssl_keyfile="key.pem")

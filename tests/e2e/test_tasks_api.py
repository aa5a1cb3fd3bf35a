"""GET /tasks, GET /task and PUT /task over HTTP. Tasks are cut and failed with the engine's
own queue functions on the server's database, so the ledger holds real rows."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from cls_shipper.errors import SinkError
from cls_shipper.shipping import ledger
from cls_shipper.store import open_database
from cls_shipper.timefmt import now_ms
from tests.helpers.server import ApiError, LegacyClient, ServerProcess

ZONE = ZoneInfo("Asia/Shanghai")  # the server's default --timezone


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server without workers: its scheduler cuts windows, nothing ships them, so tasks stay
    where these tests put them."""
    proc = ServerProcess(tmp_path_factory.mktemp("tasks"),
                         args=["--min-interval", "1", "--workers", "0"]).start()
    yield proc
    proc.stop()


def legacy(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=ZONE).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture()
def shipper_with_tasks(client: LegacyClient, topic: str,
                       server: ServerProcess) -> tuple[str, list[dict[str, str]]]:
    shipper = client.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": "test-1250000001", "prefix": "t/",
        "shipper_name": "tasks", "interval": 1})["shipper_id"]
    db = open_database(server.db_url, run_migrations=False)
    try:
        time.sleep(2.1)
        ledger.seal_topics(db, now_ms())
        ledger.cut_windows(db, now_ms(), "Asia/Shanghai")
    finally:
        db.dispose()
    now = now_ms()
    listed = client.call("GET", "/tasks", {"shipper_id": shipper, "start_time": legacy(now - 3.6e6),
                                           "end_time": legacy(now + 3.6e6)})["tasks"]
    return shipper, listed


def test_tasks_documented_shape_and_contiguous_windows(
        shipper_with_tasks: tuple[str, list[dict[str, str]]], topic: str) -> None:
    shipper, listed = shipper_with_tasks
    assert len(listed) >= 2
    for task in listed:
        assert list(task) == ["task_id", "shipper_id", "topic_id", "range_start", "range_end",
                              "start_time", "end_time", "status", "message"]
        assert all(isinstance(v, str) for v in task.values())
        assert task["shipper_id"] == shipper and task["topic_id"] == topic
        assert task["status"] in ("wait", "running", "success", "failed")
    for before, after in itertools.pairwise(listed):
        assert before["range_end"] == after["range_start"]


def test_retry_rules(client: LegacyClient, server: ServerProcess,
                     shipper_with_tasks: tuple[str, list[dict[str, str]]]) -> None:
    shipper, listed = shipper_with_tasks
    waiting = listed[0]["task_id"]
    with pytest.raises(ApiError) as err:
        client.call("PUT", "/task", json={"shipper_id": shipper, "task_id": waiting})
    assert (err.value.status, err.value.code) == (403, "TaskReadOnly")

    # Fail one task the way a worker does when the bucket is missing.
    db = open_database(server.db_url, run_migrations=False)
    try:
        claimed = ledger.claim(db, "test-worker", now_ms() + 10_000, 30_000,
                              exclude_shippers=frozenset())
        while claimed is not None and claimed.shipper_id != shipper:
            claimed = ledger.claim(db, "test-worker", now_ms() + 10_000, 30_000,
                                  exclude_shippers=frozenset({claimed.shipper_id}))
        assert claimed is not None
        policy = ledger.RetryPolicy(base_ms=1000, cap_ms=60_000, deadline_ms=86_400_000,
                                    max_attempts=5)
        status = ledger.fail(db, claimed, now_ms(), SinkError(
            "bucket_missing", "bucket 'x' does not exist (10001)"), policy)
        assert status == "failed"
    finally:
        db.dispose()
    detail = client.call("GET", "/task", {"shipper_id": shipper, "task_id": claimed.task_id})
    assert detail["status"] == "failed" and "does not exist" in detail["message"]
    assert detail["attempts"] == 1 and detail["end_time"] != ""
    blocked = client.call("GET", "/shipper", {"shipper_id": shipper})["blocked"]
    assert blocked["code"] == 10001 and "does not exist" in blocked["reason"]
    assert blocked["since"] and blocked["next_probe"]
    assert client.call("PUT", "/task", json={"shipper_id": shipper,
                                             "task_id": claimed.task_id}) is None
    # A retry says the destination was fixed: the shipper is no longer blocked.
    assert client.call("GET", "/shipper", {"shipper_id": shipper})["blocked"] is None
    detail = client.call("GET", "/task", {"shipper_id": shipper, "task_id": claimed.task_id})
    assert detail["status"] in ("wait", "running", "success")
    assert detail["attempts"] in (0, 1)


def test_task_errors(client: LegacyClient,
                     shipper_with_tasks: tuple[str, list[dict[str, str]]]) -> None:
    shipper, listed = shipper_with_tasks
    now = now_ms()
    window = {"start_time": legacy(now - 3.6e6), "end_time": legacy(now)}
    cases = [
        ("GET", "/tasks", {"shipper_id": "nope", **window}, None, 404, "ShipperNotExist"),
        ("GET", "/tasks", {"shipper_id": shipper, "start_time": legacy(now),
                           "end_time": legacy(now - 3.6e6)}, None, 400, "InvalidParam"),
        ("GET", "/tasks", {"shipper_id": shipper, "start_time": legacy(now - 4 * 86.4e6),
                           "end_time": legacy(now)}, None, 400, "InvalidParam"),
        ("GET", "/tasks", {"shipper_id": shipper, "start_time": "2026-13-01 00:00:00",
                           "end_time": legacy(now)}, None, 400, "InvalidParam"),
        ("GET", "/tasks", {"shipper_id": shipper, "end_time": legacy(now)}, None, 400,
         "InvalidParam"),
        ("GET", "/task", {"shipper_id": shipper, "task_id": "nope"}, None, 404, "TaskNotExist"),
        ("PUT", "/task", None, {"shipper_id": shipper, "task_id": "nope"}, 404, "TaskNotExist"),
        ("PUT", "/task", None, {"shipper_id": "nope", "task_id": listed[0]["task_id"]}, 404,
         "ShipperNotExist"),
        ("PUT", "/task", None, {"shipper_id": shipper}, 400, "InvalidParam"),
    ]
    for method, path, params, body, status, code in cases:
        with pytest.raises(ApiError) as err:
            client.call(method, path, params, body)
        assert (err.value.status, err.value.code) == (status, code), (path, params, body)


def test_query_filters_on_task_start_time(
        client: LegacyClient, shipper_with_tasks: tuple[str, list[dict[str, str]]]) -> None:
    shipper, listed = shipper_with_tasks
    first_start = listed[0]["start_time"]
    # A window that ends one second before the earliest start time holds none of them.
    start_ms = datetime.strptime(first_start, "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=ZONE).timestamp() * 1000
    before = client.call("GET", "/tasks", {"shipper_id": shipper,
                                           "start_time": legacy(start_ms - 3.6e6),
                                           "end_time": legacy(start_ms - 1000)})["tasks"]
    assert before == []

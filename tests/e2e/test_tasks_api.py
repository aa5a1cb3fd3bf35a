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
from cls_shipper.model.objects import ObjectKind, ShippedObject
from cls_shipper.shipping import ledger
from cls_shipper.store import Database, open_database
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


def _claim_of(db: Database, shipper: str) -> ledger.Claimed:
    """Claim the next due task of `shipper`, leaving other shippers' tasks alone."""
    skip: frozenset[str] = frozenset()
    while (claimed := ledger.claim(db, "test-worker", now_ms() + 10_000, 30_000,
                                   exclude_shippers=skip)) is not None:
        if claimed.shipper_id == shipper:
            return claimed
        ledger.release(db, claimed, now_ms())
        skip |= {claimed.shipper_id}
    raise AssertionError(f"no task of {shipper} is due")


def _shipped(name: str, records: int, kind: ObjectKind = "part") -> ShippedObject:
    return ShippedObject(key=f"t/{name}", size=10, md5="0" * 32, sha256="0" * 64,
                         records=records, raw_bytes=20, kind=kind)


COUNTERS = ["records", "records_filtered_out", "records_rejected", "bytes_in", "bytes_out",
            "object_count", "attempts"]


def test_a_detailed_listing_shows_what_get_task_counts(
        client: LegacyClient, server: ServerProcess,
        shipper_with_tasks: tuple[str, list[dict[str, str]]]) -> None:
    shipper, _listed = shipper_with_tasks
    db = open_database(server.db_url, run_migrations=False)
    try:
        shipped = _claim_of(db, shipper)
        assert ledger.succeed(db, shipped, now_ms(), ledger.Outcome(
            records=7, records_filtered=2, bytes_in=300, bytes_out=120, first_offset=0,
            last_offset=9, objects=[_shipped("a", 4), _shipped("b", 3),
                                    _shipped("_rejects", 1, "rejects")], records_rejected=1))
        failed = _claim_of(db, shipper)
        assert ledger.fail(db, failed, now_ms(), SinkError("bucket_missing", "no bucket"),
                           ledger.RetryPolicy(base_ms=1000, cap_ms=60_000,
                                              deadline_ms=86_400_000, max_attempts=5)) == "failed"
    finally:
        db.dispose()
    now = now_ms()
    params = {"shipper_id": shipper, "start_time": legacy(now - 3.6e6),
              "end_time": legacy(now + 3.6e6)}
    plain = client.raw("GET", "/tasks", params)
    # Without the parameter (or with it false) the answer is the CLS fields, as before.
    assert plain.status_code == 200
    assert client.raw("GET", "/tasks", {**params, "detail": "false"}).content == plain.content
    listed = plain.json()["tasks"]
    assert {tuple(task) for task in listed} == {(
        "task_id", "shipper_id", "topic_id", "range_start", "range_end", "start_time",
        "end_time", "status", "message")}
    for _ in range(2):  # read from the ledger, then the finished ones from what is held
        detailed = client.call("GET", "/tasks", {**params, "detail": "true"})["tasks"]
        assert [{k: t[k] for k in listed[0]} for t in detailed] == listed
        for task in detailed:
            assert list(task) == [*listed[0], *COUNTERS]
            one = client.call("GET", "/task", {"shipper_id": shipper,
                                               "task_id": task["task_id"]})
            assert {k: task[k] for k in COUNTERS} == {
                **{k: one[k] for k in COUNTERS if k != "object_count"},
                "object_count": len(one["objects"])}
        by_id = {task["task_id"]: task for task in detailed}
        assert {k: by_id[shipped.task_id][k] for k in COUNTERS} == {
            "records": 7, "records_filtered_out": 2, "records_rejected": 1, "bytes_in": 300,
            "bytes_out": 120, "object_count": 3, "attempts": 1}
        assert (by_id[failed.task_id]["status"], by_id[failed.task_id]["attempts"],
                by_id[failed.task_id]["object_count"]) == ("failed", 1, 0)
    for bad in ("yes", "1", "TRUE", ""):
        with pytest.raises(ApiError) as err:
            client.call("GET", "/tasks", {**params, "detail": bad})
        assert (err.value.status, err.value.code) == (400, "InvalidParam"), bad
        assert "detail must be true or false" in err.value.body["errormessage"]

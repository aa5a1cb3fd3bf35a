"""Task listings past one answer: GET /tasks pages with `offset`/`limit` (an extension old
clients never send), every answer is bounded, and API 3.0, which has no paging parameters,
answers the first page. The ledger is filled with the engine's own functions on the server's
database, so the listing reads real rows."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cls_shipper.cli import app
from cls_shipper.shipping import ledger
from cls_shipper.store import open_database
from cls_shipper.store.schema import shippers
from cls_shipper.timefmt import now_ms
from tests.helpers.server import SECRET_ID, SECRET_KEY, ApiError, LegacyClient, ServerProcess
from tests.helpers.v3 import v3_json

ZONE = ZoneInfo("Asia/Shanghai")  # the server's default --timezone
MAX_LISTED = 1000  # the documented bound of one answer
WINDOWS = 1234  # more than one answer holds


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server without workers: nothing ships the tasks, so they stay as the tests put
    them."""
    proc = ServerProcess(tmp_path_factory.mktemp("paging"),
                         args=["--min-interval", "1", "--workers", "0"]).start()
    yield proc
    proc.stop()


def legacy(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=ZONE).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture(scope="module")
def many(server: ServerProcess) -> tuple[str, dict[str, str]]:
    """A one-second shipper with WINDOWS tasks queued now; its id and a range holding them."""
    client = LegacyClient(server.base_url)
    logset = client.call("POST", "/logset", json={"logset_name": "paging",
                                                  "period": 7})["logset_id"]
    topic = client.call("POST", "/topic", json={"logset_id": logset,
                                                "topic_name": "app"})["topic_id"]
    shipper = client.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": "test-1250000001", "prefix": "p/",
        "shipper_name": "paging", "interval": 1})["shipper_id"]
    db = open_database(server.db_url, run_migrations=False)
    try:
        now = now_ms()
        # Sealed ahead of time so that WINDOWS windows close at once (the server's scheduler
        # cuts some too: every window is cut once whoever cuts it).
        ledger.seal_topics(db, now + (WINDOWS + 5) * 1000)
        while ledger.cut_windows(db, now, "Asia/Shanghai"):
            pass
    finally:
        db.dispose()
    return shipper, {"shipper_id": shipper, "start_time": legacy(now - 3_600_000),
                     "end_time": legacy(now + 3_600_000)}


def page(client: LegacyClient, params: dict[str, str]) -> tuple[list[dict[str, Any]],
                                                               str | None]:
    resp = client.raw("GET", "/tasks", params)
    assert resp.status_code == 200, resp.text
    tasks: list[dict[str, Any]] = resp.json()["tasks"]
    return tasks, resp.headers.get("x-cls-next-offset")


def every_page(client: LegacyClient, params: dict[str, str], limit: int) -> list[Any]:
    found: list[dict[str, Any]] = []
    offset: str | None = "0"
    while offset is not None:
        tasks, offset = page(client, {**params, "offset": offset, "limit": str(limit)})
        assert len(tasks) <= limit
        assert offset is None or len(tasks) == limit  # only a full page has a next one
        found.extend(tasks)
    return found


def test_pages_hold_every_task_once_in_window_order(
        client: LegacyClient, many: tuple[str, dict[str, str]]) -> None:
    _shipper, params = many
    paged = every_page(client, params, 97)
    ids = [task["task_id"] for task in paged]
    assert len(ids) >= WINDOWS
    assert len(set(ids)) == len(ids)  # none twice
    for before, after in itertools.pairwise(paged):
        assert before["range_end"] <= after["range_start"]  # by window
    # The same pages again, and other page sizes, say the same: the order is stable.
    assert every_page(client, params, 97) == paged
    assert every_page(client, params, MAX_LISTED) == paged
    singles = [page(client, {**params, "offset": str(n), "limit": "1"})[0] for n in range(5)]
    assert singles == [[task] for task in paged[:5]]


def test_without_paging_an_answer_is_the_first_bounded_page(
        client: LegacyClient, server: ServerProcess, many: tuple[str, dict[str, str]]) -> None:
    shipper, params = many
    first, next_offset = page(client, params)  # as an old client asks
    assert len(first) == MAX_LISTED and next_offset == str(MAX_LISTED)
    rest, last = page(client, {**params, "offset": next_offset})
    assert last is None and len(first) + len(rest) == len(every_page(client, params, 500))
    # API 3.0 has no paging parameters: the same first page, in its own field names.
    now = now_ms()
    answer = v3_json(server, "DescribeShipperTasks", {
        "ShipperId": shipper, "StartTime": now - 3_600_000, "EndTime": now + 3_600_000})
    assert [task["TaskId"] for task in answer["Tasks"]] == [task["task_id"] for task in first]


def test_the_cli_lists_past_one_page(client: LegacyClient, server: ServerProcess,
                                    many: tuple[str, dict[str, str]]) -> None:
    shipper, params = many
    before = every_page(client, {**params, "detail": "true"}, MAX_LISTED)
    result = CliRunner().invoke(app, ["tasks", "--shipper-id", shipper, "--json",
                                      "--endpoint", server.base_url],
                                env={"CLS_SHIPPER_SECRET_ID": SECRET_ID,
                                     "CLS_SHIPPER_SECRET_KEY": SECRET_KEY,
                                     "CLS_SHIPPER_TIMEZONE": ""})
    assert result.exit_code == 0, result.output
    shown = orjson.loads(result.stdout)
    ids = [task["task_id"] for task in shown]
    assert len(ids) > MAX_LISTED and len(set(ids)) == len(ids)
    # The scheduler keeps cutting windows meanwhile: every task listed before is there.
    assert {task["task_id"] for task in before} <= set(ids)
    assert {"records", "records_rejected", "object_count", "attempts"} <= set(shown[0])


def test_paging_bounds_are_refused_in_the_legacy_error_form(
        client: LegacyClient, many: tuple[str, dict[str, str]]) -> None:
    _shipper, params = many
    for bad in ({"limit": "0"}, {"limit": str(MAX_LISTED + 1)}, {"limit": "ten"},
                {"limit": "-1"}, {"offset": "-1"}, {"offset": str((1 << 31) + 1)},
                {"offset": "1.5"}):
        with pytest.raises(ApiError) as err:
            client.call("GET", "/tasks", {**params, **bad})
        assert (err.value.status, err.value.code) == (400, "InvalidParam"), bad
        assert next(iter(bad)) in err.value.body["errormessage"]


def test_an_offset_past_the_end_is_an_empty_last_page(
        client: LegacyClient, many: tuple[str, dict[str, str]]) -> None:
    _shipper, params = many
    assert page(client, {**params, "offset": "100000"}) == ([], None)


def test_a_listing_follows_the_ledger(client: LegacyClient, server: ServerProcess,
                                      topic: str) -> None:
    """What a listing holds on to (finished tasks, rendered answers) never hides a change."""
    shipper = client.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": "test-1250000001", "prefix": "f/",
        "shipper_name": "follow", "interval": 1})["shipper_id"]
    now = now_ms()
    params = {"shipper_id": shipper, "start_time": legacy(now - 3_600_000),
              "end_time": legacy(now + 3_600_000)}
    db = open_database(server.db_url, run_migrations=False)
    try:
        ledger.seal_topics(db, now + 3000)
        ledger.cut_windows(db, now, "Asia/Shanghai")
        before, _ = page(client, params)
        assert before and {task["status"] for task in before} <= {"wait", "running"}
        with db.read() as conn:
            others = frozenset(conn.execute(select(shippers.c.shipper_id).where(
                shippers.c.shipper_id != shipper)).scalars())
        claimed = ledger.claim(db, "paging-test", now_ms(), 60_000, exclude_shippers=others)
        assert claimed is not None and claimed.shipper_id == shipper
        listed, _ = page(client, params)
        assert {t["task_id"]: t["status"] for t in listed}[claimed.task_id] == "running"
        assert ledger.succeed(db, claimed, now_ms(), ledger.Outcome(0, 0, 0, 0, None, None, []))
        for _ in range(2):  # read from the ledger, then from what the server holds
            listed, _ = page(client, params)
            done = {t["task_id"]: t for t in listed}[claimed.task_id]
            assert done["status"] == "success" and done["end_time"]
    finally:
        db.dispose()

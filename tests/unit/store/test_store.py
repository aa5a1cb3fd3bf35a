"""The service layer and the task queue on both backends (SQLite and PostgreSQL): the same
schema, migrations and queries."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from cls_shipper.cli.status import read_status
from cls_shipper.errors import ServiceError
from cls_shipper.model.objects import ShippedObject
from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.model.task import RunOutcome, Task, TaskStatus
from cls_shipper.service import Context, logsets, shippers, tasks, topics
from cls_shipper.service.shipper_rules import defaults
from cls_shipper.settings import Settings
from cls_shipper.shipping import ledger
from cls_shipper.store import open_database, schema
from cls_shipper.store.schema import topics as topics_table
from cls_shipper.timefmt import now_ms


@pytest.fixture()
def ctx(database_url: str) -> Context:
    db = open_database(database_url)
    open_database(database_url)  # migrations are idempotent
    # PostgreSQL's database is the session's: start each test from empty tables.
    with db.begin() as conn:
        for table in reversed(schema.metadata.sorted_tables):
            if table.name != "access_keys":
                conn.execute(table.delete())
    return Context(db, Settings(min_interval=1, quota_logsets=1000, check_destination=False))


def _shipper(ctx: Context, interval: int = 1) -> tuple[str, str]:
    logset = logsets.create(ctx, f"ls-{id(ctx)}-{interval}", 7)
    topic = topics.create(ctx, logset, "t")
    config = ShipperConfig(**{**defaults("legacy"), "topic_id": topic, "bucket": "b-1",
                              "prefix": "p/", "shipper_name": "s", "interval": interval})
    return topic, shippers.create(ctx, config, "legacy")


def test_crud_and_errors(ctx: Context) -> None:
    topic, shipper_id = _shipper(ctx)
    got = shippers.get(ctx, shipper_id)
    assert got.config.topic_id == topic and got.effective
    shippers.modify(ctx, shipper_id, "legacy", {"prefix": "q/"}, effective=False)
    assert shippers.get(ctx, shipper_id).config.prefix == "q/"
    found, total = shippers.search(ctx, shippers.ShipperQuery(topic_ids=[topic]))
    assert total == 1 and found[0].shipper_id == shipper_id
    with pytest.raises(ServiceError) as err:
        shippers.modify(ctx, shipper_id, "legacy", {"interval": 0})
    assert err.value.kind.legacy_code == "InvalidParam"
    with pytest.raises(ServiceError) as err:
        topics.delete_topic(ctx, topic)
    assert err.value.kind.legacy_code == "NotAllowed"
    shippers.delete_shipper(ctx, shipper_id)
    topics.delete_topic(ctx, topic)


def test_windows_claim_lease_and_fencing(ctx: Context) -> None:
    topic, shipper_id = _shipper(ctx, interval=10)
    start = shippers.get(ctx, shipper_id).progress.next_window_ms
    now = start + 35_000
    ledger.seal_topics(ctx.db, now)
    assert ledger.cut_windows(ctx.db, now, "UTC") == 3
    assert ledger.cut_windows(ctx.db, now, "UTC") == 0  # never twice
    with ctx.db.read() as conn:
        sealed = conn.execute(select(topics_table.c.sealed_ms)
                              .where(topics_table.c.topic_id == topic)).scalar_one()
    assert sealed == now
    listed = tasks.list_tasks(ctx, shipper_id, now - 60_000, now + 60_000, now=now)
    assert [(t.range_start_ms - start, t.range_end_ms - start) for t in listed] == [
        (0, 10_000), (10_000, 20_000), (20_000, 30_000)]

    first = ledger.claim(ctx.db, "w1", now, lease_ms=1_000)
    assert first is not None and first.range_start_ms == start
    # While the lease holds, another worker gets the next task, not this one.
    second = ledger.claim(ctx.db, "w2", now, lease_ms=1_000)
    assert second is not None and second.task_id != first.task_id
    # After it expires, the task is taken over; the old owner can no longer finish it.
    takeover = ledger.claim(ctx.db, "w3", now + 5_000, lease_ms=1_000)
    assert takeover is not None and takeover.task_id == first.task_id
    outcome = ledger.Outcome(1, 0, 10, 5, 0, 0, [])
    assert not ledger.succeed(ctx.db, first, now + 5_100, outcome)
    assert ledger.succeed(ctx.db, takeover, now + 5_200, outcome)
    assert tasks.get_task(ctx, shipper_id, first.task_id).status == "success"

    # Transient errors back off, then fail for good; a retry request re-queues.
    assert ledger.fail(ctx.db, second, now, "endpoint unreachable", transient=True,
                      max_attempts=2, retry_base_ms=1_000) == "wait"
    third = ledger.claim(ctx.db, "w2", now + 500, 60_000)
    assert third is not None and third.range_start_ms == start + 20_000
    assert ledger.claim(ctx.db, "w2", now + 500, 60_000) is None  # second is backing off
    again = ledger.claim(ctx.db, "w2", now + 1_500, 60_000)
    assert again is not None and again.task_id == second.task_id and again.attempts == 2
    assert ledger.fail(ctx.db, again, now + 1_600, "endpoint unreachable", transient=True,
                      max_attempts=2, retry_base_ms=1_000) == "failed"
    assert tasks.get_task(ctx, shipper_id, second.task_id).status == "failed"


def test_retry_only_failed(ctx: Context) -> None:
    _, shipper_id = _shipper(ctx, interval=5)
    start = shippers.get(ctx, shipper_id).progress.next_window_ms
    ledger.seal_topics(ctx.db, start + 6_000)
    ledger.cut_windows(ctx.db, start + 6_000, "UTC")
    task = ledger.claim(ctx.db, "w", start + 6_000, 10_000)
    assert task is not None
    with pytest.raises(ServiceError) as err:
        tasks.retry(ctx, shipper_id, task.task_id)
    assert err.value.kind.legacy_code == "TaskReadOnly"
    assert ledger.fail(ctx.db, task, start + 7_000, "access denied (10002)", transient=False,
                      max_attempts=5, retry_base_ms=1_000) == "failed"
    tasks.retry(ctx, shipper_id, task.task_id)
    retried = tasks.get_task(ctx, shipper_id, task.task_id)
    assert retried.status == "wait" and retried.attempts == 0


def test_logset_and_topic_search(ctx: Context) -> None:
    from cls_shipper.service.matching import TagFilter

    web = logsets.create(ctx, "web-prod", 7, tags=[{"Key": "team", "Value": "edge"}])
    db = logsets.create(ctx, "db-prod", 7, tags=[{"Key": "team", "Value": "data"}])
    assert [s.logset_id for s in logsets.search(ctx, names=["prod"])] == [web, db]
    assert [s.logset_id for s in logsets.search(ctx, names=["prod"], exact_names=True)] == []
    assert [s.logset_id for s in logsets.search(
        ctx, tags=TagFilter(values={"team": ["data", "ops"]}))] == [db]
    assert logsets.search(ctx, tags=TagFilter(keys=["owner"])) == []
    nginx = topics.create(ctx, web, "nginx")
    topics.create(ctx, db, "nginx-slow")
    found = topics.search(ctx, topics.TopicQuery(names=["nginx"], exact_names=True))
    assert [(t.topic_id, name) for t, name in found] == [(nginx, "web-prod")]
    assert len(topics.search(ctx, topics.TopicQuery(names=["nginx"]))) == 2
    assert [t.topic_id for t, _ in topics.search(
        ctx, topics.TopicQuery(logset_names=["web"]))] == [nginx]


def test_retention_never_expires_records_a_shipper_still_has_to_ship(ctx: Context) -> None:
    from cls_shipper.store import chunks as logs

    logset = logsets.create(ctx, "short-retention", 1)  # one day
    topic = topics.create(ctx, logset, "t")
    config = ShipperConfig(**{**defaults("legacy"), "topic_id": topic, "bucket": "b-1",
                              "prefix": "p/", "shipper_name": "s", "interval": 1})
    shipper_id = shippers.create(ctx, config, "legacy")
    appended = logs.append_chunks(ctx.db, [logs.NewChunk(topic, 5, "none", 1, "ip", b"x")])[0]
    assert isinstance(appended, logs.Appended)
    later = appended.ingest_ms + 2_000
    ledger.seal_topics(ctx.db, later)
    ledger.cut_windows(ctx.db, later, "UTC")
    task = ledger.claim(ctx.db, "w", later, 60_000)
    while task is not None and task.range_end_ms <= appended.ingest_ms:
        ledger.succeed(ctx.db, task, later, ledger.Outcome(0, 0, 0, 0, None, None, []))
        task = ledger.claim(ctx.db, "w", later, 60_000)
    assert task is not None and task.range_start_ms <= appended.ingest_ms < task.range_end_ms
    ledger.fail(ctx.db, task, later, "bucket missing (10001)", transient=False, max_attempts=5,
               retry_base_ms=1000)
    two_days_later = later + 2 * 86_400_000
    # The window failed: its records outlive the retention until it ships.
    assert logs.expire_chunks(ctx.db, two_days_later) == 0
    assert len(list(logs.read_window(ctx.db, topic, 0, 1 << 62))) == 1
    tasks.retry(ctx, shipper_id, task.task_id)
    again = ledger.claim(ctx.db, "w", two_days_later, 60_000)
    assert again is not None and again.task_id == task.task_id
    ledger.succeed(ctx.db, again, two_days_later, ledger.Outcome(5, 0, 1, 1, 0, 4, []))
    # Switched off, the shipper's next windows still hold what they will cover...
    shippers.modify(ctx, shipper_id, "legacy", {}, effective=False)
    logs.append_chunks(ctx.db, [logs.NewChunk(topic, 1, "none", 1, "ip", b"y")])
    assert logs.expire_chunks(ctx.db, two_days_later + 3 * 86_400_000) == 1  # only the shipped
    assert len(list(logs.read_window(ctx.db, topic, 0, 1 << 62))) == 1
    # ...and once the shipper is gone, retention applies again.
    shippers.delete_shipper(ctx, shipper_id)
    assert logs.expire_chunks(ctx.db, two_days_later + 3 * 86_400_000) == 1


def test_a_shipper_created_on_a_fast_clock_still_covers_later_uploads(
        ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    from cls_shipper.service import shippers as shippers_module
    from cls_shipper.store import chunks as logs
    from cls_shipper.timefmt import now_ms

    ahead = now_ms() + 5_000
    monkeypatch.setattr(shippers_module, "now_ms", lambda: ahead)
    topic, shipper_id = _shipper(ctx, interval=1)
    first_window = shippers.get(ctx, shipper_id).progress.next_window_ms
    # An upload through a node with the right clock, after the create returned:
    appended = logs.append_chunks(ctx.db, [logs.NewChunk(topic, 1, "none", 1, "ip", b"x")])[0]
    assert isinstance(appended, logs.Appended) and appended.ingest_ms >= first_window


def test_a_window_that_keeps_killing_its_worker_ends_failed(ctx: Context) -> None:
    _, shipper_id = _shipper(ctx, interval=5)
    start = shippers.get(ctx, shipper_id).progress.next_window_ms
    ledger.seal_topics(ctx.db, start + 6_000)
    ledger.cut_windows(ctx.db, start + 6_000, "UTC")
    now = start + 6_000
    first = ledger.claim(ctx.db, "w1", now, 1_000, max_attempts=2)
    assert first is not None and first.attempts == 1
    second = ledger.claim(ctx.db, "w2", now + 2_000, 1_000, max_attempts=2)  # w1 died
    assert second is not None and second.task_id == first.task_id and second.attempts == 2
    assert ledger.claim(ctx.db, "w3", now + 4_000, 1_000, max_attempts=2) is None  # w2 died
    failed = tasks.get_task(ctx, shipper_id, first.task_id)
    assert failed.status == "failed" and "stopped 2 times" in failed.message
    assert [r.outcome for r in failed.runs] == ["expired", "expired"]


def test_a_shipped_task_reads_back_typed(ctx: Context) -> None:
    _, shipper_id = _shipper(ctx, interval=5)
    start = shippers.get(ctx, shipper_id).progress.next_window_ms
    ledger.seal_topics(ctx.db, start + 6_000)
    ledger.cut_windows(ctx.db, start + 6_000, "UTC+08:00")
    task = ledger.claim(ctx.db, "w", start + 6_000, 10_000)
    assert task is not None and task.config.time_zone == "UTC+08:00"
    shipped = ShippedObject("p/a.gz", 10, "m" * 32, "s" * 64, records=3, raw_bytes=30)
    assert ledger.succeed(ctx.db, task, start + 7_000,
                          ledger.Outcome(3, 0, 30, 10, 0, 2, [shipped]))
    detail = tasks.get_task(ctx, shipper_id, task.task_id)
    assert detail.status is TaskStatus.SUCCESS and detail.objects == [shipped]
    assert detail.config == task.config
    assert [r.outcome for r in detail.runs] == [RunOutcome.SUCCESS]


def test_a_listing_does_not_decode_what_it_does_not_show(ctx: Context) -> None:
    topic, shipper_id = _shipper(ctx)
    now = now_ms()
    with ctx.db.begin() as conn:
        # A config and objects no reader could decode: only the detail may touch them.
        conn.execute(insert(schema.tasks).values(
            task_id="t1", shipper_id=shipper_id, topic_id=topic, range_start_ms=now,
            range_end_ms=now + 1_000, status="wait", message="", created_ms=now,
            run_start_ms=now, config={}, objects=[{}], next_attempt_ms=now))
    listed = tasks.list_tasks(ctx, shipper_id, now - 1, now + 1)
    assert [(type(t), t.task_id, t.status) for t in listed] == [(Task, "t1", TaskStatus.WAIT)]


def test_retry_with_the_current_config_keeps_the_window_zone(ctx: Context) -> None:
    _, shipper_id = _shipper(ctx, interval=5)
    start = shippers.get(ctx, shipper_id).progress.next_window_ms
    ledger.seal_topics(ctx.db, start + 6_000)
    ledger.cut_windows(ctx.db, start + 6_000, "UTC+08:00")
    task = ledger.claim(ctx.db, "w", start + 6_000, 10_000)
    assert task is not None
    ledger.fail(ctx.db, task, start + 7_000, "bucket 'b-1' does not exist (10001)",
                transient=False, max_attempts=5, retry_base_ms=1_000)
    shippers.modify(ctx, shipper_id, "legacy", {"bucket": "b-2"})
    tasks.retry(ctx, shipper_id, task.task_id, reload_config=True)
    retried = tasks.get_task(ctx, shipper_id, task.task_id)
    assert retried.status is TaskStatus.WAIT
    assert (retried.config.bucket, retried.config.time_zone) == ("b-2", "UTC+08:00")


def test_status_counts_every_state(ctx: Context) -> None:
    _, shipper_id = _shipper(ctx, interval=5)
    start = shippers.get(ctx, shipper_id).progress.next_window_ms
    ledger.seal_topics(ctx.db, start + 11_000)
    ledger.cut_windows(ctx.db, start + 11_000, "UTC")
    task = ledger.claim(ctx.db, "w", start + 11_000, 10_000)
    assert task is not None
    with ctx.db.read() as conn:
        status = read_status(conn, start + 12_000, postgres=False)
    assert status.queue == {"wait": 1, "running": 1, "success": 0, "failed": 0}
    assert status.due == 1 and [t.task_id for t in status.running] == [task.task_id]


def test_only_the_ledger_writes_the_task_tables() -> None:
    writes = re.compile(r"\b(insert|update|delete)\((tasks|task_runs)\b")
    package = Path(ledger.__file__).parents[1]
    writers = {path.relative_to(package).as_posix() for path in package.rglob("*.py")
               if writes.search(path.read_text())}
    assert writers == {"shipping/ledger.py"}

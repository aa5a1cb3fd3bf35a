"""The service layer and the task queue on both backends (SQLite and PostgreSQL): the same
schema, migrations and queries."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from cls_shipper.cli.status import read_status
from cls_shipper.errors import ServiceError, ShippingError, SinkError
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


class _Longest(random.Random):
    """Full jitter at its top: every backoff is its ceiling, so a test knows when a task is
    due again."""

    def uniform(self, a: float, b: float) -> float:
        return b


LONGEST = _Longest()
# Outages retried for 1 s after the first attempt; 2 deaths or non-outage attempts.
POLICY = ledger.RetryPolicy(base_ms=1_000, cap_ms=60_000, deadline_ms=1_000, max_attempts=2)
UNREACHABLE = SinkError("unreachable", "endpoint unreachable (10003)")


def _missing(bucket: str = "b-1") -> SinkError:
    return SinkError("bucket_missing", f"bucket '{bucket}' does not exist (10001)")


def _denied() -> SinkError:
    return SinkError("access_denied", "access denied (10002)")


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
    listed = tasks.list_tasks(ctx, shipper_id, now - 60_000, now + 60_000, now=now).tasks
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
    assert ledger.fail(ctx.db, second, now, UNREACHABLE, POLICY, LONGEST) == "wait"
    third = ledger.claim(ctx.db, "w2", now + 500, 60_000)
    assert third is not None and third.range_start_ms == start + 20_000
    assert ledger.claim(ctx.db, "w2", now + 500, 60_000) is None  # second is backing off
    again = ledger.claim(ctx.db, "w2", now + 1_500, 60_000)
    assert again is not None and again.task_id == second.task_id and again.attempts == 2
    # Past the retry deadline (1 s after the first attempt here), an outage fails the task.
    assert ledger.fail(ctx.db, again, now + 1_600, UNREACHABLE, POLICY, LONGEST) == "failed"
    failed = tasks.get_task(ctx, shipper_id, second.task_id)
    assert failed.status == "failed" and "gave up after 2 attempts" in failed.message


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
    assert ledger.fail(ctx.db, task, start + 7_000, _denied(), POLICY) == "failed"
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
    ledger.fail(ctx.db, task, later, _missing(), POLICY)
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
    listed = tasks.list_tasks(ctx, shipper_id, now - 1, now + 1).tasks
    assert [(type(t), t.task_id, t.status) for t in listed] == [(Task, "t1", TaskStatus.WAIT)]


def test_retry_with_the_current_config_keeps_the_window_zone(ctx: Context) -> None:
    _, shipper_id = _shipper(ctx, interval=5)
    start = shippers.get(ctx, shipper_id).progress.next_window_ms
    ledger.seal_topics(ctx.db, start + 6_000)
    ledger.cut_windows(ctx.db, start + 6_000, "UTC+08:00")
    task = ledger.claim(ctx.db, "w", start + 6_000, 10_000)
    assert task is not None
    ledger.fail(ctx.db, task, start + 7_000, _missing(), POLICY)
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


def _cut(ctx: Context, interval: int, windows: int) -> tuple[str, int, int]:
    """A shipper with `windows` tasks cut; its id, first window start and the time now."""
    _, shipper_id = _shipper(ctx, interval=interval)
    start = shippers.get(ctx, shipper_id).progress.next_window_ms
    now = start + windows * interval * 1000 + 500
    ledger.seal_topics(ctx.db, now)
    assert ledger.cut_windows(ctx.db, now, "UTC") == windows
    return shipper_id, start, now


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    policy = ledger.RetryPolicy(base_ms=2_000, cap_ms=300_000, deadline_ms=86_400_000,
                                max_attempts=5)
    assert [policy.ceiling(n) for n in (1, 2, 3, 8, 9, 10, 5_000)] == [
        2_000, 4_000, 8_000, 256_000, 300_000, 300_000, 300_000]
    rng = random.Random(7)
    delays = [policy.backoff(12, rng) for _ in range(2_000)]
    assert all(0 <= d <= 300_000 for d in delays)
    # Spread over the whole range, not bunched at the top (that is what jitter is for).
    assert min(delays) < 30_000 and max(delays) > 270_000


def test_an_outage_is_retried_until_the_deadline_not_a_count(ctx: Context) -> None:
    shipper_id, _, now = _cut(ctx, 5, 1)
    policy = ledger.RetryPolicy(base_ms=1_000, cap_ms=4_000, deadline_ms=60_000,
                                max_attempts=2)
    first_claim = now
    attempts = 0
    while True:
        task = ledger.claim(ctx.db, "w", now, 10_000, max_attempts=policy.max_attempts)
        assert task is not None and task.first_attempt_ms == first_claim
        attempts += 1
        status = ledger.fail(ctx.db, task, now + 100, UNREACHABLE, policy, LONGEST)
        detail = tasks.get_task(ctx, shipper_id, task.task_id)
        if status == "failed":
            break
        assert status == "wait" and "retrying in" in detail.message
        # Never longer than the cap between one attempt's end and the next attempt.
        assert detail.next_attempt_ms - (now + 100) <= policy.cap_ms
        now = detail.next_attempt_ms
    # Far more attempts than max_attempts, and it gave up only past the deadline.
    assert attempts > 10 and now + 100 - first_claim >= policy.deadline_ms
    assert "gave up after" in detail.message and "retry deadline" in detail.message


def test_other_transient_failures_still_count_attempts(ctx: Context) -> None:
    shipper_id, _, now = _cut(ctx, 5, 1)
    bug = ShippingError("internal error (10003): ValueError: boom", transient=True)
    policy = ledger.RetryPolicy(base_ms=1_000, cap_ms=4_000, deadline_ms=86_400_000,
                                max_attempts=2)
    task = ledger.claim(ctx.db, "w", now, 10_000)
    assert task is not None
    assert ledger.fail(ctx.db, task, now, bug, policy, LONGEST) == "wait"
    task = ledger.claim(ctx.db, "w", now + 1_000, 10_000)
    assert task is not None
    assert ledger.fail(ctx.db, task, now + 1_000, bug, policy, LONGEST) == "failed"
    assert "failed 2 times" in tasks.get_task(ctx, shipper_id, task.task_id).message


def test_a_dying_worker_is_counted_apart_from_outage_attempts(ctx: Context) -> None:
    shipper_id, _, now = _cut(ctx, 5, 1)
    policy = ledger.RetryPolicy(base_ms=100, cap_ms=100, deadline_ms=86_400_000,
                                max_attempts=2)
    for _ in range(5):  # an outage: five attempts, more than max_attempts
        task = ledger.claim(ctx.db, "w", now, 1_000, max_attempts=2)
        assert task is not None
        assert ledger.fail(ctx.db, task, now, UNREACHABLE, policy, LONGEST) == "wait"
        now += 100
    assert ledger.claim(ctx.db, "w1", now, 1_000, max_attempts=2) is not None  # w1 dies
    taken = ledger.claim(ctx.db, "w2", now + 2_000, 1_000, max_attempts=2)  # one death: go on
    assert taken is not None and taken.attempts == 7
    assert ledger.claim(ctx.db, "w3", now + 4_000, 1_000, max_attempts=2) is None  # 2 deaths
    failed = tasks.get_task(ctx, shipper_id, taken.task_id)
    assert failed.status == "failed" and "stopped 2 times" in failed.message


def test_a_refused_destination_blocks_the_shipper_and_a_probe_heals_it(ctx: Context) -> None:
    shipper_id, start, now = _cut(ctx, 5, 3)
    policy = ledger.RetryPolicy(base_ms=1_000, cap_ms=4_000, deadline_ms=86_400_000,
                                max_attempts=5)
    first = ledger.claim(ctx.db, "w", now, 10_000)
    assert first is not None and first.range_start_ms == start
    assert ledger.fail(ctx.db, first, now, _missing(), policy) == "failed"
    blocked = shippers.get(ctx, shipper_id)
    assert blocked.blocked is not None and blocked.task_status == shippers.TASK_STATUS_EXCEPTION
    assert (blocked.blocked.since_ms, blocked.blocked.code) == (now, 10001)
    assert "does not exist" in blocked.blocked.reason
    assert "blocked" in tasks.get_task(ctx, shipper_id, first.task_id).message
    # Its other windows are not handed out: they keep their budget for when it works.
    assert ledger.claim(ctx.db, "w", now + 100_000, 10_000) is None
    found, _ = shippers.search(ctx, shippers.ShipperQuery(
        task_statuses=[shippers.TASK_STATUS_EXCEPTION]))
    assert [s.shipper_id for s in found] == [shipper_id]

    # Probes back off, capped, and only one worker holds a probe at a time.
    assert ledger.claim_probe(ctx.db, now + 999, 30_000) is None
    probe_times = []
    at = now + 1_000
    for _ in range(5):
        target = ledger.claim_probe(ctx.db, at, 30_000)
        assert target is not None and (target.bucket, target.prefix) == ("b-1", "p/")
        assert ledger.claim_probe(ctx.db, at, 30_000) is None  # leased
        ledger.probe_failed(ctx.db, target, at, _missing(), policy)
        probe_times.append(at)
        next_probe = shippers.get(ctx, shipper_id).blocked
        assert next_probe is not None and next_probe.next_probe_ms is not None
        at = next_probe.next_probe_ms
    gaps = [b - a for a, b in zip(probe_times, [*probe_times[1:], at], strict=True)]
    assert gaps == [2_000, 4_000, 4_000, 4_000, 4_000]

    target = ledger.claim_probe(ctx.db, at, 30_000)
    assert target is not None
    assert ledger.probe_passed(ctx.db, target, at) == 1
    assert shippers.get(ctx, shipper_id).blocked is None
    healed = tasks.get_task(ctx, shipper_id, first.task_id)
    assert healed.status == "wait" and healed.attempts == 0 and "works again" in healed.message
    # Queued again in window order: the failed window first, then the ones that waited.
    order = []
    while (task := ledger.claim(ctx.db, "w", at, 10_000)) is not None:
        order.append(task.range_start_ms - start)
        ledger.succeed(ctx.db, task, at, ledger.Outcome(0, 0, 0, 0, None, None, []))
    assert order == [0, 5_000, 10_000]
    # A probe leased before a heal cannot undo it.
    ledger.probe_failed(ctx.db, target, at, _missing(), policy)
    assert shippers.get(ctx, shipper_id).blocked is None


def test_a_destination_that_passes_the_probe_but_refuses_windows_backs_off(
        ctx: Context) -> None:
    shipper_id, _, now = _cut(ctx, 5, 1)
    policy = ledger.RetryPolicy(base_ms=1_000, cap_ms=8_000, deadline_ms=86_400_000,
                                max_attempts=5)
    delays = []
    for _ in range(5):
        task = ledger.claim(ctx.db, "w", now, 10_000)
        assert task is not None
        ledger.fail(ctx.db, task, now, SinkError("invalid", "rejected (10003)"), policy)
        blocked = shippers.get(ctx, shipper_id).blocked
        assert blocked is not None and blocked.next_probe_ms is not None
        delays.append(blocked.next_probe_ms - now)
        now = blocked.next_probe_ms
        target = ledger.claim_probe(ctx.db, now, 30_000)
        assert target is not None and ledger.probe_passed(ctx.db, target, now) == 1
    assert delays == [1_000, 2_000, 4_000, 8_000, 8_000]
    task = ledger.claim(ctx.db, "w", now, 10_000)
    assert task is not None
    ledger.succeed(ctx.db, task, now, ledger.Outcome(0, 0, 0, 0, None, None, []))
    with ctx.db.read() as conn:
        rounds = conn.execute(select(schema.shippers.c.probe_round)).scalar_one()
    assert rounds == 0  # a shipped window starts the probe backoff over


def test_a_retry_request_unblocks_the_shipper(ctx: Context) -> None:
    shipper_id, _, now = _cut(ctx, 5, 2)
    first = ledger.claim(ctx.db, "w", now, 10_000)
    assert first is not None
    ledger.fail(ctx.db, first, now, _denied(), POLICY)
    assert shippers.get(ctx, shipper_id).blocked is not None
    tasks.retry(ctx, shipper_id, first.task_id)
    assert shippers.get(ctx, shipper_id).blocked is None
    assert ledger.claim(ctx.db, "w", now, 10_000) is not None


def test_only_the_ledger_writes_the_blocked_state() -> None:
    writes = re.compile(r"\b(blocked_since_ms|next_probe_ms|probe_round)=")
    package = Path(ledger.__file__).parents[1]
    writers = {path.relative_to(package).as_posix() for path in package.rglob("*.py")
               if writes.search(path.read_text())}
    assert writers == {"shipping/ledger.py"}


def test_only_the_ledger_writes_the_task_tables() -> None:
    writes = re.compile(r"\b(insert|update|delete)\((tasks|task_runs)\b")
    package = Path(ledger.__file__).parents[1]
    writers = {path.relative_to(package).as_posix() for path in package.rglob("*.py")
               if writes.search(path.read_text())}
    assert writers == {"shipping/ledger.py"}

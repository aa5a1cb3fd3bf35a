"""The outbox and the notifier on both backends: one event per transition, written with it;
lag crossings once each way; delivery to a real receiver, signed; backoff, give-up and the
cap on pending events; nothing delivered by a node that does not lead."""

from __future__ import annotations

import random
import re
from pathlib import Path

from sqlalchemy import insert, select

from cls_shipper.model.task import TaskStatus
from cls_shipper.service import Context
from cls_shipper.service import tasks as task_service
from cls_shipper.settings import Settings
from cls_shipper.shipping import ledger, outbox
from cls_shipper.shipping.notifier import Notifier, backoff_ms, signature
from cls_shipper.store.schema import notifications
from cls_shipper.timefmt import now_ms
from tests.helpers.server import free_port
from tests.helpers.webhook import Receiver, documented_verifier
from tests.unit.store.test_store import POLICY, UNREACHABLE, _cut, _missing, ctx

__all__ = ["ctx"]  # the fixture, on both backends


def _events(ctx: Context) -> list[dict[str, object]]:
    with ctx.db.read() as conn:
        return [dict(r.body) for r in conn.execute(
            select(notifications).order_by(notifications.c.created_ms,
                                           notifications.c.event_id))]


def _types(ctx: Context) -> list[str]:
    return [str(e["type"]) for e in _events(ctx)]


def _notifier(ctx: Context, url: str | None, **settings: object) -> Notifier:
    return Notifier(ctx.db, Settings.model_validate({"notify_url": url, **settings}),
                    lambda: True, rng=random.Random(7))


def test_one_event_per_transition(ctx: Context) -> None:
    shipper_id, start, now = _cut(ctx, 5, 3)
    first = ledger.claim(ctx.db, "w", now, 10_000)
    assert first is not None
    assert ledger.fail(ctx.db, first, now, _missing(), POLICY) is TaskStatus.FAILED
    assert _types(ctx) == ["task.failed", "shipper.blocked"]
    failed, blocked = _events(ctx)
    assert failed["task_id"] == first.task_id and failed["shipper_name"] == "s"
    assert failed["window"] == outbox.window(start, start + 5_000)
    error = failed["error"]
    assert isinstance(error, dict) and error["code"] == 10001
    assert error["message"].startswith(_missing().message) and "blocked" in error["message"]
    assert blocked["destination"] == {"bucket": "b-1", "prefix": "p/"}

    # An outage that is retried is no event; the probe that passes unblocks (one event).
    target = ledger.claim_probe(ctx.db, now + 120_000, 10_000)
    assert target is not None
    assert ledger.probe_passed(ctx.db, target, now + 120_000) == 1
    assert _types(ctx)[-1] == "shipper.unblocked"
    assert _events(ctx)[-1]["windows_queued"] == 1
    again = ledger.claim(ctx.db, "w", now + 120_000, 10_000)
    assert again is not None and again.task_id == first.task_id
    assert ledger.fail(ctx.db, again, now + 120_000, UNREACHABLE, POLICY) is TaskStatus.WAIT
    assert len(_events(ctx)) == 3
    # Every window ships: only the one that had failed is a recovery.
    for _ in range(3):
        task = ledger.claim(ctx.db, "w", now + 300_000, 10_000)
        assert task is not None
        assert ledger.succeed(ctx.db, task, now + 300_000,
                              ledger.Outcome(4, 0, 10, 5, 0, 3, []))
    assert _types(ctx)[3:] == ["task.recovered"]
    recovered = _events(ctx)[-1]
    assert recovered["records"] == 4 and recovered["task_id"] == first.task_id

    # A user's retry lifts a block: one event.
    ledger.seal_topics(ctx.db, now + 400_000)
    assert ledger.cut_windows(ctx.db, now + 400_000, "UTC")
    last = ledger.claim(ctx.db, "w", now + 400_000, 10_000)
    assert last is not None
    ledger.fail(ctx.db, last, now + 400_000, _missing(), POLICY)
    task_service.retry(ctx, shipper_id, last.task_id)
    # (The service stamps the retry with the real clock, before this test's simulated one.)
    assert sorted(_types(ctx)) == sorted(["task.failed", "shipper.blocked", "shipper.unblocked",
                                          "task.recovered", "task.failed", "shipper.blocked",
                                          "shipper.unblocked"])
    assert sorted(e["unblocked_by"] for e in _events(ctx)  # type: ignore[type-var]
                  if e["type"] == "shipper.unblocked") == ["probe", "retry request"]


def test_lag_crossings_are_one_event_each_way(ctx: Context) -> None:
    shipper_id, start, now = _cut(ctx, 5, 2)
    notifier = _notifier(ctx, "http://127.0.0.1:9/", notify_lag_seconds=60)
    notifier.evaluate_lag(start + 30_000)  # under the threshold
    assert _events(ctx) == []
    notifier.evaluate_lag(start + 61_000)
    notifier.evaluate_lag(start + 62_000)  # still over: no second event
    assert _types(ctx) == ["shipper.lag_exceeded"]
    assert _events(ctx)[0]["shipped_until"] == outbox.iso(start)
    for _ in range(2):
        task = ledger.claim(ctx.db, "w", now, 10_000)
        assert task is not None
        ledger.succeed(ctx.db, task, now, ledger.Outcome(0, 0, 0, 0, None, None, []))
    notifier.evaluate_lag(start + 40_000)  # the cursor (start + 10 s) is 30 s behind
    assert sorted(_types(ctx)) == ["shipper.lag_exceeded", "shipper.lag_recovered"]
    assert [e["lag_seconds"] for e in _events(ctx)
            if e["type"] == "shipper.lag_recovered"] == [30.0]
    del shipper_id


def test_delivery_is_signed_and_deleted_once_taken(ctx: Context) -> None:
    _, _, now = _cut(ctx, 5, 1)
    task = ledger.claim(ctx.db, "w", now, 10_000)
    assert task is not None
    ledger.fail(ctx.db, task, now, _missing(), POLICY)
    receiver = Receiver()
    receiver.up()
    try:
        notifier = _notifier(ctx, receiver.url, notify_secret="s3cret")
        assert notifier.round(now) == 2
        assert _events(ctx) == []  # delivered: nothing kept
        verify = documented_verifier()
        for delivery in receiver.deliveries:
            header = delivery.headers["X-Cls-Shipper-Signature"]
            assert verify("s3cret", header, delivery.body)
            assert not verify("wrong", header, delivery.body)
        assert [d.event["type"] for d in receiver.deliveries] == ["task.failed",
                                                                  "shipper.blocked"]
        assert notifier.counters.delivered == 2
    finally:
        receiver.down()
        notifier.close()


def _add(ctx: Context, created_ms: int, count: int) -> list[str]:
    ids = [f"evt_{created_ms}_{i:04d}" for i in range(count)]
    with ctx.db.begin() as conn:
        conn.execute(insert(notifications), [
            {"event_id": event_id, "event_type": "task.failed", "shipper_id": "s",
             "created_ms": created_ms, "body": {"event_id": event_id, "type": "task.failed",
                                                "shipper_id": "s"},
             "state": outbox.PENDING, "attempts": 0, "next_attempt_ms": created_ms,
             "last_error": ""} for event_id in ids])
    return ids


def test_a_receiver_down_backs_off_then_gives_up(ctx: Context) -> None:
    recent = now_ms()
    [old] = _add(ctx, recent - 120_000, 1)  # older than the deadline below
    [young] = _add(ctx, recent, 1)
    down = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens there
    notifier = _notifier(ctx, down, notify_deadline_seconds=60,
                         notify_backoff_cap_seconds=30, notify_timeout_seconds=2)
    try:
        due = {e.event_id: e for e in outbox.due(ctx.db, recent, 10)}
        assert not notifier.deliver(due[young])
        with ctx.db.read() as conn:
            row = conn.execute(select(notifications).where(
                notifications.c.event_id == young)).one()
        assert row.state == outbox.PENDING and row.attempts == 1
        assert "ConnectError" in row.last_error
        assert recent < row.next_attempt_ms <= now_ms() + 1_000  # attempt 1: up to 1 s
        # Past the deadline (counted from the event), a failure gives it up.
        assert not notifier.deliver(due[old])
        with ctx.db.read() as conn:
            assert outbox.counts(conn) == {"pending": 1, "given_up": 1, "dropped": 0}
            state = conn.execute(select(notifications.c.state).where(
                notifications.c.event_id == old)).scalar()
        assert state == outbox.GIVEN_UP
        assert notifier.counters.given_up == 1 and notifier.counters.failed_attempts == 2
    finally:
        notifier.close()


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b
    assert [backoff_ms(n, 30_000, Top()) for n in (1, 2, 3, 5, 6, 50)] == [
        1_000, 2_000, 4_000, 16_000, 30_000, 30_000]
    assert all(0 <= backoff_ms(4, 30_000) <= 8_000 for _ in range(100))


def test_the_pending_cap_drops_the_oldest(ctx: Context) -> None:
    old = _add(ctx, 1_000, 5)
    new = _add(ctx, 2_000, 5)
    assert outbox.drop_over_cap(ctx.db, 7) == 3
    assert [e.event_id for e in outbox.due(ctx.db, 10_000, 100)] == old[3:] + new
    with ctx.db.read() as conn:
        assert outbox.counts(conn) == {"pending": 7, "given_up": 0, "dropped": 3}
    outbox.prune_lost(ctx.db, 1_000 + outbox.GIVEN_UP_KEEP_MS + 1)
    with ctx.db.read() as conn:
        assert outbox.counts(conn)["dropped"] == 0


def test_only_the_leader_delivers_and_no_url_keeps_nothing(ctx: Context) -> None:
    _add(ctx, 1_000, 3)
    follower = Notifier(ctx.db, Settings(notify_url="http://127.0.0.1:9/"), lambda: False)
    assert follower.round(10_000) == 0
    assert len(_events(ctx)) == 3  # untouched: not even an attempt
    _notifier(ctx, None).round(10_000)
    assert _events(ctx) == []


def test_signature_is_hmac_of_timestamp_dot_body() -> None:
    header = signature("k", 1700000000, b'{"a":1}')
    assert re.fullmatch(r"t=1700000000,v1=[0-9a-f]{64}", header)
    assert header != signature("k", 1700000000, b'{"a":2}')


def test_only_the_outbox_writes_the_notification_tables() -> None:
    writes = re.compile(r"\b(insert|update|delete)\((notifications|lag_alerts)\b")
    package = Path(outbox.__file__).parents[1]
    writers = {path.relative_to(package).as_posix() for path in package.rglob("*.py")
               if writes.search(path.read_text())}
    assert writers == {"shipping/outbox.py"}

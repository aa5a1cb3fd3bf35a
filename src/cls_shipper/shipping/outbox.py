"""The notification outbox: what each event says, and its life until it is delivered.

The ledger records an event here in the transaction of the transition it reports (a window
failed or recovered, a shipper blocked or unblocked), so there is exactly one event per
transition, it survives restarts, and shipping never waits for a receiver. The notifier
(`notifier.py`, on the node leading the scheduler) delivers them and records lag crossings.
This module is the only writer of `notifications` and `lag_alerts`.

Every body carries `event_id` (deliveries are at least once: a receiver deduplicates by
it), `type`, `time`, the shipper, what happened and `action`: what the operator should do.
"""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from cls_shipper.store import Database
from cls_shipper.store.schema import lag_alerts, notifications, shippers

TASK_FAILED = "task.failed"
TASK_RECOVERED = "task.recovered"
SHIPPER_BLOCKED = "shipper.blocked"
SHIPPER_UNBLOCKED = "shipper.unblocked"
LAG_EXCEEDED = "shipper.lag_exceeded"
LAG_RECOVERED = "shipper.lag_recovered"
EVENT_TYPES = (TASK_FAILED, TASK_RECOVERED, SHIPPER_BLOCKED, SHIPPER_UNBLOCKED, LAG_EXCEEDED,
               LAG_RECOVERED)

_SEQUENCE = itertools.count()
PENDING = "pending"
GIVEN_UP = "given_up"  # past the delivery deadline
DROPPED = "dropped"  # beyond NOTIFY_MAX_PENDING, the oldest first
LOST = (GIVEN_UP, DROPPED)
# Events never delivered are kept this long (and at most this many) for an operator to see
# (`cls-shipper status` counts them; the rows say which and why).
GIVEN_UP_KEEP_MS = 7 * 86_400_000
GIVEN_UP_KEEP_ROWS = 1_000


def iso(ms: int) -> str:
    """RFC 3339 in UTC with milliseconds: what every receiver parses."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds") \
        .replace("+00:00", "Z")


def window(start_ms: int, end_ms: int) -> dict[str, Any]:
    return {"start": iso(start_ms), "end": iso(end_ms), "start_ms": start_ms,
            "end_ms": end_ms}


def record(conn: Connection, event_type: str, shipper_id: str, now: int,
           **fields: Any) -> str:
    """Add one event to the outbox in the caller's transaction; returns its id."""
    # Sorted like the events of one transaction were recorded (time, then this process's
    # sequence), unique across processes and nodes by the random part.
    event_id = f"evt_{now:012x}{next(_SEQUENCE) % 0x1000000:06x}{uuid.uuid4().hex[:14]}"
    shipper = conn.execute(select(shippers.c.shipper_name, shippers.c.topic_id).where(
        shippers.c.shipper_id == shipper_id)).first()
    body = {"event_id": event_id, "type": event_type, "time": iso(now), "time_ms": now,
            "shipper_id": shipper_id,
            "shipper_name": shipper.shipper_name if shipper is not None else None,
            "topic_id": shipper.topic_id if shipper is not None else None, **fields}
    conn.execute(insert(notifications).values(
        event_id=event_id, event_type=event_type, shipper_id=shipper_id, created_ms=now,
        body=body, state=PENDING, attempts=0, next_attempt_ms=now, last_error=""))
    return event_id


# --- What the ledger records ----------------------------------------------------------------

def task_failed(conn: Connection, *, task_id: str, shipper_id: str, start_ms: int,
                end_ms: int, code: int, message: str, blocked: bool, now: int) -> None:
    if blocked:
        action = ("fix the destination (create the bucket, grant the permission, correct "
                  "the config); the shipper is probed and this window ships again by itself "
                  "once it works")
    else:
        action = (f"fix the cause in the message, then retry the window: "
                  f"cls-shipper retry --shipper-id {shipper_id} (or PUT /task with this "
                  "task_id); it ships with the same object names")
    record(conn, TASK_FAILED, shipper_id, now, task_id=task_id,
           window=window(start_ms, end_ms), error={"code": code, "message": message},
           action=action)


def task_recovered(conn: Connection, *, task_id: str, shipper_id: str, start_ms: int,
                   end_ms: int, failed_ms: int, records: int, now: int) -> None:
    record(conn, TASK_RECOVERED, shipper_id, now, task_id=task_id,
           window=window(start_ms, end_ms), failed_at=iso(failed_ms), records=records,
           action="none: the window that had failed is shipped")


def shipper_blocked(conn: Connection, *, shipper_id: str, code: int, reason: str, bucket: str,
                    prefix: str, next_probe_ms: int, now: int) -> None:
    record(conn, SHIPPER_BLOCKED, shipper_id, now, error={"code": code, "message": reason},
           destination={"bucket": bucket, "prefix": prefix}, next_probe=iso(next_probe_ms),
           action=("fix the destination (create the bucket, grant the permission, correct "
                   "the config); no window of this shipper ships until then, none is lost, "
                   "and it resumes by itself within one probe interval"))


def shipper_unblocked(conn: Connection, *, shipper_id: str, blocked_since_ms: int,
                      queued: int, by: str, now: int) -> None:
    record(conn, SHIPPER_UNBLOCKED, shipper_id, now, blocked_since=iso(blocked_since_ms),
           blocked_for_seconds=round((now - blocked_since_ms) / 1000, 3),
           windows_queued=queued, unblocked_by=by,
           action="none: the shipper ships again, the windows that failed first")


# --- Lag crossings (the notifier) -----------------------------------------------------------

def lagging(conn: Connection) -> set[str]:
    """The shippers whose lag was reported over the threshold and not back under yet."""
    return set(conn.execute(select(lag_alerts.c.shipper_id)).scalars())


def lag_exceeded(db: Database, shipper_id: str, lag_ms: int, threshold_ms: int,
                 shipped_until_ms: int, now: int) -> bool:
    """Remember the crossing and record its event, once (False: already recorded)."""
    with db.begin() as conn:
        if conn.execute(select(lag_alerts.c.shipper_id).where(
                lag_alerts.c.shipper_id == shipper_id)).first() is not None:
            return False
        conn.execute(insert(lag_alerts).values(shipper_id=shipper_id, since_ms=now))
        record(conn, LAG_EXCEEDED, shipper_id, now, lag_seconds=round(lag_ms / 1000, 3),
               threshold_seconds=threshold_ms / 1000, shipped_until=iso(shipped_until_ms),
               action=(f"see why windows wait: cls-shipper tasks --shipper-id {shipper_id} "
                       "(failed or retrying windows, a blocked destination) and "
                       "cls-shipper status (workers alive, queue); add workers if the "
                       "queue only grows"))
    return True


def lag_recovered(db: Database, shipper_id: str, lag_ms: int | None, threshold_ms: int,
                  now: int) -> bool:
    """Forget the crossing and record that the lag is back under the threshold (`lag_ms`
    None: the shipper was deleted or switched off)."""
    with db.begin() as conn:
        since = conn.execute(delete(lag_alerts).where(lag_alerts.c.shipper_id == shipper_id)
                             .returning(lag_alerts.c.since_ms)).scalar()
        if since is None:
            return False
        record(conn, LAG_RECOVERED, shipper_id, now,
               lag_seconds=None if lag_ms is None else round(lag_ms / 1000, 3),
               threshold_seconds=threshold_ms / 1000, lagging_since=iso(int(since)),
               action="none" if lag_ms is not None
               else "none: the shipper was deleted or switched off")
    return True


# --- Delivery (the notifier) ----------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Pending:
    event_id: str
    event_type: str
    body: dict[str, Any]
    created_ms: int
    attempts: int


def due(db: Database, now: int, limit: int) -> list[Pending]:
    """Pending events due for an attempt, oldest first."""
    with db.read() as conn:
        rows = conn.execute(select(notifications).where(
            notifications.c.state == PENDING, notifications.c.next_attempt_ms <= now)
            .order_by(notifications.c.created_ms, notifications.c.event_id).limit(limit)).all()
    return [Pending(r.event_id, r.event_type, dict(r.body), int(r.created_ms), int(r.attempts))
            for r in rows]


def delivered(db: Database, event_id: str) -> None:
    """The receiver has it: nothing of it needs keeping."""
    with db.begin() as conn:
        conn.execute(delete(notifications).where(notifications.c.event_id == event_id))


def failed_attempt(db: Database, event_id: str, next_attempt_ms: int, error: str) -> None:
    with db.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.event_id == event_id).values(
            attempts=notifications.c.attempts + 1, next_attempt_ms=next_attempt_ms,
            last_error=error[:2000]))


def given_up(db: Database, event_id: str, error: str) -> None:
    with db.begin() as conn:
        conn.execute(update(notifications).where(notifications.c.event_id == event_id).values(
            state=GIVEN_UP, attempts=notifications.c.attempts + 1, last_error=error[:2000]))


def drop_over_cap(db: Database, max_pending: int) -> int:
    """Keep at most `max_pending` pending events: the oldest beyond are dropped (kept as
    `dropped`, like given-up ones, for the record). Returns how many."""
    with db.begin() as conn:
        cutoff = conn.execute(select(notifications.c.created_ms, notifications.c.event_id)
                              .where(notifications.c.state == PENDING)
                              .order_by(notifications.c.created_ms.desc(),
                                        notifications.c.event_id.desc())
                              .offset(max_pending).limit(1)).first()
        if cutoff is None:
            return 0
        older = and_(notifications.c.state == PENDING,
                     (notifications.c.created_ms < cutoff.created_ms)
                     | and_(notifications.c.created_ms == cutoff.created_ms,
                            notifications.c.event_id <= cutoff.event_id))
        return int(conn.execute(update(notifications).where(older).values(
            state=DROPPED, last_error=f"dropped: more than {max_pending} events were waiting")
        ).rowcount or 0)


def prune_lost(db: Database, now: int) -> None:
    """Given-up and dropped events are kept GIVEN_UP_KEEP_MS, and at most
    GIVEN_UP_KEEP_ROWS."""
    lost = notifications.c.state.in_(LOST)
    with db.begin() as conn:
        conn.execute(delete(notifications).where(
            lost, notifications.c.created_ms < now - GIVEN_UP_KEEP_MS))
        cutoff = conn.execute(select(notifications.c.created_ms).where(lost)
                              .order_by(notifications.c.created_ms.desc())
                              .offset(GIVEN_UP_KEEP_ROWS).limit(1)).scalar()
        if cutoff is not None:
            conn.execute(delete(notifications).where(lost,
                                                     notifications.c.created_ms <= cutoff))


def discard_all(db: Database) -> int:
    """No receiver is configured: events are not kept (nor lag crossings remembered)."""
    with db.read() as conn:  # a read first: SQLite's write lock only when there is work
        if (conn.execute(select(notifications.c.event_id).limit(1)).first() is None
                and conn.execute(select(lag_alerts.c.shipper_id).limit(1)).first() is None):
            return 0
    with db.begin() as conn:
        conn.execute(delete(lag_alerts))
        return int(conn.execute(delete(notifications)).rowcount or 0)


def counts(conn: Connection) -> dict[str, int]:
    """Events in the outbox by state: waiting for delivery, and never delivered (given up,
    dropped) in the last GIVEN_UP_KEEP_MS."""
    found = {str(state): int(count) for state, count in conn.execute(
        select(notifications.c.state, func.count()).group_by(notifications.c.state))}
    return {state: int(found.get(state, 0)) for state in (PENDING, *LOST)}

"""The task ledger: the one owner of `tasks` and `task_runs`. Every change of a task, and
every read of the ledger the service and the CLI make, goes through this module.

A task moves like this (`running` holds a lease; "lease expiry" is noticed by the next
worker's claim):

| from                | event                                             | to        | who     |
|---------------------|---------------------------------------------------|-----------|---------|
| -                   | `cut_windows`: its window closed                  | `wait`    | sched.  |
| `wait` (due)        | `claim` (its shipper not blocked)                 | `running` | worker  |
| `running`           | `renew`: the lease is extended                    | `running` | worker  |
| `running`           | `succeed`                                         | `success` | worker  |
| `running`           | `fail`: outage, before the retry deadline         | `wait`    | worker  |
| `running`           | `fail`: other transient, attempts left            | `wait`    | worker  |
| `running`           | `fail`: destination refused it (blocks shipper)   | `failed`  | worker  |
| `running`           | `fail`: permanent, past deadline, out of attempts | `failed`  | worker  |
| `running`           | `release`: the worker is stopping                 | `wait`    | worker  |
| `running` (expired) | `claim` takes it over                             | `running` | expiry  |
| `running` (expired) | `claim` after `max_attempts` expiries             | `failed`  | expiry  |
| `failed` (refused)  | `probe_passed`: the shipper's destination works   | `wait`    | probe   |
| `failed`            | `retry`: PUT /task(s), RetryShipperTask           | `wait`    | user    |
| any                 | `delete_shipper_tasks`: shipper deleted           | -         | user    |

`success` is final: no transition leaves it (only deleting the shipper removes the task), so
a listing may hold successful tasks it has read (`service/task_cache.py`). A new transition
out of `success` must end that.

A shipper is **blocked** while its destination refuses it (bucket missing, access denied, a
config the store rejects): `fail` blocks it in the transaction that fails the task, `claim`
skips its tasks (so its other windows keep their retry budget), workers probe its destination
with capped backoff (`claim_probe`, `probe_failed`), and `probe_passed` unblocks it and queues
the tasks that failed for that cause again, in window order. A user's `retry` unblocks it too.
This module is the only writer of the `blocked_*` columns.

Notifications: the transitions an operator is told about record their event in the outbox
(`outbox.py`) in their own transaction: a window `failed` (`fail`, or `claim` after its
expiries), a failed window's `succeed` (recovered), a shipper blocked (`fail`) and unblocked
(`probe_passed`, `retry`).

Every transition of a running task is fenced by its lease token: a worker whose lease
expired (and whose task another worker took over) cannot overwrite the newer outcome.
On PostgreSQL claims use `FOR UPDATE SKIP LOCKED`; on SQLite the write lock serialises them.

Every run of a task is a `task_runs` row, written in the same transaction as the state
change it goes with, so the run log and the ledger never disagree: a claim opens it
(`running`), `succeed`, `fail` and `release` close it (`success`, `retry`, `failed`,
`released`), a takeover closes the previous one (`expired`), and a worker that finishes
without its lease closes its own as `lease_lost`.
"""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, exists, func, insert, or_, select, update
from sqlalchemy.engine import Connection, Row

from cls_shipper.errors import ShippingError, SinkError, TaskCode
from cls_shipper.ids import new_id
from cls_shipper.model.objects import ShippedObject
from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.model.task import (
    CountedTask,
    Run,
    RunOutcome,
    Task,
    TaskDetail,
    TaskStatus,
)
from cls_shipper.model.windows import next_windows
from cls_shipper.shipping import outbox
from cls_shipper.store import Database
from cls_shipper.store.schema import shippers, task_runs, tasks, topics

WINDOWS_PER_TICK = 500  # bounds one transaction during a backfill; the rest come next tick
# SinkError kinds that mean the destination refuses the shipper: waiting will not fix them,
# and every other window of the shipper would meet them too.
BLOCKING_KINDS = frozenset({"bucket_missing", "access_denied", "invalid"})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When a failed window is tried again (settings `RETRY_*`, `MAX_ATTEMPTS`)."""

    base_ms: int  # first backoff ceiling; doubles per attempt
    cap_ms: int  # no backoff (nor probe delay) is longer
    deadline_ms: int  # outages are retried until this long after the first attempt
    max_attempts: int  # worker deaths, and attempts of non-outage transient failures

    def ceiling(self, attempt: int) -> int:
        """min(cap, base * 2^(attempt-1)): the longest backoff after `attempt` failed."""
        exponent = min(max(attempt - 1, 0), 40)  # 2^40 * base is past any cap
        return int(min(self.cap_ms, self.base_ms * 2 ** exponent))

    def backoff(self, attempt: int, rng: random.Random | None = None) -> int:
        """Full jitter: uniform in [0, ceiling], so tasks that failed together (an outage
        fails a whole backlog at once) do not come back together."""
        return round((rng or random).uniform(0, self.ceiling(attempt)))


def _span(ms: int) -> str:
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"


@dataclass(frozen=True, slots=True)
class Claimed:
    """A task leased to a worker: what it ships, and the token that fences its writes."""

    task_id: str
    shipper_id: str
    topic_id: str
    range_start_ms: int
    range_end_ms: int
    attempts: int
    config: ShipperConfig
    lease_token: str
    first_attempt_ms: int = 0  # when this window was first attempted (retry deadline)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a worker shipped for a task."""

    records: int
    records_filtered: int
    bytes_in: int
    bytes_out: int
    first_offset: int | None
    last_offset: int | None
    objects: list[ShippedObject]
    records_rejected: int = 0  # in the rejects object among `objects`


# --- The scheduler's side -------------------------------------------------------------------

def seal_topics(db: Database, now: int) -> None:
    """Raise every topic's seal to `now`: from this commit on no upload can get an ingest time
    below it, so every window ending at or before it is closed for good."""
    with db.begin() as conn:
        if db.is_sqlite:
            conn.execute(update(topics).where(topics.c.sealed_ms < now).values(sealed_ms=now))
            return
        # Lock the rows in topic_id order, the order ingest locks them in: a plain UPDATE
        # locks in physical order and can deadlock with an upload batch spanning topics.
        ordered = (select(topics.c.topic_id).where(topics.c.sealed_ms < now)
                   .order_by(topics.c.topic_id).with_for_update())
        conn.execute(update(topics).where(topics.c.topic_id.in_(ordered.scalar_subquery()))
                     .values(sealed_ms=now))


def cut_windows(db: Database, now: int, zone_name: str) -> int:
    """Turn every closed window of every effective shipper into a `wait` task; returns how
    many were cut. The shipper cursor and the tasks move in one transaction, so a window is
    never cut twice nor skipped, across restarts too."""
    created = 0
    with db.begin() as conn:
        query = (select(shippers.c.shipper_id, shippers.c.topic_id, shippers.c.config,
                        shippers.c.next_window_ms, shippers.c.end_ms, topics.c.sealed_ms)
                 .join(topics, topics.c.topic_id == shippers.c.topic_id)
                 .where(shippers.c.effective.is_(True)).order_by(shippers.c.shipper_id))
        if not db.is_sqlite:
            # Only the leader cuts, but a deposed leader may still be finishing a tick: the
            # row lock makes the second cutter wait and then read the moved cursor.
            query = query.with_for_update(of=shippers)
        rows = conn.execute(query).all()
        for row in rows:
            config = ShipperConfig.from_dict(row.config)
            windows = list(next_windows(row.next_window_ms, config.interval, row.sealed_ms,
                                        WINDOWS_PER_TICK, row.end_ms))
            if not windows:
                continue
            # The snapshot names its zone: a task ships the same objects wherever it runs.
            snapshot = dataclasses.replace(config, time_zone=config.time_zone or zone_name)
            conn.execute(insert(tasks), [
                {"task_id": new_id(), "shipper_id": row.shipper_id, "topic_id": row.topic_id,
                 "range_start_ms": start, "range_end_ms": end, "status": TaskStatus.WAIT,
                 "message": "waiting to be shipped", "created_ms": now, "run_start_ms": now,
                 "run_end_ms": None, "config": snapshot.to_dict(), "attempts": 0,
                 "next_attempt_ms": now, "lease_owner": None, "lease_expires_ms": None,
                 "last_error": "", "records": 0, "records_filtered": 0,
                 "records_rejected": 0, "bytes_in": 0,
                 "bytes_out": 0, "first_offset": None, "last_offset": None, "objects": []}
                for start, end in windows])
            conn.execute(update(shippers).where(shippers.c.shipper_id == row.shipper_id)
                         .values(next_window_ms=windows[-1][1]))
            created += len(windows)
    return created


# --- The worker's side ----------------------------------------------------------------------

def _claimable(now: int) -> ColumnElement[bool]:
    return or_(
        and_(tasks.c.status == TaskStatus.WAIT, tasks.c.next_attempt_ms <= now),
        and_(tasks.c.status == TaskStatus.RUNNING, tasks.c.lease_expires_ms < now),
    )


def _not_blocked() -> ColumnElement[bool]:
    return tasks.c.shipper_id.not_in(
        select(shippers.c.shipper_id).where(shippers.c.blocked_since_ms.is_not(None)))


def claim(db: Database, worker_id: str, now: int, lease_ms: int,
          exclude_shippers: frozenset[str] = frozenset(),
          max_attempts: int | None = None) -> Claimed | None:
    """Lease a due task (or one whose lease expired) to this worker; never one of a blocked
    shipper (its destination refuses it: the window would only fail).

    Shippers take turns: the task comes from the shipper with the fewest tasks running now,
    then the oldest due. So one shipper's backlog, or a slow bucket whose tasks hold workers
    for long, gets one worker while others have work and all of them once the rest is done.

    A task whose lease expired `max_attempts` times (its worker died or stalled each time,
    e.g. killed for memory) is failed instead of being handed to yet another worker. Those
    expiries are counted apart from attempts: an outage makes attempts many, not deaths."""
    token = f"{worker_id}/{uuid.uuid4().hex[:12]}"
    busy = (select(tasks.c.shipper_id, func.count().label("leases"))
            .where(tasks.c.status == TaskStatus.RUNNING, tasks.c.lease_expires_ms >= now)
            .group_by(tasks.c.shipper_id).cte("busy"))
    with db.begin() as conn:
        query = (select(tasks.c.task_id, tasks.c.status, tasks.c.lease_owner, tasks.c.attempts,
                        tasks.c.expiries, tasks.c.shipper_id, tasks.c.range_start_ms,
                        tasks.c.range_end_ms)
                 .select_from(tasks.outerjoin(busy, busy.c.shipper_id == tasks.c.shipper_id))
                 .where(_claimable(now), _not_blocked())
                 .order_by(func.coalesce(busy.c.leases, 0), tasks.c.next_attempt_ms,
                           tasks.c.range_start_ms)
                 .limit(1))
        if exclude_shippers:
            query = query.where(tasks.c.shipper_id.not_in(exclude_shippers))
        if not db.is_sqlite:
            query = query.with_for_update(of=tasks, skip_locked=True)
        while True:
            found = conn.execute(query).first()
            if found is None:
                return None
            if found.status != TaskStatus.RUNNING:
                break
            # Taking over an expired lease: its run ends here, for the record.
            _close_run(conn, found.lease_owner, now, RunOutcome.EXPIRED,
                       "lease expired; the task was taken over", only_running=True)
            expiries = found.expiries + 1
            if max_attempts is None or expiries < max_attempts:
                conn.execute(update(tasks).where(tasks.c.task_id == found.task_id)
                             .values(expiries=expiries))
                break
            message = (f"the worker shipping this window stopped {expiries} times without "
                       "finishing (killed, out of memory, or stalled past its lease): see its "
                       "runs in GET /task, fix the cause, then retry the task")
            conn.execute(update(tasks).where(tasks.c.task_id == found.task_id).values(
                status=TaskStatus.FAILED, message=message, last_error=message,
                run_end_ms=now, lease_owner=None, lease_expires_ms=None, expiries=expiries,
                failed_ms=now))
            outbox.task_failed(conn, task_id=found.task_id, shipper_id=found.shipper_id,
                               start_ms=found.range_start_ms, end_ms=found.range_end_ms,
                               code=int(TaskCode.INTERNAL), message=message, blocked=False,
                               now=now)
        row = conn.execute(
            update(tasks).where(tasks.c.task_id == found.task_id).values(
                status=TaskStatus.RUNNING, message=TaskStatus.RUNNING.value,
                lease_owner=token, lease_expires_ms=now + lease_ms,
                attempts=tasks.c.attempts + 1, run_start_ms=now, run_end_ms=None,
                first_attempt_ms=func.coalesce(tasks.c.first_attempt_ms, now))
            .returning(tasks.c.task_id, tasks.c.shipper_id, tasks.c.topic_id,
                       tasks.c.range_start_ms, tasks.c.range_end_ms, tasks.c.attempts,
                       tasks.c.config, tasks.c.first_attempt_ms)).one()
        conn.execute(insert(task_runs).values(
            run_id=token, task_id=row.task_id, shipper_id=row.shipper_id, attempt=row.attempts,
            lease_token=token, owner=worker_id, started_ms=now, ended_ms=None,
            lease_expires_ms=now + lease_ms, outcome=RunOutcome.RUNNING, message=""))
    return Claimed(row.task_id, row.shipper_id, row.topic_id, row.range_start_ms,
                   row.range_end_ms, row.attempts, ShipperConfig.from_dict(row.config), token,
                   row.first_attempt_ms)


def _close_run(conn: Connection, token: str | None, now: int, outcome: RunOutcome,
               message: str, *, only_running: bool = False) -> None:
    """End the run of lease `token`. A run taken over ends at its lease expiry (the last
    moment it had the task); one that finishes after that records when it really did."""
    if token is None:
        return
    query = update(task_runs).where(task_runs.c.lease_token == token)
    if only_running:
        query = query.where(task_runs.c.outcome == RunOutcome.RUNNING).values(
            ended_ms=task_runs.c.lease_expires_ms)
    else:
        query = query.values(ended_ms=now)
    conn.execute(query.values(outcome=outcome, message=message[:2000]))


def _fenced(task: Claimed) -> ColumnElement[bool]:
    return and_(tasks.c.task_id == task.task_id, tasks.c.lease_owner == task.lease_token,
                tasks.c.status == TaskStatus.RUNNING)


def renew(db: Database, task: Claimed, now: int, lease_ms: int) -> bool:
    """Extend the lease; False if this worker no longer holds it."""
    with db.begin() as conn:
        result = conn.execute(update(tasks).where(_fenced(task))
                              .values(lease_expires_ms=now + lease_ms))
        if result.rowcount:
            conn.execute(update(task_runs).where(task_runs.c.lease_token == task.lease_token)
                         .values(lease_expires_ms=now + lease_ms))
    return bool(result.rowcount)


def succeed(db: Database, task: Claimed, now: int, outcome: Outcome) -> bool:
    """Record the shipped window; False if the lease was lost (the new owner's outcome
    stands)."""
    message = (TaskStatus.SUCCESS.value if outcome.objects
               else f"{TaskStatus.SUCCESS} (no records in this window)")
    rejects = [obj.key for obj in outcome.objects if obj.kind == "rejects"]
    if outcome.records_rejected and rejects:
        # Success all the same (no record blocks a window), but the user must be told.
        message = (f"{TaskStatus.SUCCESS} ({outcome.records_rejected} record(s) could not be "
                   f"written in this format; they are in {rejects[0]})")
    with db.begin() as conn:
        done = conn.execute(update(tasks).where(_fenced(task)).values(
            status=TaskStatus.SUCCESS, message=message, run_end_ms=now, lease_owner=None,
            lease_expires_ms=None, last_error="", records=outcome.records,
            records_filtered=outcome.records_filtered,
            records_rejected=outcome.records_rejected, bytes_in=outcome.bytes_in,
            bytes_out=outcome.bytes_out, first_offset=outcome.first_offset,
            last_offset=outcome.last_offset,
            objects=[obj.to_dict() for obj in outcome.objects])
            .returning(tasks.c.failed_ms)).first()
        if done is not None:
            _close_run(conn, task.lease_token, now, RunOutcome.SUCCESS,
                       f"{outcome.records} records, {len(outcome.objects)} objects")
            if done.failed_ms is not None:
                outbox.task_recovered(conn, task_id=task.task_id, shipper_id=task.shipper_id,
                                      start_ms=task.range_start_ms, end_ms=task.range_end_ms,
                                      failed_ms=int(done.failed_ms), records=outcome.records,
                                      now=now)
            # The destination works: the next block's probes start from the shortest delay.
            # (Conditional, so the shipper row is written only after a block.)
            conn.execute(update(shippers).where(shippers.c.shipper_id == task.shipper_id,
                                                shippers.c.probe_round > 0)
                         .values(probe_round=0))
        else:
            _close_run(conn, task.lease_token, now, RunOutcome.LEASE_LOST,
                       "finished after its lease was lost; the outcome was not recorded")
    return done is not None


def fail(db: Database, task: Claimed, now: int, failure: ShippingError, policy: RetryPolicy,
         rng: random.Random | None = None) -> TaskStatus | None:
    """Record a failed attempt. Returns the new status, None if the lease was lost.

    - The destination refused the window (a SinkError of a BLOCKING_KINDS kind): `failed` at
      once, and the shipper is blocked until a probe finds its destination working again.
    - An outage (any other transient SinkError: unreachable, timeout, 5xx, throttling): back
      to `wait` with capped, fully jittered exponential backoff until the retry deadline,
      counted from the window's first attempt; then `failed`.
    - Another transient failure (a bug, a codec): the same backoff for `max_attempts`
      attempts, as it is no outage that waiting ends.
    - Anything else: `failed` (a user retries it with PUT /task)."""
    message = failure.message
    blocking = (isinstance(failure, SinkError) and not failure.transient
                and failure.kind in BLOCKING_KINDS)
    values: dict[str, Any] = {"message": message, "failure_kind": None}
    status, run_outcome = TaskStatus.FAILED, RunOutcome.FAILED
    if blocking:
        assert isinstance(failure, SinkError)
        values["failure_kind"] = failure.kind
        values["message"] = (f"{message} (the shipper is blocked: its destination is probed "
                             "and this window ships again by itself once it works)")
    elif failure.transient:
        outage = isinstance(failure, SinkError)
        first = task.first_attempt_ms or now
        if outage and now - first >= policy.deadline_ms:
            values["message"] = (f"gave up after {task.attempts} attempts over "
                                 f"{_span(now - first)} (the retry deadline is "
                                 f"{_span(policy.deadline_ms)}): {message}; retry the task "
                                 "once the destination works")
        elif not outage and task.attempts >= policy.max_attempts:
            values["message"] = (f"failed {task.attempts} times: {message}")
        else:
            delay = policy.backoff(task.attempts, rng)
            status, run_outcome = TaskStatus.WAIT, RunOutcome.RETRY
            if outage:
                left = f"retrying for {_span(first + policy.deadline_ms - now)} more"
            else:
                left = f"{policy.max_attempts - task.attempts} attempt(s) left"
            values = {"next_attempt_ms": now + delay,
                      "message": f"attempt {task.attempts} failed, retrying in "
                                 f"{_span(delay)} ({left}): {message}"}
    if status is TaskStatus.FAILED:
        values["failed_ms"] = now
    with db.begin() as conn:
        result = conn.execute(update(tasks).where(_fenced(task)).values(
            status=status, run_end_ms=now, lease_owner=None, lease_expires_ms=None,
            last_error=message, **values))
        if result.rowcount:
            _close_run(conn, task.lease_token, now, run_outcome, message)
            if status is TaskStatus.FAILED:
                outbox.task_failed(conn, task_id=task.task_id, shipper_id=task.shipper_id,
                                   start_ms=task.range_start_ms, end_ms=task.range_end_ms,
                                   code=int(failure.code), message=values["message"],
                                   blocked=blocking, now=now)
            if blocking:
                assert isinstance(failure, SinkError)
                _block(conn, task, now, failure, policy)
        else:
            _close_run(conn, task.lease_token, now, RunOutcome.LEASE_LOST, message)
    return status if result.rowcount else None


def release(db: Database, task: Claimed, now: int) -> bool:
    """Hand a running task back unfinished because its worker is stopping (SIGTERM, its
    grace period over): `wait`, due now, so another worker takes it at once instead of after
    the lease expires. The attempt is given back (attempts - 1): the window did not fail, and
    counting it would let a few rolling restarts fail a healthy window through
    `max_attempts`. The run stays in the log as `released`. False if the lease was lost."""
    with db.begin() as conn:
        result = conn.execute(update(tasks).where(_fenced(task)).values(
            status=TaskStatus.WAIT, message="released by a stopping worker; waiting to be "
                                            "shipped", next_attempt_ms=now,
            attempts=tasks.c.attempts - 1,  # claim counted it; at least 1 while running
            run_end_ms=now, lease_owner=None, lease_expires_ms=None))
        if result.rowcount:
            _close_run(conn, task.lease_token, now, RunOutcome.RELEASED,
                       "the worker was stopping; the task was handed back unfinished")
    return bool(result.rowcount)


# --- Blocked shippers -----------------------------------------------------------------------

def _block(conn: Connection, task: Claimed, now: int, failure: SinkError,
           policy: RetryPolicy) -> None:
    """Block the task's shipper on the destination the task was shipping to (its snapshot's
    bucket and prefix: a shipper modified since may point elsewhere). A shipper already
    blocked keeps its first cause and time."""
    round_ = conn.execute(select(shippers.c.probe_round).where(
        shippers.c.shipper_id == task.shipper_id)).scalar()
    if round_ is None:
        return  # the shipper was deleted meanwhile
    next_probe = now + policy.ceiling(int(round_) + 1)
    blocked = conn.execute(update(shippers).where(shippers.c.shipper_id == task.shipper_id,
                                                  shippers.c.blocked_since_ms.is_(None)).values(
        blocked_since_ms=now, blocked_reason=failure.message[:2000],
        blocked_code=int(failure.code), blocked_bucket=task.config.bucket,
        blocked_prefix=task.config.prefix, next_probe_ms=next_probe)).rowcount
    if blocked:  # one event per block, not per window it refuses
        outbox.shipper_blocked(conn, shipper_id=task.shipper_id, code=int(failure.code),
                               reason=failure.message, bucket=task.config.bucket,
                               prefix=task.config.prefix, next_probe_ms=next_probe, now=now)


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """A blocked shipper's destination, leased to one worker to probe."""

    shipper_id: str
    bucket: str
    prefix: str
    blocked_since_ms: int


def claim_probe(db: Database, now: int, lease_ms: int) -> ProbeTarget | None:
    """The blocked shipper whose probe is due longest, leased for `lease_ms` (its next probe
    moves past the lease, so no other worker probes it meanwhile, and a worker that dies
    while probing only delays the probe)."""
    due = and_(shippers.c.blocked_since_ms.is_not(None), shippers.c.next_probe_ms <= now)
    with db.read() as conn:
        # Idle workers ask every poll: a read first, so SQLite's write lock (BEGIN
        # IMMEDIATE) is taken only when a probe is due.
        if conn.execute(select(shippers.c.shipper_id).where(due).limit(1)).first() is None:
            return None
    with db.begin() as conn:
        query = (select(shippers.c.shipper_id, shippers.c.blocked_bucket,
                        shippers.c.blocked_prefix, shippers.c.blocked_since_ms)
                 .where(due).order_by(shippers.c.next_probe_ms).limit(1))
        if not db.is_sqlite:
            query = query.with_for_update(skip_locked=True)
        row = conn.execute(query).first()
        if row is None:
            return None
        conn.execute(update(shippers).where(shippers.c.shipper_id == row.shipper_id)
                     .values(next_probe_ms=now + lease_ms))
    return ProbeTarget(row.shipper_id, row.blocked_bucket or "", row.blocked_prefix or "",
                       row.blocked_since_ms)


def _this_block(target: ProbeTarget) -> ColumnElement[bool]:
    # A probe reports on the block it was leased for: a user may have lifted it meanwhile.
    return and_(shippers.c.shipper_id == target.shipper_id,
                shippers.c.blocked_since_ms == target.blocked_since_ms)


def probe_failed(db: Database, target: ProbeTarget, now: int, failure: ShippingError,
                 policy: RetryPolicy) -> None:
    """The destination still refuses (or cannot be reached): probe again after the next
    backoff, and show the latest reason."""
    code = failure.code if isinstance(failure, SinkError) else TaskCode.INTERNAL
    with db.begin() as conn:
        round_ = conn.execute(select(shippers.c.probe_round).where(_this_block(target))).scalar()
        if round_ is None:
            return
        conn.execute(update(shippers).where(_this_block(target)).values(
            probe_round=int(round_) + 1, next_probe_ms=now + policy.ceiling(int(round_) + 2),
            blocked_reason=failure.message[:2000], blocked_code=int(code)))


def probe_passed(db: Database, target: ProbeTarget, now: int) -> int:
    """The destination works again: unblock the shipper and queue the tasks that failed for
    that cause. Returns how many were queued (-1: the block had been lifted already)."""
    with db.begin() as conn:
        found = conn.execute(update(shippers).where(_this_block(target))
                             .values(probe_round=shippers.c.probe_round + 1))
        if not found.rowcount:
            return -1
        queued = _unblock(conn, target.shipper_id, now,
                          "queued again: the shipper's destination works again")
        outbox.shipper_unblocked(conn, shipper_id=target.shipper_id,
                                 blocked_since_ms=target.blocked_since_ms, queued=queued,
                                 by="probe", now=now)
        return queued


def _unblock(conn: Connection, shipper_id: str, now: int, message: str) -> int:
    """Lift the block: the tasks that failed because the destination refused them go back to
    `wait`, and with the ones that waited meanwhile become due now, so they are claimed in
    window order; each counts its attempts and its retry deadline afresh (waiting out a block
    spends none of a window's budget). Returns how many failed tasks were queued."""
    conn.execute(update(shippers).where(shippers.c.shipper_id == shipper_id).values(
        blocked_since_ms=None, blocked_reason=None, blocked_code=None, blocked_bucket=None,
        blocked_prefix=None, next_probe_ms=None))
    queued = conn.execute(update(tasks).where(
        tasks.c.shipper_id == shipper_id, tasks.c.status == TaskStatus.FAILED,
        tasks.c.failure_kind.is_not(None)).values(
        status=TaskStatus.WAIT, message=message, attempts=0, expiries=0,
        first_attempt_ms=None, failure_kind=None, next_attempt_ms=now, run_start_ms=now,
        run_end_ms=None, lease_owner=None, lease_expires_ms=None)).rowcount
    conn.execute(update(tasks).where(tasks.c.shipper_id == shipper_id,
                                     tasks.c.status == TaskStatus.WAIT).values(
        next_attempt_ms=now, attempts=0, first_attempt_ms=None))
    return int(queued)


@dataclass(frozen=True, slots=True)
class Blocked:
    """Why a shipper is blocked, for GET /shipper and DescribeShippers."""

    since_ms: int
    reason: str
    code: int
    next_probe_ms: int | None


def blocked_of(row: Any) -> Blocked | None:
    """The block recorded on a `shippers` row (any query selecting its columns)."""
    if row.blocked_since_ms is None:
        return None
    return Blocked(int(row.blocked_since_ms), row.blocked_reason or "",
                   int(row.blocked_code or TaskCode.INTERNAL), row.next_probe_ms)


# --- The user's side (through the service) --------------------------------------------------

def retry(conn: Connection, shipper_id: str, task_id: str, now: int, *,
          reload: ShipperConfig | None = None) -> TaskStatus | None:
    """Send a failed task back to `wait`, due now, its attempts and retry deadline counted
    afresh; with `reload` it ships with that config from now on instead of its snapshot.
    Returns the status the task was found in (None: the shipper has no such task); only a
    failed one is queued.

    A blocked shipper is unblocked: the user says the destination is fixed, and the retried
    task could not run otherwise. Its other failed tasks stay failed (they may need
    `reload` too); should the destination still refuse, the shipper blocks again."""
    row = conn.execute(select(tasks.c.status, tasks.c.config).where(
        tasks.c.task_id == task_id, tasks.c.shipper_id == shipper_id)).first()
    if row is None:
        return None
    found = TaskStatus(row.status)
    if found is not TaskStatus.FAILED:
        return found
    values: dict[str, Any] = {"message": "queued again by a retry request"}
    if reload is not None:
        # An unset time zone was resolved to the server's when the window was cut.
        zone = reload.time_zone or str(row.config.get("time_zone") or "")
        values = {"config": dataclasses.replace(reload, time_zone=zone).to_dict(),
                  "message": "queued again with the shipper's current config"}
    conn.execute(update(tasks).where(tasks.c.task_id == task_id,
                                     tasks.c.status == TaskStatus.FAILED).values(
        status=TaskStatus.WAIT, attempts=0, expiries=0, first_attempt_ms=None,
        failure_kind=None, next_attempt_ms=now, run_start_ms=now, run_end_ms=None,
        lease_owner=None, lease_expires_ms=None, **values))
    blocked_since = conn.execute(select(shippers.c.blocked_since_ms).where(
        shippers.c.shipper_id == shipper_id)).scalar()
    if blocked_since is not None:
        conn.execute(update(shippers).where(shippers.c.shipper_id == shipper_id).values(
            blocked_since_ms=None, blocked_reason=None, blocked_code=None,
            blocked_bucket=None, blocked_prefix=None, next_probe_ms=None))
        outbox.shipper_unblocked(conn, shipper_id=shipper_id,
                                 blocked_since_ms=int(blocked_since), queued=1,
                                 by="retry request", now=now)
    return found


def delete_shipper_tasks(conn: Connection, shipper_id: str) -> None:
    """Forget a shipper's tasks and their runs, in the transaction that deletes the shipper."""
    conn.execute(delete(tasks).where(tasks.c.shipper_id == shipper_id))
    conn.execute(delete(task_runs).where(task_runs.c.shipper_id == shipper_id))


# --- Reads ----------------------------------------------------------------------------------

_TaskRow = Row[*tuple[Any, ...]]


def _summary_fields(row: _TaskRow) -> dict[str, Any]:
    return {"task_id": row.task_id, "shipper_id": row.shipper_id, "topic_id": row.topic_id,
            "range_start_ms": row.range_start_ms, "range_end_ms": row.range_end_ms,
            "start_ms": row.run_start_ms if row.run_start_ms is not None else row.created_ms,
            "end_ms": row.run_end_ms, "status": TaskStatus(row.status),
            "message": row.message}


def _detail(row: _TaskRow, runs: list[Run]) -> TaskDetail:
    return TaskDetail(
        **_summary_fields(row), created_ms=row.created_ms, attempts=row.attempts,
        next_attempt_ms=row.next_attempt_ms, lease_owner=row.lease_owner,
        lease_expires_ms=row.lease_expires_ms, last_error=row.last_error, records=row.records,
        records_filtered=row.records_filtered, records_rejected=row.records_rejected,
        bytes_in=row.bytes_in, bytes_out=row.bytes_out, first_offset=row.first_offset,
        last_offset=row.last_offset,
        objects=[ShippedObject.from_dict(obj) for obj in row.objects or []],
        config=ShipperConfig.from_dict(row.config), runs=runs)


_STATUSES = {status.value: status for status in TaskStatus}


def listed_task_ids(conn: Connection, shipper_id: str, start_ms: int, end_ms: int,
                    offset: int, limit: int) -> list[tuple[str, TaskStatus]]:
    """The ids and statuses of the shipper's tasks whose current run started (or which were
    queued) in [start_ms, end_ms], by window, ties by task id (so that pages of one listing
    neither repeat nor skip a task while the ledger holds still): `limit` of them after the
    first `offset`. Two narrow columns: a listing reads the rest only of the tasks it does
    not hold already (`tasks_by_id`)."""
    rows = conn.execute(
        select(tasks.c.task_id, tasks.c.status)
        .where(tasks.c.shipper_id == shipper_id, tasks.c.run_start_ms >= start_ms,
               tasks.c.run_start_ms <= end_ms)
        .order_by(tasks.c.range_start_ms, tasks.c.task_id).offset(offset).limit(limit)).all()
    statuses = _STATUSES
    return [(task_id, statuses[status]) for task_id, status in rows]


# Ids per query: SQLite's oldest builds allow 999 bound parameters.
_IDS_PER_QUERY = 900


def tasks_by_id(conn: Connection, shipper_id: str, task_ids: Sequence[str]) -> list[Task]:
    """The shipper's tasks among `task_ids` as a listing shows them, in no order. Only those
    columns, made straight into tuples: the read behind every GET /tasks and
    DescribeShipperTasks, hundreds of rows each."""
    statuses = _STATUSES
    found: list[Task] = []
    for first in range(0, len(task_ids), _IDS_PER_QUERY):
        rows = conn.execute(
            select(tasks.c.task_id, tasks.c.topic_id, tasks.c.range_start_ms,
                   tasks.c.range_end_ms, tasks.c.run_start_ms, tasks.c.run_end_ms,
                   tasks.c.status, tasks.c.message)
            .where(tasks.c.shipper_id == shipper_id,
                   tasks.c.task_id.in_(task_ids[first:first + _IDS_PER_QUERY]))).all()
        found.extend(Task(task_id, shipper_id, topic_id, range_start, range_end, run_start,
                          run_end, statuses[status], message)
                     for task_id, topic_id, range_start, range_end, run_start, run_end, status,
                     message in rows)
    return found


def counted_tasks_by_id(conn: Connection, shipper_id: str,
                        task_ids: Sequence[str]) -> list[CountedTask]:
    """`tasks_by_id` with the ledger's counters of each task: integer columns, and the length
    of the `objects` array taken by the database (SQLite's and PostgreSQL's
    `json_array_length`), so no object list is decoded or sent. The read behind a detailed
    GET /tasks."""
    statuses = _STATUSES
    found: list[CountedTask] = []
    for first in range(0, len(task_ids), _IDS_PER_QUERY):
        rows = conn.execute(
            select(tasks.c.task_id, tasks.c.topic_id, tasks.c.range_start_ms,
                   tasks.c.range_end_ms, tasks.c.run_start_ms, tasks.c.run_end_ms,
                   tasks.c.status, tasks.c.message, tasks.c.records, tasks.c.records_filtered,
                   tasks.c.records_rejected, tasks.c.bytes_in, tasks.c.bytes_out,
                   func.json_array_length(tasks.c.objects), tasks.c.attempts)
            .where(tasks.c.shipper_id == shipper_id,
                   tasks.c.task_id.in_(task_ids[first:first + _IDS_PER_QUERY]))).all()
        found.extend(CountedTask(task_id, shipper_id, topic_id, range_start, range_end,
                                 run_start, run_end, statuses[status], message, records,
                                 filtered, rejected, bytes_in, bytes_out, objects or 0, attempts)
                     for task_id, topic_id, range_start, range_end, run_start, run_end, status,
                     message, records, filtered, rejected, bytes_in, bytes_out, objects,
                     attempts in rows)
    return found


def find_task(conn: Connection, shipper_id: str, task_id: str,
              run_limit: int) -> TaskDetail | None:
    """One task of the shipper with its latest `run_limit` runs (oldest first), or None."""
    row = conn.execute(select(tasks).where(tasks.c.task_id == task_id,
                                           tasks.c.shipper_id == shipper_id)).first()
    if row is None:
        return None
    runs = conn.execute(
        select(task_runs).where(task_runs.c.task_id == task_id)
        .order_by(task_runs.c.started_ms.desc()).limit(run_limit)).all()
    return _detail(row, [Run(r.attempt, r.owner, r.lease_token, r.started_ms, r.ended_ms,
                             r.lease_expires_ms, RunOutcome(r.outcome), r.message)
                         for r in reversed(runs)])


def windows_starting_in(conn: Connection, shipper_id: str, start_ms: int,
                        end_ms: int) -> list[TaskDetail]:
    """The shipper's tasks whose window starts in [start_ms, end_ms], by window, without
    runs: what an audit checks against the bucket."""
    rows = conn.execute(select(tasks).where(
        tasks.c.shipper_id == shipper_id, tasks.c.range_start_ms >= start_ms,
        tasks.c.range_start_ms <= end_ms).order_by(tasks.c.range_start_ms)).all()
    return [_detail(row, []) for row in rows]


def window_statuses(conn: Connection, shipper_id: str, start_ms: int,
                    end_ms: int) -> list[tuple[str, int, int, str]]:
    """(task_id, range_start_ms, range_end_ms, status) of the shipper's tasks whose window
    starts in [start_ms, end_ms), by window: what a coverage timeline draws. Four columns
    through the (shipper_id, range_start_ms) unique index and nothing decoded, so a range of
    ten thousand windows reads in milliseconds."""
    return list(conn.execute(select(
        tasks.c.task_id, tasks.c.range_start_ms, tasks.c.range_end_ms, tasks.c.status).where(
        tasks.c.shipper_id == shipper_id, tasks.c.range_start_ms >= start_ms,
        tasks.c.range_start_ms < end_ms).order_by(tasks.c.range_start_ms)).tuples().all())


def failed_task_ids(conn: Connection, shipper_id: str) -> list[str]:
    """The shipper's failed tasks, by window."""
    return list(conn.execute(select(tasks.c.task_id).where(
        tasks.c.shipper_id == shipper_id, tasks.c.status == TaskStatus.FAILED)
        .order_by(tasks.c.range_start_ms)).scalars())


def has_failed_task(shipper_id: ColumnElement[str]) -> ColumnElement[bool]:
    """SQL: the shipper `shipper_id` (a column of the caller's query) has a failed task."""
    return exists(select(tasks.c.task_id).where(tasks.c.shipper_id == shipper_id,
                                                tasks.c.status == TaskStatus.FAILED))


def _count_by_status(conn: Connection, *where: ColumnElement[bool]) -> dict[TaskStatus, int]:
    counts = dict.fromkeys(TaskStatus, 0)
    for status, count in conn.execute(select(tasks.c.status, func.count()).where(*where)
                                      .group_by(tasks.c.status)):
        counts[TaskStatus(status)] = int(count)
    return counts


@dataclass(frozen=True, slots=True)
class ShipperProgress:
    """How far a shipper's ledger has got."""

    counts: dict[TaskStatus, int]  # every status, 0 if none
    shipped_until_ms: int  # end of the newest window shipped with nothing pending before it
    oldest_failed_ms: int | None  # start of the oldest failed window


def progress_of(conn: Connection, shipper_id: str) -> ShipperProgress:
    of_shipper = tasks.c.shipper_id == shipper_id
    oldest_unfinished = conn.execute(select(func.min(tasks.c.range_start_ms)).where(
        of_shipper, tasks.c.status != TaskStatus.SUCCESS)).scalar()
    oldest_failed = conn.execute(select(func.min(tasks.c.range_start_ms)).where(
        of_shipper, tasks.c.status == TaskStatus.FAILED)).scalar()
    if oldest_unfinished is not None:
        shipped_until = int(oldest_unfinished)
    else:
        shipped_until = int(conn.execute(select(func.max(tasks.c.range_end_ms))
                                         .where(of_shipper)).scalar() or 0)
    return ShipperProgress(_count_by_status(conn, of_shipper), shipped_until,
                           None if oldest_failed is None else int(oldest_failed))


def shipped_until_all(conn: Connection) -> dict[str, int]:
    """For every shipper that is switched on and has windows left: the time up to which
    every window is shipped (the start of its oldest unshipped window, else the cursor of
    the next window to cut). Now minus it is the shipper's lag."""
    unshipped = (select(tasks.c.shipper_id, func.min(tasks.c.range_start_ms).label("oldest"))
                 .where(tasks.c.status != TaskStatus.SUCCESS)
                 .group_by(tasks.c.shipper_id).subquery())
    rows = conn.execute(
        select(shippers.c.shipper_id, shippers.c.next_window_ms, shippers.c.end_ms,
               unshipped.c.oldest)
        .select_from(shippers.outerjoin(unshipped,
                                        unshipped.c.shipper_id == shippers.c.shipper_id))
        .where(shippers.c.effective.is_(True))).all()
    found: dict[str, int] = {}
    for row in rows:
        if row.oldest is not None:
            found[row.shipper_id] = int(row.oldest)
        elif not (row.end_ms and row.next_window_ms >= row.end_ms):  # a finished backfill
            found[row.shipper_id] = int(row.next_window_ms)
    return found


@dataclass(frozen=True, slots=True)
class RangeProgress:
    """How much of a time range a shipper has shipped, from the tasks overlapping it."""

    shipped_ms: int  # range time covered by successful windows
    any_failed: bool
    any_started: bool  # a window of the range left `wait` at least once
    first_started_ms: int | None  # earliest run (or queueing) of a window of the range


def range_progress(conn: Connection, shipper_id: str, first_ms: int,
                   last_ms: int) -> RangeProgress:
    """Progress over [first_ms, last_ms) (historical shipping, spec §7.6)."""
    rows = conn.execute(select(tasks.c.status, tasks.c.range_start_ms, tasks.c.range_end_ms,
                               tasks.c.run_start_ms).where(
        tasks.c.shipper_id == shipper_id, tasks.c.range_start_ms < last_ms,
        tasks.c.range_end_ms > first_ms)).all()
    started = [r.run_start_ms for r in rows if r.run_start_ms is not None]
    return RangeProgress(
        shipped_ms=sum(min(r.range_end_ms, last_ms) - max(r.range_start_ms, first_ms)
                       for r in rows if r.status == TaskStatus.SUCCESS),
        any_failed=any(r.status == TaskStatus.FAILED for r in rows),
        any_started=any(r.status != TaskStatus.WAIT for r in rows),
        first_started_ms=min(started) if started else None)


def task_leased_by(conn: Connection, lease_prefix: str) -> str | None:
    """The running task whose lease token starts with `lease_prefix` (a worker's id)."""
    found: str | None = conn.execute(select(tasks.c.task_id).where(
        tasks.c.status == TaskStatus.RUNNING,
        tasks.c.lease_owner.startswith(lease_prefix, autoescape=True)).limit(1)).scalar()
    return found


@dataclass(frozen=True, slots=True)
class RunningTask:
    task_id: str
    shipper_id: str
    range_start_ms: int
    range_end_ms: int
    attempts: int
    lease_owner: str
    lease_expires_ms: int
    expired: bool  # its worker is gone or stalled; the next claim takes it over


def running_tasks(conn: Connection, now: int) -> list[RunningTask]:
    """Every running task of the deployment, the lease closest to expiry first."""
    return [RunningTask(r.task_id, r.shipper_id, r.range_start_ms, r.range_end_ms, r.attempts,
                        r.lease_owner or "", r.lease_expires_ms or 0,
                        (r.lease_expires_ms or 0) < now)
            for r in conn.execute(
                select(tasks.c.task_id, tasks.c.shipper_id, tasks.c.range_start_ms,
                       tasks.c.range_end_ms, tasks.c.attempts, tasks.c.lease_owner,
                       tasks.c.lease_expires_ms)
                .where(tasks.c.status == TaskStatus.RUNNING)
                .order_by(tasks.c.lease_expires_ms))]


@dataclass(frozen=True, slots=True)
class QueueSummary:
    counts: dict[TaskStatus, int]  # every status, 0 if none
    due: int  # waiting tasks a worker may claim now
    oldest_waiting_ms: int | None  # start of the oldest waiting window


def queue_summary(conn: Connection, now: int) -> QueueSummary:
    """The queue of the whole deployment."""
    waiting = tasks.c.status == TaskStatus.WAIT
    due = conn.execute(select(func.count()).select_from(tasks).where(
        waiting, tasks.c.next_attempt_ms <= now)).scalar_one()
    oldest = conn.execute(select(func.min(tasks.c.range_start_ms)).where(waiting)).scalar()
    return QueueSummary(_count_by_status(conn), int(due),
                        None if oldest is None else int(oldest))


@dataclass(frozen=True, slots=True)
class ShipperGauge:
    """A shipper's ledger state at one moment, for the metrics."""

    shipper_id: str
    topic_id: str
    windows: dict[TaskStatus, int]  # wait, running, failed (success is not counted)
    shipped_until_ms: int  # end of the newest window shipped with nothing pending before it
    oldest_failed_ms: int | None  # start of the oldest failed window
    blocked: bool


_PENDING = (TaskStatus.WAIT, TaskStatus.RUNNING, TaskStatus.FAILED)


def shipper_gauges(conn: Connection) -> list[ShipperGauge]:
    """Every effective shipper's pending windows, in one query: the shippers (bounded by the
    quotas) joined to their unfinished tasks grouped by status, through the status index
    (finished tasks, the ledger's bulk, are never read). A shipper whose cut windows all
    shipped has shipped up to its cursor, the end of the newest window cut."""
    pending = (select(tasks.c.shipper_id, tasks.c.status, func.count().label("n"),
                      func.min(tasks.c.range_start_ms).label("oldest"))
               .where(tasks.c.status.in_(_PENDING))
               .group_by(tasks.c.shipper_id, tasks.c.status).subquery())
    rows = conn.execute(
        select(shippers.c.shipper_id, shippers.c.topic_id, shippers.c.next_window_ms,
               shippers.c.blocked_since_ms, pending.c.status, pending.c.n, pending.c.oldest)
        .select_from(shippers.outerjoin(pending,
                                        pending.c.shipper_id == shippers.c.shipper_id))
        .where(shippers.c.effective.is_(True))).all()
    found: dict[str, tuple[Any, dict[TaskStatus, int], dict[TaskStatus, int]]] = {}
    for row in rows:
        shipper = found.setdefault(row.shipper_id,
                                   (row, dict.fromkeys(_PENDING, 0), {}))
        if row.status is not None:
            status = TaskStatus(row.status)
            shipper[1][status] = int(row.n)
            shipper[2][status] = int(row.oldest)
    result = []
    for row, counts, oldest in found.values():
        unfinished = list(oldest.values())
        result.append(ShipperGauge(
            row.shipper_id, row.topic_id, counts,
            min(unfinished) if unfinished else int(row.next_window_ms),
            oldest.get(TaskStatus.FAILED), row.blocked_since_ms is not None))
    return result

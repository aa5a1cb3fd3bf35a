"""A worker: claims a task, streams its window from the log store through the encoder into
the sink, and records the outcome in the ledger. Keys and bytes are deterministic, so a
task that runs again (after a crash, a lost lease or a retry) overwrites, never duplicates."""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from cls_shipper import logctx
from cls_shipper.errors import ShippingError
from cls_shipper.formats.encoder import Chunk, encode_window
from cls_shipper.ingest.decode import decompress
from cls_shipper.model.naming import ObjectNaming
from cls_shipper.model.objects import ObjectWriter, ShippedObject
from cls_shipper.shipping import ledger, probing
from cls_shipper.sinks import Sink
from cls_shipper.store import Database
from cls_shipper.store.chunks import read_window
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.worker")


class _Abandoned(Exception):  # control flow, never reported as an error
    """The worker is stopping and its grace period is over: give the task back."""


@dataclass
class Stopping:
    """How a worker process is told to stop. `stop`: claim nothing more, finish the task in
    hand; `abandon`: the grace period is over, hand that task back now (its open object is
    aborted, the ledger releases it). `in_hand` is the task being shipped, so the stop
    watchdog can release it when the shipping thread is stuck in a store call."""

    stop: threading.Event = field(default_factory=threading.Event)
    abandon: threading.Event = field(default_factory=threading.Event)
    in_hand: ledger.Claimed | None = None


@dataclass
class _WindowReader:
    """Feeds the encoder and remembers the offsets it saw."""

    db: Database
    task: ledger.Claimed
    lease_lost: Callable[[], bool] = lambda: False
    abandon: Callable[[], bool] = lambda: False
    first_offset: int | None = None
    last_offset: int | None = None
    chunks: int = field(default=0)

    def payloads(self) -> Iterator[Chunk]:
        for chunk in read_window(self.db, self.task.topic_id, self.task.range_start_ms,
                                 self.task.range_end_ms):
            if self.lease_lost():
                # Another worker has this task now: stop rather than race it to the keys.
                raise ShippingError("lease lost: another worker took this task over",
                                    transient=True)
            if self.abandon():
                # Raised through the encoder, which aborts the open part: no partial object.
                raise _Abandoned
            if self.first_offset is None:
                self.first_offset = chunk.first_offset
            self.last_offset = chunk.first_offset + chunk.record_count - 1
            self.chunks += 1
            yield (decompress(chunk.codec, chunk.payload, chunk.raw_size), chunk.client_ip,
                   chunk.first_offset)


def ship(db: Database, sink: Sink, task: ledger.Claimed,
         max_part_raw_bytes: int | None = None,
         lease_lost: Callable[[], bool] = lambda: False,
         abandon: Callable[[], bool] = lambda: False) -> ledger.Outcome:
    """Ship one task's window; raises ShippingError with a message a user can act on (and
    `_Abandoned` once `abandon()` is true, between two chunks)."""
    config = task.config
    naming = ObjectNaming.for_window(task.shipper_id, task.range_start_ms, config)
    reader = _WindowReader(db, task, lease_lost, abandon)

    def open_part(index: int) -> ObjectWriter:
        return sink.open_writer(config.bucket, naming.key(index, reader.first_offset or 0),
                                content_type=naming.content_type,
                                storage_class=config.storage_type)

    def open_rejects() -> ObjectWriter:
        # Opened only once a record is rejected, so the window's first offset is known.
        return sink.open_writer(config.bucket, naming.rejects_key(reader.first_offset or 0),
                                content_type=naming.rejects_content_type,
                                storage_class=config.storage_type)

    result = encode_window(reader.payloads(), config, open_part, max_part_raw_bytes,
                           open_rejects)
    written = [ShippedObject(key=part.written.key, size=part.written.size, md5=part.written.md5,
                             sha256=part.written.sha256, records=part.records,
                             raw_bytes=part.raw_bytes) for part in result.parts]
    if result.rejects is not None:
        rejects = result.rejects
        written.append(ShippedObject(
            key=rejects.written.key, size=rejects.written.size, md5=rejects.written.md5,
            sha256=rejects.written.sha256, records=rejects.records,
            raw_bytes=rejects.raw_bytes, kind="rejects"))
    return ledger.Outcome(
        records=result.records, records_filtered=result.records_filtered,
        bytes_in=result.raw_bytes, bytes_out=result.out_bytes,
        first_offset=reader.first_offset, last_offset=reader.last_offset, objects=written,
        records_rejected=result.records_rejected)


class _LeaseKeeper(threading.Thread):
    """Renews the lease while a task runs, so a long window is not taken over."""

    def __init__(self, db: Database, task: ledger.Claimed, lease_ms: int) -> None:
        super().__init__(daemon=True, name=f"lease-{task.task_id[:8]}")
        self.db, self.task, self.lease_ms = db, task, lease_ms
        self.done = threading.Event()
        self.lost = False
        # Its lines carry the task's ids too: a thread starts with an empty context.
        self._context = contextvars.copy_context()

    def run(self) -> None:
        self._context.run(self._renew)

    def _renew(self) -> None:
        while not self.done.wait(self.lease_ms / 3000):
            try:
                if not ledger.renew(self.db, self.task, now_ms(), self.lease_ms):
                    self.lost = True
                    return
            except Exception:
                log.warning("lease renewal failed for %s", self.task.task_id, exc_info=True)


@dataclass
class WorkerSettings:
    lease_ms: int
    policy: ledger.RetryPolicy
    poll_seconds: float = 0.5


def run_one(db: Database, sink: Sink, worker_id: str, settings: WorkerSettings,
            stopping: Stopping | None = None) -> bool:
    """Claim and run one due task; False when there was none."""
    stopping = stopping or Stopping()
    task = ledger.claim(db, worker_id, now_ms(), settings.lease_ms,
                       max_attempts=settings.policy.max_attempts)
    if task is None:
        return False
    stopping.in_hand = task
    # Every line logged while it runs names the shipper, the task and the topic.
    with logctx.bound(shipper_id=task.shipper_id, task_id=task.task_id,
                      topic_id=task.topic_id):
        _run_claimed(db, sink, task, settings, stopping)
    return True


def _run_claimed(db: Database, sink: Sink, task: ledger.Claimed, settings: WorkerSettings,
                 stopping: Stopping) -> None:
    keeper = _LeaseKeeper(db, task, settings.lease_ms)
    keeper.start()
    try:
        outcome = ship(db, sink, task, lease_lost=lambda: keeper.lost,
                       abandon=stopping.abandon.is_set)
    except _Abandoned:
        keeper.done.set()
        released = ledger.release(db, task, now_ms())
        log.info("task %s (%s) %s: the worker is stopping", task.task_id, task.shipper_id,
                 "released" if released else "not released (lease already lost)")
        return
    except Exception as exc:
        keeper.done.set()
        if isinstance(exc, ShippingError):
            failure = exc
        else:
            log.exception("task %s failed unexpectedly", task.task_id)
            failure = ShippingError.unexpected(exc)
        status = ledger.fail(db, task, now_ms(), failure, settings.policy)
        log.warning("task %s (%s) attempt %d: %s -> %s", task.task_id, task.shipper_id,
                    task.attempts, failure.message, status or "lease lost")
        return
    keeper.done.set()
    if not ledger.succeed(db, task, now_ms(), outcome):
        log.warning("task %s finished after its lease was lost; the new owner's outcome "
                    "stands (objects are identical)", task.task_id)


def run_loop(db: Database, sink: Sink, worker_id: str, settings: WorkerSettings,
             stop: threading.Event, stopping: Stopping | None = None) -> None:
    """Ship tasks until `stop` is set; the task in hand is finished first (or handed back
    when `stopping.abandon` is set)."""
    stopping = stopping or Stopping(stop=stop)
    while not stop.is_set():
        try:
            busy = run_one(db, sink, worker_id, settings, stopping)
            if not busy:  # idle: probe a blocked shipper's destination, if one is due
                busy = probing.probe_one(db, sink, settings.policy, settings.lease_ms)
        except Exception:
            log.exception("worker %s: claim failed; retrying", worker_id)
            busy = False
        stopping.in_hand = None
        if not busy:
            stop.wait(settings.poll_seconds)

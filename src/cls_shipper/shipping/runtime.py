"""Running the engine next to the API: the scheduler as a thread of the server process,
workers as separate processes (encoding is CPU-bound; processes scale past the GIL).

What runs depends on the node's role: `all` (the embedded default) runs everything, `api`
only serves HTTP, `scheduler` competes for the scheduler lock, `worker` runs `--workers`
worker processes, each one task at a time. Every node and worker process heartbeats into
the node registry."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from cls_shipper.logformat import configure_logging
from cls_shipper.settings import Settings
from cls_shipper.shipping import ledger, scheduler, worker
from cls_shipper.shipping.nodes import Heartbeat, Leadership, NodeInfo, node_id_of
from cls_shipper.shipping.notifier import Notifier
from cls_shipper.sinks import open_sink
from cls_shipper.store import Database, open_database
from cls_shipper.store.database import WORKER_POOL
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.runtime")


def worker_settings(settings: Settings) -> worker.WorkerSettings:
    return worker.WorkerSettings(
        lease_ms=int(settings.lease_seconds * 1000),
        policy=ledger.RetryPolicy(
            base_ms=int(settings.retry_base_seconds * 1000),
            cap_ms=int(settings.retry_backoff_cap_seconds * 1000),
            deadline_ms=int(settings.retry_deadline_seconds * 1000),
            max_attempts=settings.max_attempts),
    )


# Linux prctl(2) option: the kernel signals this process the moment its parent dies.
_PR_SET_PDEATHSIG = 1
# After the grace period the shipping thread hands its task back between two chunks. One
# stuck in a store call (an endpoint that does not answer) gets this long; then the task is
# released from the side and the process exits.
ABANDON_WAIT_SECONDS = 5.0
# What a stopping server gives its worker processes beyond the grace period: the wait above,
# releasing the task, deregistering. Past it they are killed.
STOP_MARGIN_SECONDS = ABANDON_WAIT_SECONDS + 5.0
_WATCH_SECONDS = 0.2


def _die_with_parent() -> bool:
    """Ask Linux to SIGTERM this process as soon as its parent dies: a SIGKILLed server
    cannot stop its workers itself. False where prctl is unavailable (polling covers it)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _worker_main(settings_json: str, worker_id: str, parent_pid: int, parent_id: str) -> None:
    """Entry point of a worker process.

    The main thread only watches; a thread ships. So signals are handled at once even while
    the shipping thread waits on the object store (Python runs handlers in the main thread
    only). SIGTERM (from the server, or from the kernel when the server died): claim nothing
    more, finish the task in hand within the grace period, else hand it back. A second
    SIGTERM, or a server that is gone (nobody waits for this process), hands it back now."""
    settings = Settings.model_validate_json(settings_json)
    # Same format and fields as the server's lines; `node` is this worker's id.
    configure_logging(settings, node=worker_id)
    terms: list[float] = []
    signal.signal(signal.SIGTERM, lambda *_: terms.append(time.monotonic()))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop
    _die_with_parent()  # set before the check below: a parent dying in between is seen

    def orphaned() -> bool:
        return os.getppid() != parent_pid

    db = open_database(settings.db_url, run_migrations=False, pool=WORKER_POOL,
                       application_name=f"cls-shipper worker {worker_id}")
    sink = open_sink(settings.object_store_url)
    # The worker id is the node id: its lease tokens start with it, which is how the
    # heartbeat (and `cls-shipper status`) finds its current task.
    heartbeat = Heartbeat(db, NodeInfo(worker_id, "worker", parent_id),
                          lease_prefix=worker_id + "/")
    heartbeat.start()
    stopping = worker.Stopping()
    shipping = threading.Thread(
        target=worker.run_loop, name="shipping", daemon=True,
        args=(db, sink, worker_id, worker_settings(settings), stopping.stop, stopping))
    shipping.start()
    abandon_at: float | None = None  # when the task in hand is to be handed back
    give_up_at: float | None = None  # when a shipping thread stuck in a call is left behind
    while shipping.is_alive():
        shipping.join(_WATCH_SECONDS)
        now = time.monotonic()
        gone = orphaned()
        if (terms or gone) and abandon_at is None:
            if gone:
                log.warning("server process is gone; worker hands its task back and exits")
            stopping.stop.set()
            abandon_at = now if gone else now + settings.grace_period
        if abandon_at is not None and (len(terms) > 1 or gone):
            abandon_at = min(abandon_at, now)
        if abandon_at is not None and now >= abandon_at and not stopping.abandon.is_set():
            stopping.abandon.set()
            give_up_at = now + ABANDON_WAIT_SECONDS
        if give_up_at is not None and now >= give_up_at and shipping.is_alive():
            _leave_stuck_task(db, stopping, heartbeat)
    heartbeat.stop()
    db.dispose()


def _leave_stuck_task(db: Database, stopping: worker.Stopping, heartbeat: Heartbeat) -> None:
    """The shipping thread is stuck in an object store call past the grace period: release
    its task from here (fenced by the lease, so a late finish cannot overwrite it) and exit
    without waiting for the call. Nothing partial becomes visible: a local object is still a
    hidden temporary file, an S3 one an uncompleted upload (see docs/object-storage.md)."""
    task = stopping.in_hand
    if task is not None:
        try:
            if ledger.release(db, task, now_ms()):
                log.warning("task %s released while its store call was still pending",
                            task.task_id)
        except SQLAlchemyError:
            log.warning("could not release task %s; its lease will expire", task.task_id,
                        exc_info=True)
    heartbeat.stop()
    logging.shutdown()
    os._exit(0)


@dataclass
class Engine:
    """The scheduler thread and worker processes of one server."""

    settings: Settings
    db: Database
    stop_event: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    processes: list[BaseProcess] = field(default_factory=list)
    node_id: str = field(default_factory=node_id_of)
    leadership: Leadership | None = None
    notifier: Notifier | None = None
    heartbeat: Heartbeat | None = None
    _stop_requests: int = 0

    def start(self) -> None:
        role = self.settings.role
        if role in ("all", "scheduler"):
            self.leadership = Leadership(self.db, self.node_id)
            thread = threading.Thread(
                target=scheduler.run_loop, name="scheduler", daemon=True,
                args=(self.db, self.settings.timezone, self.settings.scheduler_tick,
                      self.stop_event, self.leadership, self.settings.consumer_hold_days))
            thread.start()
            self.threads.append(thread)
            # Next to the scheduler, delivering only while it leads: one node delivers.
            lead = self.leadership
            self.notifier = Notifier(self.db, self.settings, lambda: lead.is_leader)
            thread = threading.Thread(target=self.notifier.run, name="notifier", daemon=True,
                                      args=(self.stop_event,))
            thread.start()
            self.threads.append(thread)
        if role in ("all", "worker"):
            spawn = multiprocessing.get_context("spawn")
            payload = self.settings.model_dump_json()
            for index in range(self.settings.workers):
                proc = spawn.Process(target=_worker_main, name=f"worker-{index}", daemon=True,
                                     args=(payload, f"{self.node_id}/w{index}", os.getpid(),
                                           self.node_id))
                proc.start()
                self.processes.append(proc)
        leadership = self.leadership
        self.heartbeat = Heartbeat(
            self.db, NodeInfo(self.node_id, role),
            leader=(lambda: leadership.is_leader) if leadership is not None else None)
        self.heartbeat.start()
        log.info("engine started: node=%s role=%s, scheduler=%s, workers=%d", self.node_id,
                 role, bool(self.threads), len(self.processes))

    def request_stop(self) -> None:
        """Begin a clean stop without waiting (safe in a signal handler): the scheduler stops
        ticking, worker processes claim nothing more and start their grace period. Called
        again, it tells them to hand their tasks back now."""
        self.stop_event.set()
        for proc in self.processes:
            if proc.is_alive():
                proc.terminate()
        self._stop_requests += 1

    def stop(self) -> None:
        """Stop and wait: worker processes get the grace period to finish their tasks (then
        hand them back), and are killed only if they outlive it by STOP_MARGIN_SECONDS; the
        scheduler releases its lock; the node leaves the registry."""
        if not self._stop_requests:
            self.request_stop()
        deadline = time.monotonic() + self.settings.grace_period + STOP_MARGIN_SECONDS
        for proc in self.processes:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                log.warning("worker process %s outlived the grace period; killed", proc.pid)
                proc.kill()
                proc.join(5)
        for thread in self.threads:
            thread.join(max(STOP_MARGIN_SECONDS, deadline - time.monotonic()))
        if self.heartbeat is not None:
            self.heartbeat.stop()

    def status(self) -> dict[str, Any]:
        return {"node_id": self.node_id,
                "scheduler": bool(self.threads),
                "leader": bool(self.leadership and self.leadership.is_leader),
                "notifications": self.notifier.counters.as_dict() if self.notifier else None,
                "workers": [{"name": p.name, "pid": p.pid, "alive": p.is_alive()}
                            for p in self.processes]}

"""Running the engine next to the API: the scheduler as a thread of the server process,
workers as separate processes (encoding is CPU-bound; processes scale past the GIL).

What runs depends on the node's role: `all` (the embedded default) runs everything, `api`
only serves HTTP, `scheduler` competes for the scheduler lock, `worker` runs `--workers`
worker processes, each one task at a time. Every node and worker process heartbeats into
the node registry."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from cls_shipper.settings import Settings
from cls_shipper.shipping import ledger, scheduler, worker
from cls_shipper.shipping.nodes import Heartbeat, Leadership, NodeInfo, node_id_of
from cls_shipper.sinks import open_sink
from cls_shipper.store import Database, open_database
from cls_shipper.store.database import WORKER_POOL

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


def _worker_main(settings_json: str, worker_id: str, parent_pid: int, parent_id: str) -> None:
    """Entry point of a worker process."""
    settings = Settings.model_validate_json(settings_json)
    logging.basicConfig(level=settings.log_level.upper(),
                        format=f"%(asctime)s %(levelname)s {worker_id}: %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when we stop

    def watch_parent() -> None:
        # A SIGKILLed server cannot stop its children; they notice and leave on their own.
        while not stop.wait(0.5):
            if os.getppid() != parent_pid:
                log.warning("server process is gone; worker exits")
                stop.set()

    threading.Thread(target=watch_parent, daemon=True).start()
    db = open_database(settings.db_url, run_migrations=False, pool=WORKER_POOL,
                       application_name=f"cls-shipper worker {worker_id}")
    sink = open_sink(settings.object_store_url)
    # The worker id is the node id: its lease tokens start with it, which is how the
    # heartbeat (and `cls-shipper status`) finds its current task.
    heartbeat = Heartbeat(db, NodeInfo(worker_id, "worker", parent_id),
                          lease_prefix=worker_id + "/")
    heartbeat.start()
    try:
        worker.run_loop(db, sink, worker_id, worker_settings(settings), stop)
    finally:
        heartbeat.stop()
        db.dispose()


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
    heartbeat: Heartbeat | None = None

    def start(self) -> None:
        role = self.settings.role
        if role in ("all", "scheduler"):
            self.leadership = Leadership(self.db, self.node_id)
            thread = threading.Thread(
                target=scheduler.run_loop, name="scheduler", daemon=True,
                args=(self.db, self.settings.timezone, self.settings.scheduler_tick,
                      self.stop_event, self.leadership))
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

    def stop(self, timeout: float = 10.0) -> None:
        self.stop_event.set()
        for proc in self.processes:
            proc.terminate()  # SIGTERM: the worker finishes its current step and exits
        deadline = time.monotonic() + timeout
        for proc in self.processes:
            proc.join(max(0.1, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
        for thread in self.threads:
            thread.join(max(0.1, deadline - time.monotonic()))
        if self.heartbeat is not None:
            self.heartbeat.stop()

    def status(self) -> dict[str, Any]:
        return {"node_id": self.node_id,
                "scheduler": bool(self.threads),
                "leader": bool(self.leadership and self.leadership.is_leader),
                "workers": [{"name": p.name, "pid": p.pid, "alive": p.is_alive()}
                            for p in self.processes]}

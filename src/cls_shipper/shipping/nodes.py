"""The node registry and the scheduler's leadership.

Every process of a deployment (an API node, a scheduler node, a worker node and each of its
worker processes) keeps a row in `nodes` fresh with a heartbeat; `cls-shipper status` reads
them. Rows are advisory: nothing depends on them for correctness (leases fence the tasks,
the advisory lock elects the scheduler).

Leadership: on PostgreSQL exactly one scheduler works at a time, the one holding a
session-level advisory lock on a connection of its own. When that process dies its session
ends and the lock is free; a standby scheduler takes it on its next tick. On SQLite there is
one process, and it is the scheduler.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    create_engine,
    delete,
    func,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from cls_shipper.shipping import ledger
from cls_shipper.store import Database
from cls_shipper.store.database import (
    LOCK_NAMESPACE,
    SCHEDULER_LOCK,
    TCP_KEEPALIVES,
    postgres_options,
)
from cls_shipper.store.schema import nodes
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.nodes")

HEARTBEAT_MS = 2_000
# A node not seen for this long is shown as stale (missed about five heartbeats).
STALE_MS = 10_000
# The leader forgets nodes gone for this long, so the registry does not grow forever.
FORGET_MS = 3_600_000
# The lock connection's application_name is this plus the node id: pg_stat_activity (and
# `cls-shipper status`) name the leader from it.
LEADER_APPLICATION_PREFIX = "cls-shipper scheduler "


def node_id_of(pid: int | None = None) -> str:
    return f"{socket.gethostname()}:{os.getpid() if pid is None else pid}"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    role: str
    parent_id: str | None = None


class Heartbeat(threading.Thread):
    """Registers a node and refreshes its row until stopped; a clean stop removes the row
    (a crashed node's row stays, and turns stale)."""

    def __init__(self, db: Database, node: NodeInfo, *,
                 leader: Callable[[], bool] | None = None,
                 lease_prefix: str | None = None, interval_ms: int = HEARTBEAT_MS) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{node.role}")
        self.db, self.node, self.interval_ms = db, node, interval_ms
        self._leader = leader
        # A worker's lease tokens start with its id: its running task is found by them.
        self._lease_prefix = lease_prefix
        self._halt = threading.Event()
        self.registered = threading.Event()
        self.last_beat_ms = 0  # when the row was last written

    def beat(self) -> None:
        now = now_ms()
        values: dict[str, Any] = {"last_seen_ms": now,
                  "leader": bool(self._leader()) if self._leader else False}
        with self.db.begin() as conn:
            if self._lease_prefix is not None:
                values["current_task_id"] = ledger.task_leased_by(conn, self._lease_prefix)
            updated = conn.execute(update(nodes).where(nodes.c.node_id == self.node.node_id)
                                   .values(**values)).rowcount
            if not updated:
                conn.execute(insert(nodes).values(
                    node_id=self.node.node_id, role=self.node.role,
                    parent_id=self.node.parent_id, host=socket.gethostname(), pid=os.getpid(),
                    started_ms=now, **{"current_task_id": None, **values}))
        self.last_beat_ms = now
        self.registered.set()

    def run(self) -> None:
        while True:
            try:
                self.beat()
            except SQLAlchemyError:
                log.warning("heartbeat of %s failed; retrying", self.node.node_id,
                            exc_info=True)
            if self._halt.wait(self.interval_ms / 1000):
                return

    def stop(self) -> None:
        self._halt.set()
        self.join(5)
        try:
            with self.db.begin() as conn:
                conn.execute(delete(nodes).where(nodes.c.node_id == self.node.node_id))
        except SQLAlchemyError:
            log.warning("could not deregister %s", self.node.node_id, exc_info=True)


def forget_dead_nodes(db: Database, now: int) -> int:
    with db.begin() as conn:
        result = conn.execute(delete(nodes).where(nodes.c.last_seen_ms < now - FORGET_MS))
    return int(result.rowcount or 0)


class Leadership:
    """Whether this process may run the scheduler. `check()` (once per tick) takes the lock
    if it is free and confirms it is still held otherwise."""

    def __init__(self, db: Database, node_id: str) -> None:
        self.db = db
        self.is_leader = db.is_sqlite
        self._application_name = LEADER_APPLICATION_PREFIX + node_id
        self._engine: Engine | None = None
        self._conn: Connection | None = None

    def _connect(self) -> Connection:
        if self._engine is None:
            # Its own engine without a pool: the lock lives exactly as long as this one
            # session, which no pool may recycle, ping-replace or hand to anyone else.
            # Autocommit, so the session is never idle in a transaction (which the server
            # would end, and the lock with it).
            self._engine = create_engine(
                self.db.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT",
                connect_args={"options": postgres_options(**TCP_KEEPALIVES),
                              "application_name": self._application_name[:63],
                              "connect_timeout": 10})
        return self._engine.connect()

    def check(self) -> bool:
        if self.db.is_sqlite:
            return True
        try:
            if self._conn is None:
                self._conn = self._connect()
            params = {"ns": LOCK_NAMESPACE, "key": SCHEDULER_LOCK}
            if self.is_leader:
                held = self._conn.execute(text(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                    " AND classid = :ns AND objid = :key AND objsubid = 2"
                    " AND pid = pg_backend_pid() AND granted)"), params).scalar()
            else:
                held = self._conn.execute(
                    text("SELECT pg_try_advisory_lock(:ns, :key)"), params).scalar()
                if held:
                    log.info("this node now leads the scheduler")
            self.is_leader = bool(held)
        except SQLAlchemyError:
            # The session is gone, and the lock with it (if we had it): start over.
            if self.is_leader:
                log.warning("lost the scheduler lock with its connection", exc_info=True)
            self.is_leader = False
            self._drop_connection()
        return self.is_leader

    def _drop_connection(self) -> None:
        if self._conn is not None:
            try:
                self._conn.invalidate()
                self._conn.close()
            except SQLAlchemyError:
                log.debug("closing a broken lock connection failed", exc_info=True)
            self._conn = None

    def release(self) -> None:
        """Give the lock up (clean shutdown), so a standby takes over at once."""
        if self._conn is not None:
            try:
                if self.is_leader:
                    self._conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"),
                                       {"ns": LOCK_NAMESPACE, "key": SCHEDULER_LOCK})
                self._conn.close()
            except SQLAlchemyError:
                log.debug("releasing the scheduler lock failed", exc_info=True)
            self._conn = None
        self.is_leader = self.db.is_sqlite
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def children_registered(db: Database, node_id: str) -> int:
    """How many processes of node `node_id` (its worker processes) are in the registry."""
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(nodes)
                                .where(nodes.c.parent_id == node_id)).scalar_one())

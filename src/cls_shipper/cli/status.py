"""`cls-shipper status`: the deployment as the database sees it: nodes (alive or stale), who
leads the scheduler, running tasks with their leases, and the queue."""

from __future__ import annotations

import json
import socket
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import SQLAlchemyError

from cls_shipper.cli.common import ConfigFile, DatabaseUrl, DataDir, Tz, settings_from, zone_named
from cls_shipper.model.task import TaskStatus
from cls_shipper.service.consumers import GroupState, group_states
from cls_shipper.shipping import ledger, outbox
from cls_shipper.shipping.nodes import LEADER_APPLICATION_PREFIX, STALE_MS
from cls_shipper.store import open_database
from cls_shipper.store.database import LOCK_NAMESPACE, SCHEDULER_LOCK, PoolSize
from cls_shipper.store.schema import nodes
from cls_shipper.timefmt import now_ms

console = Console()


@dataclass(frozen=True, slots=True)
class NodeRow:
    node_id: str
    role: str
    parent_id: str | None
    host: str
    pid: int
    started_ms: int
    last_seen_ms: int
    alive: bool
    leader: bool
    current_task_id: str | None


@dataclass(frozen=True, slots=True)
class Status:
    now_ms: int
    nodes: list[NodeRow]
    # The alive node whose heartbeat says it leads; on PostgreSQL also the database session
    # that holds the lock (the truth: the flag lags it by up to a heartbeat).
    leader: str | None
    lock_holder: dict[str, Any] | None
    running: list[ledger.RunningTask]
    queue: dict[str, int]  # every task status
    due: int
    oldest_waiting_ms: int | None
    # The notification outbox: pending, and given up or dropped in the last 7 days.
    notifications: dict[str, int]
    # Consumer groups: consumers, partitions, committed offsets and lag.
    consumer_groups: list[GroupState]


def read_status(conn: Connection, now: int, postgres: bool) -> Status:
    found = [NodeRow(r.node_id, r.role, r.parent_id, r.host, r.pid, r.started_ms,
                     r.last_seen_ms, r.last_seen_ms >= now - STALE_MS, bool(r.leader),
                     r.current_task_id)
             for r in conn.execute(select(nodes).order_by(nodes.c.role, nodes.c.node_id))]
    leader = next((n.node_id for n in found if n.leader and n.alive), None)
    lock_holder = None
    # On PostgreSQL the lock itself says who leads (a SIGKILLed leader's row still looks
    # alive for a few seconds; its session, and so its lock, is gone at once).
    if postgres:
        row = conn.execute(text(
            "SELECT a.pid, a.application_name, host(a.client_addr) AS client_addr"
            " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.classid = :ns AND l.objid = :key"
            " AND l.objsubid = 2 AND l.granted"
            # Advisory locks belong to one database; another deployment on the same server
            # holds its own scheduler lock.
            " AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"ns": LOCK_NAMESPACE, "key": SCHEDULER_LOCK}).first()
        if row is not None:
            lock_holder = {"backend_pid": row.pid, "application_name": row.application_name,
                           "client_addr": row.client_addr}
            leader = str(row.application_name).removeprefix(LEADER_APPLICATION_PREFIX)
        else:
            leader = None
    queue = ledger.queue_summary(conn, now)
    return Status(now, found, leader, lock_holder, ledger.running_tasks(conn, now),
                  {status.value: count for status, count in queue.counts.items()}, queue.due,
                  queue.oldest_waiting_ms, outbox.counts(conn), group_states(conn, now))


def _when(ms: int | None, zone: ZoneInfo) -> str:
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=zone).strftime("%Y-%m-%d %H:%M:%S")


def _ago(now: int, ms: int) -> str:
    return f"{(now - ms) / 1000:.1f}s ago" if ms <= now else f"in {(ms - now) / 1000:.1f}s"


def _print(status: Status, zone: ZoneInfo) -> None:
    now = status.now_ms
    table = Table("node", "role", "pid", "started", "last seen", "state", "task",
                  title=f"Nodes (times in {zone.key})")
    for node in status.nodes:
        state = ("alive" if node.alive else "[red]stale[/red]") + (
            " [bold]leader[/bold]" if node.leader and node.alive else "")
        table.add_row(node.node_id, node.role, str(node.pid), _when(node.started_ms, zone),
                      _ago(now, node.last_seen_ms), state, node.current_task_id or "")
    console.print(table)
    holder = status.lock_holder
    console.print(f"Scheduler leader: {status.leader or 'none alive'}" + (
        f" (lock held by database session {holder['backend_pid']}, "
        f"{holder['application_name']!r})" if holder else ""))
    running = Table("task", "shipper", "window start", "attempt", "lease owner", "lease expires",
                    title="Running tasks")
    for task in status.running:
        expires = _ago(now, task.lease_expires_ms) + (" [red](expired)[/red]" if task.expired
                                                      else "")
        running.add_row(task.task_id, task.shipper_id, _when(task.range_start_ms, zone),
                        str(task.attempts), task.lease_owner, expires)
    console.print(running)
    queue = status.queue
    console.print(f"Queue: {queue[TaskStatus.WAIT]} waiting ({status.due} due), "
                  f"{queue[TaskStatus.RUNNING]} running, {queue[TaskStatus.FAILED]} failed, "
                  f"{queue[TaskStatus.SUCCESS]} done; oldest waiting window: "
                  f"{_when(status.oldest_waiting_ms, zone)}")
    events = status.notifications
    lost = events[outbox.GIVEN_UP] + events[outbox.DROPPED]
    console.print(f"Notifications: {events[outbox.PENDING]} waiting for delivery; "
                  + (f"[red]{events[outbox.GIVEN_UP]} given up, {events[outbox.DROPPED]} "
                     "dropped in the last 7 days[/red] (see the server's log)" if lost
                     else "none lost in the last 7 days"))
    if status.consumer_groups:
        _print_groups(status)


def _print_groups(status: Status) -> None:
    now = status.now_ms
    table = Table("group", "consumers", "topic", "partition", "owner", "committed", "lag",
                  "oldest unprocessed", title="Consumer groups")
    for group in status.consumer_groups:
        alive = [name for name, _, live in group.consumers if live]
        gone = len(group.consumers) - len(alive)
        who = ", ".join(alive) or "[red]none alive[/red]"
        if gone:
            who += f" ({gone} silent)"
        for i, part in enumerate(group.partitions or []):
            table.add_row(
                f"{group.group} (timeout {group.timeout}s)" if i == 0 else "",
                who if i == 0 else "", part.topic_id, str(part.partition_id),
                part.owner or "-", "-" if part.committed_offset is None
                else str(part.committed_offset), str(part.lag),
                "-" if part.oldest_unprocessed_ms is None
                else _ago(now, part.oldest_unprocessed_ms))
        if not group.partitions:
            table.add_row(group.group, who, "-", "-", "-", "-", "0", "-")
    console.print(table)


def status(
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    tz: Tz = None,
) -> None:
    """Show the nodes, the scheduler leader, running tasks and the queue."""
    settings = settings_from(config, data_dir=data_dir, database_url=database_url)
    if settings.database_url is None and not (settings.data_dir / "cls-shipper.db").exists():
        raise typer.BadParameter(f"no database in {settings.data_dir.resolve()} "
                                 "(give --data-dir or --database-url)")
    # Read-only: a status check must not migrate a database its servers are not ready for.
    db = open_database(settings.db_url, run_migrations=False, pool=PoolSize(1, 0),
                       application_name=f"cls-shipper status {socket.gethostname()}")
    try:
        with db.read() as conn:
            current = read_status(conn, now_ms(), db.is_postgresql)
    except SQLAlchemyError as exc:
        console.print(f"[red]cannot read the status:[/red] {type(exc).__name__}: "
                      f"{getattr(exc, 'orig', exc)}")
        raise typer.Exit(1) from None
    finally:
        db.dispose()
    if as_json:
        print(json.dumps(asdict(current), indent=2))
    else:
        # The server's zone (its `timezone` setting, read from the same config) unless --tz.
        _print(current, zone_named(tz or settings.timezone))

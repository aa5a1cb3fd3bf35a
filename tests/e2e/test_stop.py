"""Stopping a node: SIGTERM on every role ends the process tree within the grace period with
exit code 0 and takes the node out of the registry; a worker stopped mid-task (or whose
server is SIGKILLed) hands its task back, so the next worker takes the window at once
instead of after the lease expires, and the window ships exactly once."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, func, select

from cls_shipper.store.schema import log_chunks, nodes, task_runs, tasks
from tests.e2e.test_scaleout import fresh_postgres, node, wait_for
from tests.e2e.test_shipping import (
    ENGINE_ENV,
    assert_each_once,
    new_bucket,
    new_topic,
    shipped_records,
    upload,
)
from tests.helpers.s3server import S3TestServer
from tests.helpers.server import LegacyClient, ServerProcess
from tests.helpers.shipping import legacy, wait_shipped

__all__ = ["fresh_postgres"]  # the fixture, shared with the scale-out tests

GRACE = 2.0
# What a stopping node may take beyond the grace period: handing back a task stuck in a
# store call (5 s), deregistering, interpreter exit; generous for a loaded machine.
MARGIN = 20.0


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (taken before the stop: once the parent
    is gone its children are re-parented)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry.name))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent has not reaped it yet


def sigterm_and_wait(proc: ServerProcess, timeout: float = GRACE + MARGIN) -> list[int]:
    """SIGTERM the node; assert it exits 0 in time and leaves no process behind."""
    assert proc.proc is not None
    family = descendants(proc.proc.pid)
    proc.proc.send_signal(signal.SIGTERM)
    assert proc.proc.wait(timeout) == 0, proc.log()[-3000:]
    wait_for("the node's processes to end", lambda: not any(alive(p) for p in family), 5)
    return family


def pg_engine(url: str) -> Engine:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))


def registry(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(r.node_id, r.role) for r in conn.execute(select(nodes.c.node_id, nodes.c.role))]


def test_sigterm_all_role_on_sqlite(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "all", args=["--workers", "2", "--grace-period",
                                                   str(GRACE)]).start()
    engine = create_engine(server.db_url)
    try:
        wait_for("the node and its workers in the registry", lambda: len(registry(engine)) == 3)
        assert server.proc is not None
        family = sigterm_and_wait(server)
        assert len(family) >= 2  # the two worker processes were there
        assert registry(engine) == []
        assert "stopped cleanly" in server.log()
    finally:
        server.stop()
        engine.dispose()


def test_a_signal_delivered_twice_is_one_stop(tmp_path: Path) -> None:
    """`make run` stopped by a terminal or a supervisor gets its SIGTERM twice at once (the
    process group and the process): that is one clean stop, not a hurried one, and nothing
    is logged as an error."""
    server = ServerProcess(tmp_path / "twice", args=["--grace-period", str(GRACE)]).start()
    try:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        # Apart, or the kernel merges them into one pending signal.
        wait_for("the first signal to be handled", lambda: "stopping" in server.log(), 10)
        server.proc.send_signal(signal.SIGTERM)
        assert server.proc.wait(GRACE + MARGIN) == 0, server.log()[-3000:]
        log = server.log()
        assert "stopped cleanly" in log and "hurrying" not in log
        assert "Traceback" not in log and "ERROR" not in log, log[-3000:]
    finally:
        server.stop()


@pytest.mark.parametrize("role", ["api", "worker", "scheduler"])
def test_sigterm_each_role_on_postgresql(tmp_path: Path, fresh_postgres: str,
                                         s3_server: S3TestServer, role: str) -> None:
    proc = node(tmp_path, fresh_postgres, s3_server, role, workers=2 if role == "worker" else 0)
    proc.args += ["--grace-period", str(GRACE)]
    engine = pg_engine(fresh_postgres)
    try:
        proc.start(timeout=60)
        wait_for("the node in the registry", lambda: bool(registry(engine)))
        sigterm_and_wait(proc)
        assert registry(engine) == []
        with engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(tasks)
                                .where(tasks.c.status == "running")).scalar_one() == 0
    finally:
        proc.stop()
        engine.dispose()


def test_a_stopped_scheduler_hands_over_at_once(tmp_path: Path, fresh_postgres: str,
                                                s3_server: S3TestServer) -> None:
    """The leader's lock is released on SIGTERM: the standby leads on its next tick, not
    after the leader's session times out."""
    first, second = (node(tmp_path, fresh_postgres, s3_server, "scheduler") for _ in range(2))
    engine = pg_engine(fresh_postgres)
    try:
        first.start(timeout=60)
        wait_for("the first scheduler to lead", lambda: _leader(engine) is not None)
        second.start(timeout=60)
        assert first.proc is not None and second.proc is not None
        standby = second.proc.pid
        sigterm_and_wait(first)
        wait_for("the standby to lead", lambda: _leader(engine) == standby, 10)
    finally:
        first.stop()
        second.stop()
        engine.dispose()


def _leader(engine: Engine) -> int | None:
    with engine.connect() as conn:
        pid = conn.execute(select(nodes.c.pid).where(nodes.c.leader.is_(True))).scalar()
    return None if pid is None else int(pid)


@pytest.fixture()
def hanging(s3_server: S3TestServer) -> Iterator[S3TestServer]:
    yield s3_server
    s3_server.start()


def _stuck_task(engine: Engine, topic: str) -> tuple[str, str, int]:
    """The running task whose window holds the topic's records: (task id, run token, lease
    expiry). Empty windows ship without the store; this one waits on it."""
    with engine.connect() as conn:
        first = conn.execute(select(func.min(log_chunks.c.ingest_ms))
                             .where(log_chunks.c.topic_id == topic)).scalar()
        if first is None:
            raise LookupError
        row = conn.execute(select(tasks.c.task_id, tasks.c.lease_owner,
                                  tasks.c.lease_expires_ms).where(
            tasks.c.topic_id == topic, tasks.c.range_start_ms <= first,
            tasks.c.range_end_ms > first, tasks.c.status == "running")).first()
    if row is None:
        raise LookupError
    return row.task_id, row.lease_owner, row.lease_expires_ms


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_a_worker_stopping_mid_task_hands_it_back(
        tmp_path: Path, fresh_postgres: str, hanging: S3TestServer, how: str) -> None:
    """The store hangs while a node ships a window. SIGTERM (grace 2 s) or SIGKILL of the
    server: the worker process releases the task and is gone well inside one lease (60 s);
    a worker started afterwards claims the window before the old lease would have expired,
    and it ships exactly once."""
    s3 = hanging
    env = {**s3.env, **ENGINE_ENV, "CLS_SHIPPER_LEASE_SECONDS": "60"}
    args = ["--min-interval", "1", "--object-store", s3.sink_url, "--workers", "1",
            "--grace-period", str(GRACE)]
    first = ServerProcess(tmp_path / "first", args=args, env=env, database_url=fresh_postgres)
    second = ServerProcess(tmp_path / "second", args=args, env=env,
                           database_url=fresh_postgres)
    engine = pg_engine(fresh_postgres)
    try:
        first.start(timeout=60)
        client = LegacyClient(first.base_url)
        topic, bucket = new_topic(client), new_bucket(s3)
        shipper_id = client.call("POST", "/shipper", json={
            "topic_id": topic, "bucket": bucket, "prefix": "stop/", "shipper_name": "stop",
            "interval": 1, "compress": {"format": "gzip"}})["shipper_id"]
        s3.hang()
        upload(first, topic, 0, 500)
        found: list[tuple[str, str, int]] = []

        def stuck() -> bool:
            try:
                found.append(_stuck_task(engine, topic))
            except LookupError:
                return False
            return True

        wait_for("the window with the records to be running", stuck, 60)
        task_id, token, _ = found[-1]
        assert first.proc is not None
        family = descendants(first.proc.pid)
        assert family
        if how == "sigterm":
            sigterm_and_wait(first)
            assert "stopped cleanly" in first.log()
        else:
            first.kill()
            # Told by the kernel (or noticing the parent is gone), the worker hands back
            # its task at once: gone far inside the 60 s lease.
            wait_for("the orphaned worker to exit", lambda: not any(alive(p) for p in family),
                     GRACE + MARGIN)
        with engine.connect() as conn:
            task = conn.execute(select(tasks).where(tasks.c.task_id == task_id)).one()
            run = conn.execute(select(task_runs).where(task_runs.c.lease_token == token)).one()
        assert task.status == "wait" and task.lease_owner is None
        assert task.attempts == 0  # the released attempt was given back
        assert run.outcome == "released", run
        old_expiry = run.lease_expires_ms

        s3.start()
        second.start(timeout=60)
        second_client = LegacyClient(second.base_url)
        done_at = time.time() * 1000
        wait_shipped(second_client, shipper_id, done_at, timeout=120)
        with engine.connect() as conn:
            runs = conn.execute(select(task_runs).where(task_runs.c.task_id == task_id)
                                .order_by(task_runs.c.started_ms)).all()
        assert [r.outcome for r in runs] == ["released", "success"], runs
        assert runs[1].started_ms < old_expiry  # taken at once, not after the lease expired
        assert_each_once(shipped_records(s3, second_client, shipper_id, bucket, "json", "gzip"),
                         range(500))
        report = second_client.call("GET", "/audit", {
            "shipper_id": shipper_id, "start_time": legacy(done_at - 600_000),
            "end_time": legacy(done_at)})
        assert report["clean"] and report["records"] == 500, report
    finally:
        s3.start()
        first.stop()
        second.stop()
        engine.dispose()

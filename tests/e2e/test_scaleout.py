"""Scale-out on PostgreSQL: several cls-shipper processes by role on one database. Logs go in
through two API nodes (official SDK), three worker nodes and two schedulers ship them to an
S3-compatible server; a worker and the leading scheduler are SIGKILLed mid-run. Every record
must be in the bucket exactly once, every window `success`, and the run log must show no
task run by two workers at once (unless the earlier run's lease had provably expired)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select

from cls_shipper.service import Context, shippers
from cls_shipper.settings import Settings
from cls_shipper.shipping import ledger
from cls_shipper.store import open_database
from cls_shipper.store.schema import nodes, task_runs, tasks
from tests.conftest import postgres_base
from tests.e2e.test_shipping import (
    ENGINE_ENV,
    new_bucket,
    new_topic,
    shipped_records,
    upload,
)
from tests.helpers.s3server import S3TestServer
from tests.helpers.server import (
    LegacyClient,
    ServerProcess,
    create_postgres_database,
    drop_postgres_databases,
    node_registered,
)
from tests.helpers.shipping import parse_legacy, wait_shipped
from tests.unit.store.test_store import _shipper


def status_json(database_url: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "cls_shipper", "status", "--json",
                           "--database-url", database_url],
                          capture_output=True, text=True, timeout=60, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture()
def fresh_postgres() -> Iterator[str]:
    base = postgres_base()
    names: list[str] = []
    url = create_postgres_database(base, names)
    try:
        yield url
    finally:
        drop_postgres_databases(base, names)


def node(data_dir: Path, database_url: str, s3: S3TestServer, role: str,
         workers: int = 0) -> ServerProcess:
    args = ["--role", role, "--min-interval", "1", "--object-store", s3.sink_url]
    ready = None
    if role == "worker":
        args += ["--workers", str(workers)]
    if role in ("worker", "scheduler"):
        def ready(proc: ServerProcess) -> bool:
            assert proc.proc is not None
            return node_registered(database_url, proc.proc.pid, workers)
    return ServerProcess(data_dir / f"{role}-{len(list(data_dir.glob(role + '-*')))}",
                         args=args, env={**s3.env, **ENGINE_ENV}, database_url=database_url,
                         ready=ready)


def start_all(procs: list[ServerProcess]) -> None:
    """Start at once (concurrent migrations and key set-up on a fresh database)."""
    errors: list[BaseException] = []

    def start(proc: ServerProcess) -> None:
        try:
            proc.start(timeout=60)
        except (RuntimeError, OSError) as exc:  # reported below, with the others'
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(p,)) for p in procs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


def sigkill_node(engine: Engine, proc: ServerProcess) -> list[int]:
    """SIGKILL a node and its worker processes at once, as if its machine died."""
    assert proc.proc is not None
    with engine.connect() as conn:
        node_id = conn.execute(select(nodes.c.node_id)
                               .where(nodes.c.pid == proc.proc.pid)).scalar_one()
        children = conn.execute(select(nodes.c.pid)
                                .where(nodes.c.parent_id == node_id)).scalars().all()
    for pid in children:
        os.kill(pid, signal.SIGKILL)
    proc.kill()
    return list(children)


def assert_no_overlapping_runs(engine: Engine, task_ids: list[str]) -> dict[str, int]:
    """From the run log: per task, each run starts after the previous one ended, or after
    its lease expired (a run taken over); exactly one run succeeded; none still running."""
    outcomes: dict[str, int] = {}
    with engine.connect() as conn:
        rows = conn.execute(select(task_runs).where(task_runs.c.task_id.in_(task_ids))
                            .order_by(task_runs.c.task_id, task_runs.c.started_ms)).all()
    by_task: dict[str, list[Any]] = {}
    for row in rows:
        by_task.setdefault(row.task_id, []).append(row)
        outcomes[row.outcome] = outcomes.get(row.outcome, 0) + 1
    assert set(by_task) == set(task_ids)
    for task_id, runs in by_task.items():
        assert [r.outcome for r in runs].count("success") == 1, runs
        assert all(r.outcome != "running" and r.ended_ms is not None for r in runs), runs
        for before, after in itertools.pairwise(runs):
            ended_in_time = before.ended_ms <= after.started_ms
            provably_expired = (before.outcome in ("expired", "lease_lost")
                                and before.lease_expires_ms < after.started_ms)
            assert ended_in_time or provably_expired, (task_id, before, after)
            assert before.owner != after.owner or ended_in_time
    return outcomes


def test_two_apis_three_workers_survive_sigkill(
        tmp_path: Path, fresh_postgres: str, s3_server: S3TestServer) -> None:
    url = fresh_postgres
    apis = [node(tmp_path, url, s3_server, "api") for _ in range(2)]
    schedulers = [node(tmp_path, url, s3_server, "scheduler") for _ in range(2)]
    workers = [node(tmp_path, url, s3_server, "worker", workers=1) for _ in range(3)]
    everyone = apis + schedulers + workers
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        start_all(everyone)
        status = status_json(url)
        assert status["leader"] in {n["node_id"] for n in status["nodes"]
                                    if n["role"] == "scheduler"}
        assert sum(n["role"] == "worker" for n in status["nodes"]) == 6  # 3 nodes + 3 procs
        assert sum(n["role"] == "api" and n["alive"] for n in status["nodes"]) == 2

        client = LegacyClient(apis[0].base_url)
        topic = new_topic(client)
        by_name: dict[str, tuple[str, str]] = {}
        for name in ("a", "b", "c"):
            bucket = new_bucket(s3_server)
            by_name[name] = (bucket, client.call("POST", "/shipper", json={
                "topic_id": topic, "bucket": bucket, "prefix": f"{name}/",
                "shipper_name": name, "interval": 1,
                "compress": {"format": "gzip"}})["shipper_id"])

        # Two uploaders, one per API node, until told to stop.
        stop = threading.Event()
        sent = [0, 0]
        per_batch = 400

        def feed(index: int) -> None:
            batch = 0
            while not stop.is_set():
                first = (batch * 2 + index) * per_batch
                upload(apis[index], topic, first, per_batch, batch=per_batch)
                sent[index] += 1
                batch += 1

        feeders = [threading.Thread(target=feed, args=(i,)) for i in range(2)]
        for feeder in feeders:
            feeder.start()
        try:
            # Mid-run: kill a worker while it holds a task (when one is seen in time).
            wait_for("a first shipped window", lambda: status_json(url)["queue"]["success"] > 0,
                     60)
            victim = workers[0]
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    owners = set(conn.execute(select(task_runs.c.owner)
                                              .where(task_runs.c.outcome == "running"))
                                 .scalars())
                busy = [w for w in workers if w.proc is not None
                        and any(o.startswith(f"{os.uname().nodename}:{w.proc.pid}/")
                                for o in owners)]
                if busy:
                    victim = busy[0]
                    break
                time.sleep(0.02)
            sigkill_node(engine, victim)
            # ... and the leading scheduler; the standby takes over.
            leader = status_json(url)["leader"]
            leading = next(s for s in schedulers if s.proc is not None
                           and leader.endswith(f":{s.proc.pid}"))
            leading.kill()
            standby = next(s for s in schedulers if s is not leading)
            assert standby.proc is not None
            standby_pid = standby.proc.pid
            wait_for("the standby scheduler to lead", lambda: str(
                status_json(url)["leader"]).endswith(f":{standby_pid}"), 30)
            time.sleep(2)  # more windows cut by the new leader while uploads go on
        finally:
            stop.set()
            for feeder in feeders:
                feeder.join()
        done_at = time.time() * 1000
        total = (sent[0] + sent[1]) * per_batch
        expected = {(b * 2 + i) * per_batch + k for i in range(2) for b in range(sent[i])
                    for k in range(per_batch)}
        assert len(expected) == total

        reader = LegacyClient(apis[1].base_url)
        all_tasks: list[str] = []
        for bucket, shipper_id in by_name.values():
            listed = wait_shipped(reader, shipper_id, done_at, timeout=120)
            # The windows up to the last upload (the scheduler goes on cutting empty ones).
            covering = [t for t in listed if parse_legacy(t["range_start"]) <= done_at]
            assert all(t["status"] == "success" for t in covering)
            all_tasks += [t["task_id"] for t in covering]
            records = shipped_records(s3_server, reader, shipper_id, bucket, "json", "gzip")
            seqs = Counter(int(r["seq"]) for r in records)
            assert [s for s, n in seqs.items() if n > 1] == []  # nothing twice
            assert set(seqs) == expected  # nothing lost
        with engine.connect() as conn:
            statuses = set(conn.execute(select(tasks.c.status)
                                        .where(tasks.c.task_id.in_(all_tasks))).scalars())
        assert statuses == {"success"}
        outcomes = assert_no_overlapping_runs(engine, all_tasks)
        detail = reader.call("GET", "/task", {"shipper_id": by_name["a"][1],
                                              "task_id": all_tasks[0]})
        assert detail["runs"] and detail["runs"][-1]["outcome"] == "success"
        print("run outcomes:", outcomes)

        final = status_json(url)
        assert final["leader"].endswith(f":{standby.proc.pid}")
        assert final["queue"]["failed"] == 0
    finally:
        for proc in everyone:
            proc.stop()
        engine.dispose()


def test_claims_take_turns_between_shippers(database_url: str) -> None:
    """A shipper with a backlog does not starve another: claims go to the shipper with the
    fewest running tasks first."""

    ctx = Context(open_database(database_url),
                  Settings(min_interval=1, quota_logsets=1000, check_destination=False))
    _, busy = _shipper(ctx, interval=1)
    start = shippers.get(ctx, busy).progress.next_window_ms
    ledger.seal_topics(ctx.db, start + 20_000)
    ledger.cut_windows(ctx.db, start + 20_000, "UTC")  # 20 windows of backlog
    _, other = _shipper(ctx, interval=5)
    later = start + 30_000
    ledger.seal_topics(ctx.db, later)
    ledger.cut_windows(ctx.db, later, "UTC")
    first = ledger.claim(ctx.db, "w1", later, 60_000)
    second = ledger.claim(ctx.db, "w2", later, 60_000)
    assert first is not None and second is not None
    assert {first.shipper_id, second.shipper_id} == {busy, other}
    ctx.db.dispose()


def test_status_names_the_leader_of_its_own_database(
        tmp_path: Path, fresh_postgres: str, s3_server: S3TestServer) -> None:
    """Two deployments on one PostgreSQL server, each in its own database: each one's status
    names its own scheduler leader, never the other's (advisory locks are per database)."""
    base = postgres_base()
    names: list[str] = []
    other_url = create_postgres_database(base, names)
    leader = node(tmp_path / "a", fresh_postgres, s3_server, "scheduler")
    try:
        leader.start(timeout=60)
        assert leader.proc is not None
        wait_for("the scheduler to lead",
                 lambda: status_json(fresh_postgres)["leader"] is not None)
        assert status_json(fresh_postgres)["leader"].endswith(f":{leader.proc.pid}")
        open_database(other_url).dispose()  # the other deployment's schema, no node running
        assert status_json(other_url)["leader"] is None
    finally:
        leader.stop()
        drop_postgres_databases(base, names)

"""Shipping throughput with 1, 2 and 4 worker processes on one machine, in one run.

The same data for every run: one topic with pre-loaded chunks (LogGroupLists of 1,000
nginx-style records, LZ4, as uploads are stored) spread over `--windows` windows, shipped by
`--shippers` shippers (gzip JSON lines) into a file sink in a temp dir. Each run resets the
tasks to `wait`, starts N worker processes (the engine's own `worker.run_one` loop), lets
them go at once and stops the clock when the queue is empty. Process start-up is outside
the clock. Prints records/s, MB/s of raw JSON lines, and the ratio to one worker.

    .venv/bin/python bench/scale.py [--database-url postgresql://...] [--windows 12]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import shutil
import tempfile
import time
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from cls_shipper.ingest.cls_pb import LogGroupList
from cls_shipper.ingest.decode import compress_lz4
from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.service import Context, logsets, shippers, topics
from cls_shipper.service.shipper_rules import defaults
from cls_shipper.settings import Settings
from cls_shipper.shipping import ledger, worker
from cls_shipper.sinks import open_sink
from cls_shipper.store import open_database
from cls_shipper.store.database import WORKER_POOL
from cls_shipper.store.schema import log_chunks, task_runs, tasks
from cls_shipper.store.schema import topics as topics_table

MB = 1_000_000
INTERVAL_S = 60
LOGS_PER_CHUNK = 1000
_PATHS = ["/", "/index.html", "/api/v1/users/{n}", "/api/v1/orders/{n}/items", "/search",
          "/static/js/app.{h}.js", "/img/{h}.png", "/cart/{n}", "/login"]
_AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/{v}.0.0.0 Safari/537.36", "curl/8.{v}.0", "python-requests/2.{v}.0",
           "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0"]


def nginx_chunk(rng: random.Random, start_ms: int, index: int) -> bytes:
    """One upload's LogGroupList (uncompressed): 1,000 nginx access-log records."""
    message = LogGroupList()
    group = message.logGroupList.add()
    group.source = f"10.0.{index % 4}.{index % 250 + 1}"
    group.filename = "/var/log/nginx/access.log"
    tag = group.logTags.add()
    tag.key, tag.value = "cluster", "prod-a"
    for i in range(LOGS_PER_CHUNK):
        ms = start_ms + index * 2000 + i * 2
        fields = (
            ("remote_addr", f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
                            f".{rng.randint(1, 254)}"),
            ("time_local", time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(ms // 1000))),
            ("method", rng.choices(["GET", "POST", "PUT"], [85, 12, 3])[0]),
            ("request_uri", rng.choice(_PATHS).format(n=rng.randint(1, 9_999_999),
                                                      h=f"{rng.getrandbits(40):010x}")),
            ("status", rng.choices(["200", "304", "404", "500"], [86, 6, 6, 2])[0]),
            ("body_bytes_sent", str(rng.randint(0, 250_000))),
            ("http_user_agent", rng.choice(_AGENTS).format(v=rng.randint(1, 130))),
            ("request_time", f"{rng.expovariate(20):.3f}"),
            ("request_id", f"{rng.getrandbits(128):032x}"),
        )
        log = group.logs.add()
        log.time = ms
        for key, value in fields:
            content = log.contents.add()
            content.key, content.value = key, value
    return bytes(message.SerializeToString())


def preload(url: str, windows: int, chunks_per_window: int, shipper_count: int) -> int:
    """Topic, shippers and chunks; the windows cut into tasks. Returns the task count."""
    ctx = Context(open_database(url), Settings(min_interval=1, quota_shippers=100))
    logset = logsets.create(ctx, f"bench-{os.getpid()}", 7)
    topic = topics.create(ctx, logset, "nginx")
    cursor = 0
    for index in range(shipper_count):
        config = ShipperConfig(**{**defaults("legacy"), "topic_id": topic, "bucket": "bench",
                                  "prefix": f"s{index}/", "shipper_name": f"s{index}",
                                  "interval": INTERVAL_S, "compress": "gzip"})
        shipper_id = shippers.create(ctx, config, "legacy")
        cursor = shippers.get(ctx, shipper_id).progress.next_window_ms
    rng = random.Random(7)
    # Stored the way ingest stores them: a raw LZ4 block and its decompressed size.
    raws = [nginx_chunk(rng, cursor, i) for i in range(min(48, chunks_per_window * 2))]
    distinct = [(compress_lz4(raw), len(raw)) for raw in raws]
    offset = 0
    rows: list[dict[str, Any]] = []
    for window in range(windows):
        for i in range(chunks_per_window):
            payload, raw_size = distinct[(window * chunks_per_window + i) % len(distinct)]
            rows.append({"topic_id": topic, "first_offset": offset,
                         "record_count": LOGS_PER_CHUNK,
                         "ingest_ms": cursor + window * INTERVAL_S * 1000 + i,
                         "codec": "lz4", "raw_size": raw_size, "client_ip": "192.0.2.10",
                         "payload": payload})
            offset += LOGS_PER_CHUNK
    with ctx.db.begin() as conn:
        for start in range(0, len(rows), 64):
            conn.execute(insert(log_chunks), rows[start:start + 64])
        conn.execute(update(topics_table).where(topics_table.c.topic_id == topic).values(
            next_offset=offset, last_ingest_ms=rows[-1]["ingest_ms"]))
    end = cursor + windows * INTERVAL_S * 1000
    ledger.seal_topics(ctx.db, end)
    cut = ledger.cut_windows(ctx.db, end, "UTC")
    ctx.db.dispose()
    return cut


def _worker(url: str, sink_url: str, worker_id: str, ready: Any, go: Event) -> None:
    db = open_database(url, run_migrations=False, pool=WORKER_POOL)
    sink = open_sink(sink_url)
    settings = worker.WorkerSettings(lease_ms=120_000, policy=ledger.RetryPolicy(
        base_ms=1000, cap_ms=60_000, deadline_ms=3_600_000, max_attempts=3))
    ready.put(worker_id)
    go.wait()
    while worker.run_one(db, sink, worker_id, settings):
        pass
    db.dispose()


def reset(url: str) -> None:
    db = open_database(url, run_migrations=False)
    with db.begin() as conn:
        conn.execute(update(tasks).values(
            status="wait", attempts=0, next_attempt_ms=0, lease_owner=None,
            lease_expires_ms=None, records=0, bytes_in=0, bytes_out=0, objects=[]))
        conn.execute(delete(task_runs))
    db.dispose()


def run(url: str, sink_dir: Path, workers: int) -> tuple[float, int, int, int]:
    """Ship every task with `workers` processes; (seconds, records, raw bytes, out bytes)."""
    reset(url)
    shutil.rmtree(sink_dir, ignore_errors=True)
    (sink_dir / "bench").mkdir(parents=True)
    spawn = multiprocessing.get_context("spawn")
    ready = spawn.Queue()
    go = spawn.Event()
    procs = [spawn.Process(target=_worker, args=(url, sink_dir.as_uri(), f"bench/w{i}", ready,
                                                 go)) for i in range(workers)]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.get(timeout=60)
    started = time.perf_counter()
    go.set()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - started
    db = open_database(url, run_migrations=False)
    with db.read() as conn:
        row = conn.execute(select(func.count(), func.sum(tasks.c.records),
                                  func.sum(tasks.c.bytes_in), func.sum(tasks.c.bytes_out))
                           .where(tasks.c.status == "success")).one()
        total = conn.execute(select(func.count()).select_from(tasks)).scalar_one()
    db.dispose()
    if row[0] != total:
        raise SystemExit(f"only {row[0]} of {total} tasks succeeded")
    return elapsed, int(row[1]), int(row[2]), int(row[3])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="default: SQLite in a temp dir")
    parser.add_argument("--windows", type=int, default=24)
    parser.add_argument("--chunks-per-window", type=int, default=10)
    parser.add_argument("--shippers", type=int, default=2)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cls-scale-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        count = preload(url, args.windows, args.chunks_per_window, args.shippers)
        print(f"{count} tasks ({args.shippers} shippers x {args.windows} windows of "
              f"{args.chunks_per_window * LOGS_PER_CHUNK} records), gzip JSON lines, "
              f"file sink; {os.cpu_count()} CPUs; {url.split(':', 1)[0]}; load average "
              f"{os.getloadavg()[0]:.2f} (others' work on the cores skews the ratios)")
        base = 0.0
        for workers in (int(w) for w in args.workers.split(",")):
            elapsed, records, raw, out = run(url, Path(tmp) / "sink", workers)
            rate = records / elapsed
            base = base or rate
            print(f"{workers} worker(s): {elapsed:6.2f} s  {rate:10,.0f} records/s  "
                  f"{raw / MB / elapsed:6.1f} MB/s raw ({out / MB / elapsed:5.1f} MB/s out)  "
                  f"x{rate / base:.2f}")


if __name__ == "__main__":
    main()

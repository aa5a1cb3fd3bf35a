"""Shipping throughput through the engine's real path, per format and codec.

One window of at least 100 MB of raw JSON lines (nginx-style records, stored as uploads are:
LogGroupList chunks of 1,000 logs, LZ4) sits in a SQLite log store. For each format and
codec, `shipping.worker.ship` reads the window from the store, decodes, encodes, compresses
and writes objects into a local-directory sink (fsync + rename), as a worker does. In the
same run, the baselines:

  (a) the codec alone compressing the same JSON-lines bytes (1 MiB at a time), and the
      stdlib's zlib at level 6 (gzip-6, what gzip objects cost before zlib-ng): the
      gzip rows' "vs gzip-6" column is the shipping rate over gzip-6 alone (and, for JSON,
      the output size over gzip-6's);
  (b) a straightforward exporter: parse, json.dumps per record, one buffer, gzip level 6;
  (c) peak RSS growth of `ship` for a window of half the size and the full size, each in a
      fresh process (memory must not grow with the window: it streams).

Throughput is per CPU-second of this process (time.process_time), so a busy neighbour on the
shared cores does not distort it; MB are 10^6 bytes of the window's raw JSON lines. Scaling
with worker processes is bench/scale.py's job. `--metrics on` (the default, as a server
runs) counts each shipped window in the Prometheus metrics as a worker does (multiprocess
files in a temporary directory); `--metrics off` does not: run both, alternating, to see
what collecting them costs. Usage:

    .venv/bin/python bench/ship.py [--mb 100] [--metrics on|off] [--cases json+gzip,csv+gzip]
        [--repeat 3]

`--cases` runs only the named format+codec rows (and skips the exporter and RSS parts);
`--repeat` ships each row that many times and keeps the best (fewest CPU-seconds) run,
beside the best of as many gzip-6 runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cls_shipper import metrics
from cls_shipper.model.shipper import ContentInfo, ShipperConfig
from cls_shipper.service import Context, logsets, topics
from cls_shipper.settings import Settings
from cls_shipper.shipping import ledger, worker
from cls_shipper.sinks import open_sink
from cls_shipper.store import Database, open_database
from cls_shipper.store.chunks import NewChunk, append_chunks
from ship_encode import (
    CSV,
    JSON_ALL,
    PARQUET,
    build_chunks,
    codec_alone,
    json_lines,
    naive_exporter,
    wire_status,
)

MB = 1_000_000
CASES: list[tuple[str, ContentInfo, str]] = [
    ("json", JSON_ALL, "gzip"), ("json", JSON_ALL, "zstd"), ("json", JSON_ALL, "snappy"),
    ("json", JSON_ALL, "lz4"), ("json", JSON_ALL, "lzop"), ("json", JSON_ALL, "none"),
    ("csv", CSV, "gzip"), ("parquet", PARQUET, "snappy"), ("parquet", PARQUET, "zstd"),
]


def gzip6_alone(data: bytes) -> tuple[float, int]:
    """CPU-seconds of the stdlib's zlib, level 6, gzip container, fed 1 MiB at a time, and
    the size of its output."""
    start = time.process_time()
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    size = 0
    for at in range(0, len(data), 1 << 20):
        size += len(z.compress(data[at:at + (1 << 20)]))
    size += len(z.flush())
    return time.process_time() - start, size


def load_window(db: Database, ctx: Context, chunks: list[bytes], name: str) -> str:
    """Store `chunks` as one topic's log; they all fall into the current window."""
    logset = logsets.create(ctx, f"bench-{name}", 7)
    topic = topics.create(ctx, logset, name)
    # bench chunks are LZ4 blocks with a 4-byte size prefix; the store keeps the SDK's form
    # (a raw block) with the size beside it.
    append_chunks(db, [NewChunk(topic, 1000, "lz4", int.from_bytes(c[:4], "little"),
                                "192.0.2.10", c[4:]) for c in chunks])
    return topic


def task_for(topic: str, content: ContentInfo, codec: str) -> ledger.Claimed:
    config = ShipperConfig(topic_id=topic, bucket="bench-1", prefix=f"{content.format}-{codec}/",
                           shipper_name="bench", interval=300, max_size=256,
                           partition="%Y/%m/%d/", compress=codec, content=content,
                           time_zone="UTC")
    return ledger.Claimed("bench-task", "bench-shipper", topic, 0, 2**62, 1,
                         config, "bench")


def ship_once(db_url: str, sink_url: str, topic: str, content: ContentInfo,
              codec: str) -> tuple[ledger.Outcome, float, float]:
    db = open_database(db_url, run_migrations=False)
    sink = open_sink(sink_url)
    task = task_for(topic, content, codec)
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = worker.ship(db, sink, task)
    worker.count_shipped(task, outcome)  # what a worker counts per window (none when off)
    result = outcome, time.process_time() - cpu, time.perf_counter() - wall
    db.dispose()
    return result


def child_rss(db_url: str, sink_url: str, topic: str) -> None:
    """(c), in a fresh process: ship one window as JSON+gzip, print the peak RSS (bytes).
    Imports are the same in every child, so the difference between two windows is what the
    window's size costs."""
    ship_once(db_url, sink_url, topic, JSON_ALL, "gzip")
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over fork and exec, so a child would
    # report its parent's peak (here the whole window, held for the baselines).
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    print(peak_kib * 1024)


def rss_growth(db_url: str, sink_url: str, topic: str) -> int:
    done = subprocess.run([sys.executable, __file__, "--child", db_url, sink_url, topic],
                          check=True, capture_output=True, text=True)
    return int(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="window size, MB of JSON lines")
    parser.add_argument("--metrics", choices=["on", "off"], default="on",
                        help="count shipped windows in the metrics, as a worker does")
    parser.add_argument("--cases", help="comma-separated format+codec rows (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per row, best kept")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_rss(*args.child)
        return

    work = Path(tempfile.mkdtemp(prefix="cls-bench-ship-"))
    if args.metrics == "on":
        (work / "metrics").mkdir()
        metrics.enable(work / "metrics", worker=True)
    try:
        db_url = f"sqlite:///{work / 'bench.db'}"
        sink_url = (work / "buckets").as_uri()
        db = open_database(db_url)
        ctx = Context(db, Settings(data_dir=work, min_interval=1))
        chunks = build_chunks(args.mb)
        full = load_window(db, ctx, chunks, "full")
        half = load_window(db, ctx, chunks[:len(chunks) // 2], "half")
        raw = json_lines(chunks)
        records = len(chunks) * 1000
        mb = len(raw) / MB
        stored = sum(len(c) for c in chunks) / MB
        print(f"C extension (cls_shipper._wire): {wire_status()}; metrics: {args.metrics}")
        print(f"window: {records:,} records, {mb:.1f} MB of JSON lines, "
              f"{stored:.0f} MB stored (LZ4 chunks in SQLite)\n")
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print(f"{'format+codec':<16}{'ship MB/s':>10}{'rec/s':>10}{'codec alone':>13}"
              f"{'ratio':>7}{'vs gzip-6 (size)':>18}{'out MB':>8}{'objects':>8}")
        alone: dict[str, float] = {}
        wanted = set(args.cases.split(",")) if args.cases else None
        for fmt, content, codec in CASES:
            if wanted is not None and f"{fmt}+{codec}" not in wanted:
                continue
            runs = [ship_once(db_url, sink_url, full, content, codec)
                    for _ in range(args.repeat)]
            outcome, cpu, _ = min(runs, key=lambda run: run[1])
            assert outcome.records == records, (fmt, codec, outcome.records)
            if codec not in alone and codec != "none":
                _, codec_cpu = codec_alone(codec, raw)
                alone[codec] = mb / codec_cpu
            base = alone.get(codec)
            ratio = f"{mb / cpu / base:.2f}" if base and fmt == "json" else "-"
            # gzip-6 measured next to each gzip case: the same-run baseline of the target
            vs6 = "-"
            if codec == "gzip":
                gzip6 = min(gzip6_alone(raw) for _ in range(args.repeat))
                # and the objects' size over gzip-6's for the same bytes (JSON lines only)
                size = f" ({outcome.bytes_out / gzip6[1]:.3f})" if fmt == "json" else ""
                vs6 = f"{gzip6[0] / cpu:.2f}{size}"
            print(f"{fmt + '+' + codec:<16}{mb / cpu:>10.1f}{records / cpu:>10,.0f}"
                  f"{(f'{base:.1f}' if base else '-'):>13}{ratio:>7}{vs6:>18}"
                  f"{outcome.bytes_out / MB:>8.1f}{len(outcome.objects):>8}")
        print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if wanted is not None:
            return
        start = time.process_time()
        naive = naive_exporter(chunks)
        naive_cpu = time.process_time() - start
        _, gzip_cpu, _ = ship_once(db_url, sink_url, full, JSON_ALL, "gzip")
        print(f"\nstraightforward exporter (json.dumps + gzip-6): {mb / naive_cpu:.1f} MB/s "
              f"({len(naive) / MB:.1f} MB out); ship json+gzip is "
              f"{naive_cpu / gzip_cpu:.2f}x faster")
        half_rss, full_rss = (rss_growth(db_url, sink_url, half),
                              rss_growth(db_url, sink_url, full))
        print(f"peak RSS of a process shipping json+gzip: {half_rss / 2**20:.0f} MiB for a "
              f"{mb / 2:.0f} MB window, {full_rss / 2**20:.0f} MiB for {mb:.0f} MB "
              f"(+{(full_rss - half_rss) / 2**20:.1f} MiB for twice the data)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

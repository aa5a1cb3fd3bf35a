"""End to end: a file of JSON lines uploaded with `cls-shipper upload` into a real server
(`cls-shipper serve`, SQLite, one worker process), shipped as JSON lines + gzip into a real
S3-compatible server (moto), read back and checked record by record.

The input is `--lines` nginx access logs as an application writes them (the generator of
bench/upload.py), each with a unique `seq` field: 360,000 lines are 141.5 MB. The server
allows `--interval`-second windows (`--min-interval`), so windows close while the bench
runs; a JSON + gzip shipper (legacy `POST /shipper`) exports the topic. The bench uploads
the file with the CLI (its own process, CPU from wait4), waits in the ledger (the server's
database, read directly so that waiting costs the server nothing) until every window up to
the end of the upload is `success`, then lists the bucket, gunzips every object with the
gzip tool, parses every line and counts every `seq`: each must be there exactly once.

Printed, each beside its target and the baseline measured in the same run (the stdlib's
zlib level 6 compressing the same file alone, per CPU-second of this process):

  - the uploader's CPU-seconds and MB of input per CPU-second (target >= 150);
  - the server's CPU-seconds per process of its tree (the API process, which runs ingest
    and the scheduler thread, and each spawned worker process; user + sys from /proc,
    before the upload and after the last window shipped), and MB of JSON lines per server
    CPU-second end to end (target >= 100); the tree's idle rate (scheduler ticks, the
    worker's polls, empty windows), measured after the last window shipped, is printed so
    that what waiting for windows costs can be told apart;
  - peak RSS and PSS of the server tree (the sum over its processes, /proc/<pid>/smaps_rollup
    sampled every 200 ms during the run; target PSS <= 200 MB), and its USS (private pages
    only: PSS less the shares of pages other processes map too);
  - freshness: for every object, the time it first appeared in the bucket listing (polled
    every ~200 ms; the time the listing answered) minus its window's end, median and max
    (target max <= 5 s), and per window where the time went: window end -> task cut
    (scheduler tick, sealing), cut -> claimed by the worker, claim -> shipped, as the ledger
    recorded them (milliseconds).

The machine is shared: the load average is printed at the start and the end. Usage:

    .venv/bin/python bench/e2e.py [--lines 360000] [--interval 10] [--profile stacks]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sqlalchemy import select  # noqa: E402
from tests.helpers.s3server import S3TestServer  # noqa: E402
from tests.helpers.server import LegacyClient, ServerProcess, node_registered  # noqa: E402
from tests.helpers.shipping import read_records  # noqa: E402

from cls_shipper.store import open_database  # noqa: E402
from cls_shipper.store.schema import tasks  # noqa: E402
from upload import gzip6_cpu, upload_cpu, write_lines  # noqa: E402

MB = 1_000_000
BUCKET = "e2e-bench"
PREFIX = "nginx/"
TICK = os.sysconf("SC_CLK_TCK")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# ---- the server's process tree, from /proc ---------------------------------------------

def _stat(pid: int) -> tuple[int, float]:
    """(parent pid, user + sys CPU-seconds) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK


def tree(root: int) -> list[int]:
    """`root` and all its descendants alive now."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                parents.setdefault(_stat(int(entry))[0], []).append(int(entry))
            except (OSError, IndexError):
                continue  # exited meanwhile
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def role(pid: int, root: int) -> str:
    if pid == root:
        return "API process (ingest, scheduler thread)"
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "exited"
    if "resource_tracker" in cmd:
        return "multiprocessing resource tracker"
    if "spawn_main" in cmd:
        return "worker process"
    return cmd[:60]


def cpu_by_pid(root: int) -> dict[int, float]:
    cpu = {}
    for pid in tree(root):
        try:
            cpu[pid] = _stat(pid)[1]
        except OSError:
            continue
    return cpu


def after_worker(before: dict[int, float], after: dict[int, float], root: int) -> float:
    """CPU-seconds the worker processes used between the two snapshots."""
    return sum(after[pid] - before.get(pid, 0.0) for pid in after
               if role(pid, root) == "worker process")


def memory_kib(pid: int) -> tuple[int, int, int]:
    """(Rss, Pss, Uss: private pages) in KiB from smaps_rollup."""
    rss = pss = uss = 0
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Rss:"):
            rss = int(line.split()[1])
        elif line.startswith("Pss:"):
            pss = int(line.split()[1])
        elif line.startswith(("Private_Clean:", "Private_Dirty:")):
            uss += int(line.split()[1])
    return rss, pss, uss


# ---- samplers running during the bench -------------------------------------------------

@dataclass
class Samplers:
    root: int
    s3: S3TestServer
    stop: threading.Event = field(default_factory=threading.Event)
    first_seen: dict[str, float] = field(default_factory=dict)  # key -> epoch ms
    peak_rss_kib: int = 0
    peak_pss_kib: int = 0
    peak_uss_kib: int = 0
    peak_pss_by_role: dict[str, int] = field(default_factory=dict)
    listings: int = 0
    threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Samplers:
        self.threads = [threading.Thread(target=self._list, daemon=True),
                        threading.Thread(target=self._memory, daemon=True)]
        for thread in self.threads:
            thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join()

    def _list(self) -> None:
        s3 = self.s3.client()
        while True:
            last = self.stop.is_set()  # one more listing after the stop
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=PREFIX)
            keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
            seen = time.time() * 1000
            self.listings += 1
            for key in keys:
                self.first_seen.setdefault(key, seen)
            if last:
                return
            self.stop.wait(0.2)

    def _memory(self) -> None:
        while not self.stop.is_set():
            rss = pss = uss = 0
            for pid in tree(self.root):
                try:
                    one_rss, one_pss, one_uss = memory_kib(pid)
                except OSError:
                    continue
                rss, pss, uss = rss + one_rss, pss + one_pss, uss + one_uss
                name = role(pid, self.root)
                self.peak_pss_by_role[name] = max(self.peak_pss_by_role.get(name, 0), one_pss)
            self.peak_rss_kib = max(self.peak_rss_kib, rss)
            self.peak_pss_kib = max(self.peak_pss_kib, pss)
            self.peak_uss_kib = max(self.peak_uss_kib, uss)
            self.stop.wait(0.2)


# ---- the ledger ------------------------------------------------------------------------

def ledger_rows(db_url: str, shipper_id: str) -> list[Any]:
    db = open_database(db_url, run_migrations=False)
    try:
        with db.engine.connect() as conn:
            return list(conn.execute(select(tasks).where(tasks.c.shipper_id == shipper_id)
                                     .order_by(tasks.c.range_start_ms)))
    finally:
        db.dispose()


def wait_shipped(db_url: str, shipper_id: str, through_ms: float,
                 timeout: float) -> list[Any]:
    """The shipper's tasks once every window up to `through_ms` is `success`."""
    deadline = time.monotonic() + timeout
    rows: list[Any] = []
    while time.monotonic() < deadline:
        rows = ledger_rows(db_url, shipper_id)
        covered = [r for r in rows if r.range_start_ms <= through_ms]
        if (covered and max(r.range_end_ms for r in covered) > through_ms
                and all(r.status == "success" for r in covered)):
            return rows
        if any(r.status == "failed" for r in covered):
            break
        time.sleep(0.2)
    state = [(r.range_start_ms, r.status, r.last_error) for r in rows]
    raise SystemExit(f"windows not shipped: {state}")


# ---- the run ---------------------------------------------------------------------------

def verify(s3: S3TestServer, rows: list[Any], lines: int) -> tuple[int, float, list[str]]:
    """Every seq exactly once in the bucket, the bucket exactly the ledger's objects; the
    number of objects, their compressed MB and the fields of a shipped record."""
    ledger_keys = {o["key"] for r in rows for o in r.objects}
    listed = set(s3.list_objects(BUCKET, PREFIX))
    assert listed == ledger_keys, f"bucket {sorted(listed ^ ledger_keys)[:5]} vs the ledger"
    seqs: Counter[int] = Counter()
    size = 0
    fields: list[str] = []
    for key in sorted(listed):
        body = s3.get_object(BUCKET, key)
        size += len(body)
        records = read_records(body, "json", "gzip")
        fields = fields or list(records[0])
        seqs.update(int(record["seq"]) for record in records)
    missing = [n for n in range(lines) if seqs[n] == 0]
    twice = [n for n, count in seqs.items() if count != 1]
    assert not missing and not twice and len(seqs) == lines, (
        f"{len(missing)} records missing (e.g. {missing[:5]}), {len(twice)} not once "
        f"(e.g. {twice[:5]}), {len(seqs)} distinct of {lines}")
    assert sum(r.records for r in rows) == lines
    return len(listed), size / MB, fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=360_000)
    parser.add_argument("--interval", type=int, default=10, help="window, seconds")
    parser.add_argument("--profile",
                        help="py-spy's collapsed stacks of the worker and the API process, "
                             "from the upload to the last window shipped, into "
                             "PROFILE-worker.txt and PROFILE-api.txt")
    parser.add_argument("--idle", type=float, default=10.0,
                        help="seconds of the idle server measured after the shipping")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cls-bench-e2e-"))
    s3 = S3TestServer(work / "s3")
    server: ServerProcess | None = None
    try:
        path = work / "access.jsonl"
        count = write_lines(path, args.lines, seq=True)
        data = path.read_bytes()
        mb = len(data) / MB
        gzip6 = [gzip6_cpu(data)]
        print(f"input: {count:,} JSON lines, {mb:.1f} MB; load average {load()}")

        s3.launch()
        s3.create_bucket(BUCKET)
        server = ServerProcess(work / "data", env=s3.env, args=[
            "--min-interval", str(args.interval), "--workers", "1",
            "--object-store", s3.sink_url]).start()
        assert server.proc is not None
        root = server.proc.pid
        # The worker counts only once it has imported everything and registered (a spawned
        # process's start-up is ~0.5 CPU-s that no upload causes).
        deadline = time.monotonic() + 60
        while not node_registered(server.db_url, root, workers=1):
            if time.monotonic() > deadline:
                raise SystemExit("the worker process did not start")
            time.sleep(0.2)
        client = LegacyClient(server.base_url)
        logset = client.call("POST", "/logset", json={"logset_name": "e2e",
                                                      "period": 1})["logset_id"]
        topic = client.call("POST", "/topic", json={"logset_id": logset,
                                                    "topic_name": "nginx"})["topic_id"]
        shipper = client.call("POST", "/shipper", json={
            "topic_id": topic, "bucket": BUCKET, "prefix": PREFIX, "shipper_name": "e2e",
            "interval": args.interval, "partition": "%Y/%m/%d/%H/",
            "compress": {"format": "gzip"}, "content": {"format": "json"}})["shipper_id"]

        samplers = Samplers(root, s3).start()
        profilers = []
        if args.profile:
            worker = next(p for p in tree(root) if role(p, root) == "worker process")
            for pid, name in ((worker, "worker"), (root, "api")):
                profilers.append(subprocess.Popen(
                    [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pid),
                     "--format", "raw", "--rate", "200", "--nonblocking",
                     "--output", f"{args.profile}-{name}.txt"],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        before = cpu_by_pid(root)
        start = time.time()
        up_cpu, up_wall = upload_cpu(REPO / "src", server.base_url, topic, path, "auto")
        uploaded_ms = time.time() * 1000
        rows = wait_shipped(server.db_url, shipper, uploaded_ms, timeout=600)
        after = cpu_by_pid(root)
        elapsed = time.time() - start
        for profiler in profilers:
            profiler.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
            profiler.wait(60)
        samplers.finish()
        idle0 = sum(cpu_by_pid(root).values())  # waiting (ticks, polls, empty windows)
        time.sleep(args.idle)
        idle_rate = (sum(cpu_by_pid(root).values()) - idle0) / args.idle
        gzip6.append(gzip6_cpu(data))
        objects, out_mb, fields = verify(s3, rows, count)
        written = sum(r.bytes_in for r in rows) / MB

        print(f"upload: {up_wall:.1f} s wall; shipped {objects} objects ({out_mb:.1f} MB gzip "
              f"of {written:.1f} MB of JSON lines as written, fields {', '.join(fields)}) "
              f"in {sum(1 for r in rows if r.records)} windows of "
              f"{args.interval} s; every one of the {count:,} records in the bucket exactly once")
        base = [mb / g for g in gzip6]
        print(f"baseline, gzip-6 alone on the same bytes: {gzip6[0]:.2f} / {gzip6[1]:.2f} "
              f"CPU-s = {base[0]:.1f} / {base[1]:.1f} MB/CPU-s (before / after)")
        ok = {True: "reached", False: "NOT reached"}
        print(f"uploader: {up_cpu:.2f} CPU-s, {mb / up_cpu:.1f} MB/CPU-s "
              f"({mb / up_cpu / statistics.mean(base):.2f}x gzip-6 alone); target >= 150: "
              f"{ok[mb / up_cpu >= 150]}")
        server_cpu = 0.0
        for pid in sorted(set(before) | set(after)):
            used = after.get(pid, before.get(pid, 0.0)) - before.get(pid, 0.0)
            server_cpu += used
            print(f"  server pid {pid} {role(pid, root)}: {used:.2f} CPU-s")
        idle = idle_rate * elapsed
        print(f"server: {server_cpu:.2f} CPU-s over {elapsed:.1f} s, {mb / server_cpu:.1f} MB of "
              f"JSON lines per CPU-s end to end ({mb / server_cpu / statistics.mean(base):.2f}x "
              f"gzip-6 alone); target >= 100: {ok[mb / server_cpu >= 100]}; idle tree "
              f"{idle_rate * 1000:.0f} ms/s, ~{idle:.2f} CPU-s of the run, "
              f"{mb / max(server_cpu - idle, 0.01):.1f} MB/CPU-s without it; per MB as "
              f"written: {written / server_cpu:.1f}, the worker "
              f"{written / after_worker(before, after, root):.1f}")
        pss_mb = samplers.peak_pss_kib * 1024 / MB
        peaks = ", ".join(f"{name} {kib * 1024 / MB:.0f}"
                          for name, kib in samplers.peak_pss_by_role.items())
        print(f"server tree peak: RSS {samplers.peak_rss_kib * 1024 / MB:.1f} MB, PSS "
              f"{pss_mb:.1f} MB, USS {samplers.peak_uss_kib * 1024 / MB:.1f} MB (per process "
              f"PSS peaks, MB: {peaks}); target PSS <= 200 MB: {ok[pss_mb <= 200]}")
        fresh = []
        print(f"freshness ({samplers.listings} listings; ms after the window's end):")
        print(f"  {'window end':<14}{'records':>9}{'objects':>8}{'cut':>7}{'claimed':>9}"
              f"{'shipped':>9}{'first seen':>12}{'last seen':>11}")
        for r in rows:
            if not r.records:
                continue
            end = r.range_end_ms
            seen = [samplers.first_seen[o["key"]] - end for o in r.objects]
            fresh.extend(seen)
            print(f"  {time.strftime('%H:%M:%S', time.gmtime(end / 1000)):<14}{r.records:>9,}"
                  f"{len(r.objects):>8}{r.created_ms - end:>7}{r.run_start_ms - end:>9}"
                  f"{r.run_end_ms - end:>9}{min(seen):>12.0f}{max(seen):>11.0f}")
        print(f"  median {statistics.median(fresh) / 1000:.2f} s, max {max(fresh) / 1000:.2f} s; "
              f"target max <= 5 s: {ok[max(fresh) <= 5000]}")
        print(f"load average at the end: {load()}")
    finally:
        if server is not None:
            server.stop()
        s3.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Consumption throughput: `POST /pull_log` (what the SDK's `pull_logs` and consumer library
send: snappy, `Size` 1 MiB) reading a partition from its first record to its end, over and
over, beside `GET /log` (the legacy read-back, `count` 1000 a call) reading the same records
in the same run; the two alternate, and each phase's server CPU is read from /proc.

    .venv/bin/python bench/pull.py [--seconds 5] [--bodies 40] [--logs 1000] [--rounds 2]

A server is started on a temporary data dir (`serve --workers 0`) with one topic of one
partition, so both readers read exactly the same records. The client is one keep-alive
connection sending pre-signed requests (the q-sign signature does not cover the body) and
checks each answer's record count, so its own CPU stays small on a 2-core machine and the
per-CPU-second figures are the server's. The load average is printed: on a shared machine
the wall-clock rates move with it, the per-CPU-second figures and the ratio less so.
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.helpers.server import SECRET_ID, SECRET_KEY, LegacyClient, ServerProcess  # noqa: E402

from cls_shipper.auth import qsign  # noqa: E402
from ingest import cpu_seconds, nginx_body  # noqa: E402


def _signed(host: str, method: str, path: str, params: dict[str, str],
            content_type: str | None = None) -> dict[str, str]:
    headers = {"Host": host}
    if content_type:
        headers["Content-Type"] = content_type
    auth = qsign.sign(SECRET_ID, SECRET_KEY, method, path, params, headers,
                      int(time.time()) - 60, 3600)
    return {**headers, "Authorization": auth}


def pull_pass(http: httpx.Client, host: str, topic: str, size: int) -> int:
    """Records read by pull_log from the partition's first record to its end."""
    params = {"topic_id": topic}
    headers = _signed(host, "POST", "/pull_log", params, "application/json")
    url = f"/pull_log?{urlencode(params)}"
    offset, records = 0, 0
    while True:
        body = orjson.dumps({"PartitionId": 1, "StartOffset": offset, "StartTime": 0,
                             "Size": size, "CompressType": "snappy"})
        resp = http.post(url, content=body, headers=headers)
        if resp.status_code != 200:
            raise RuntimeError(f"pull_log: {resp.status_code} {resp.text[:200]}")
        count = int(resp.headers["x-cls-count"])
        if count == 0:
            return records
        records += count
        offset = int(resp.headers["x-cls-next-offset"])


def log_pass(http: httpx.Client, host: str, topic: str) -> int:
    """Records read by GET /log from offset 0 to the end (1000 a call, the most it gives)."""
    cursor, records = base64.b64encode(b"0").decode(), 0
    while True:
        params = {"topic_id": topic, "cursor": cursor, "count": "1000"}
        resp = http.get(f"/log?{urlencode(params)}",
                        headers=_signed(host, "GET", "/log", params))
        if resp.status_code != 200:
            raise RuntimeError(f"GET /log: {resp.status_code} {resp.text[:200]}")
        count = int(resp.headers["x-cls-count"])
        if count == 0:
            return records
        records += count
        cursor = resp.headers["x-cls-cursor"]


def measure(read: Callable[[], int], seconds: float, pid: int,
            total: int) -> tuple[int, float, float]:
    """Whole passes until `seconds` are up: records, wall seconds, server CPU seconds."""
    cpu0, start, records = cpu_seconds(pid), time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        got = read()
        if got != total:
            raise RuntimeError(f"a pass read {got} records, not {total}")
        records += got
    return records, time.perf_counter() - start, cpu_seconds(pid) - cpu0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--bodies", type=int, default=40)
    parser.add_argument("--logs", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=1 << 20, help="pull_log Size (bytes)")
    args = parser.parse_args()

    rng = random.Random(7)
    made = [nginx_body(rng, args.logs) for _ in range(args.bodies)]
    total = args.bodies * args.logs
    raw_bytes = sum(size for _, size in made)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"records: {total:,} nginx logs in {args.bodies} uploads, "
          f"{raw_bytes / 1e6:.1f} MB protobuf")
    server = ServerProcess(Path(tempfile.mkdtemp(prefix="cls-bench-")),
                           args=["--workers", "0"]).start()
    try:
        assert server.proc is not None
        pid = server.proc.pid
        client = LegacyClient(server.base_url)
        logset = client.call("POST", "/logset", json={"logset_name": f"bench-{time.time_ns()}",
                                                      "period": 1})["logset_id"]
        topic = client.call("POST", "/topic", json={"logset_id": logset, "topic_name": "nginx",
                                                    "partition_count": 1})["topic_id"]
        for body, _ in made:
            resp = client.raw("POST", "/structuredlog", {"topic_id": topic}, body,
                              {"Content-Type": "application/x-protobuf",
                               "x-cls-compress-type": "lz4"})
            assert resp.status_code == 200, resp.text
        host = server.base_url.split("://", 1)[1]
        results: dict[str, list[tuple[int, float, float]]] = {"pull_log": [], "GET /log": []}
        with httpx.Client(base_url=server.base_url, timeout=60) as http:
            readers: dict[str, Callable[[], int]] = {
                "pull_log": lambda: pull_pass(http, host, topic, args.size),
                "GET /log": lambda: log_pass(http, host, topic),
            }
            for read in readers.values():  # warm-up: caches, the read budget, the pool
                read()
            for _ in range(args.rounds):
                for name, read in readers.items():
                    results[name].append(measure(read, args.seconds, pid, total))
    finally:
        server.stop()

    per_record = raw_bytes / total
    figures: dict[str, float] = {}
    for name, runs in results.items():
        for records, wall, cpu in runs:
            mb = records * per_record / 1e6
            print(f"{name:9} {wall:4.1f}s: {records / wall:10,.0f} records/s "
                  f"{mb / wall:6.1f} MB/s | server CPU {cpu:5.2f}s: "
                  f"{records / cpu:10,.0f} records/CPU-s {mb / cpu:6.1f} MB/CPU-s")
        records = sum(r for r, _, _ in runs)
        figures[name] = records / sum(c for _, _, c in runs)
    print(f"ratio pull_log / GET /log, records per server CPU-second: "
          f"{figures['pull_log'] / figures['GET /log']:.2f}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()

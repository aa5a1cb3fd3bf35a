"""Task listings under load: `GET /tasks` and API 3.0 `DescribeShipperTasks` answering three
days of a 300-second shipper (864 tasks) from a large ledger, beside the same requests for an
empty range (signature, routing, the shipper check and the index probe: everything but the
tasks) in the same run.

    .venv/bin/python bench/tasks.py [--database-url postgresql://...] [--clients 16]

The ledger is built through the ledger's own code, as the scheduler builds it: `--shippers`
shippers with historical shipping from `--days` ago, their topic sealed and their windows cut
an hour of simulated time at a time (`ledger.seal_topics`, `ledger.cut_windows`), so each
task was queued within the hour after its window; then one bulk UPDATE, the bench's
shortcut, marks every task shipped (`success`, a run of two seconds), as a real ledger mostly
is. A server process (`serve --role api`) answers; the clients run in a separate process:
`--clients` keep-alive connections, each sending pre-signed requests back to back.

Printed per phase: requests/s, p50/p99 latency, the server process's CPU (from /proc) per
request, and per task returned: in all, and beyond the empty-range baseline's per request.
The load average is printed too: the machine is shared, so the ratios are what hold.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy import func, select, update

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.server import SECRET_ID, SECRET_KEY, ServerProcess  # noqa: E402

from cls_shipper.auth import qsign, tc3  # noqa: E402
from cls_shipper.model.shipper import ShipperConfig  # noqa: E402
from cls_shipper.service import Context, logsets, shippers, topics  # noqa: E402
from cls_shipper.service.shipper_rules import defaults  # noqa: E402
from cls_shipper.settings import Settings  # noqa: E402
from cls_shipper.shipping import ledger  # noqa: E402
from cls_shipper.store import open_database  # noqa: E402
from cls_shipper.store.schema import tasks  # noqa: E402
from cls_shipper.store.schema import topics as topics_table  # noqa: E402
from cls_shipper.timefmt import format_legacy  # noqa: E402

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
ZONE = ZoneInfo("Asia/Shanghai")  # the server's default --timezone


def build(url: str, days: int, shipper_count: int, interval: int) -> tuple[str, int, int]:
    """The ledger; returns the first shipper's id, the task count and the simulated now."""
    ctx = Context(open_database(url), Settings(quota_shippers=1000))
    logset = logsets.create(ctx, f"bench-{os.getpid()}", days + 7)
    topic = topics.create(ctx, logset, "app")
    now = int(time.time() * 1000)
    first = now - days * DAY_MS
    ids = []
    for index in range(shipper_count):
        config = ShipperConfig(**{**defaults("v3"), "topic_id": topic, "bucket": "bench",
                                  "prefix": f"s{index}/", "shipper_name": f"s{index}",
                                  "interval": interval})
        ids.append(shippers.create(ctx, config, "v3", start_ms=first))
    # A topic is created sealed up to its creation; this one stands for a topic that has
    # been there all along (the second shortcut), so that windows close an hour at a time.
    with ctx.db.begin() as conn:
        conn.execute(update(topics_table).values(sealed_ms=first))
    tick = first + HOUR_MS
    while tick <= now:
        ledger.seal_topics(ctx.db, tick)
        ledger.cut_windows(ctx.db, tick, "UTC")
        tick += HOUR_MS
    with ctx.db.begin() as conn:
        conn.execute(update(tasks).values(
            status="success", message="success", run_end_ms=tasks.c.run_start_ms + 2000,
            attempts=1))
        count = int(conn.execute(select(func.count()).select_from(tasks)).scalar_one())
    ctx.db.dispose()
    return ids[0], count, tick - HOUR_MS


def legacy_request(host: str, shipper_id: str, start_ms: int, end_ms: int) -> bytes:
    params = {"shipper_id": shipper_id, "start_time": format_legacy(start_ms, ZONE),
              "end_time": format_legacy(end_ms, ZONE)}
    auth = qsign.sign(SECRET_ID, SECRET_KEY, "GET", "/tasks", params, {"Host": host},
                      int(time.time()) - 60, 1800)
    return (f"GET /tasks?{urlencode(params)} HTTP/1.1\r\nHost: {host}\r\n"
            f"Authorization: {auth}\r\n\r\n").encode()


def v3_request(host: str, shipper_id: str, start_ms: int, end_ms: int) -> bytes:
    body = orjson.dumps({"ShipperId": shipper_id, "StartTime": start_ms, "EndTime": end_ms})
    stamp = int(time.time())
    auth = tc3.sign(SECRET_ID, SECRET_KEY, "POST", host, "application/json", body, stamp)
    return (f"POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-TC-Action: DescribeShipperTasks\r\nX-TC-Version: 2020-10-16\r\n"
            f"X-TC-Timestamp: {stamp}\r\nAuthorization: {auth}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _load(endpoint: str, request: bytes, clients: int,
                seconds: float) -> tuple[list[float], bytes]:
    url = urlsplit(endpoint)
    latencies: list[float] = []
    sample = b""
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal sample
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        while time.perf_counter() < deadline:
            began = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            latencies.append(time.perf_counter() - began)
            if not status.startswith(b"HTTP/1.1 200") or b'"Error"' in body[:40]:
                raise RuntimeError(f"request failed: {status!r} {body[:300]!r}")
            sample = body
        writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, sample


def _client_process(endpoint: str, request: bytes, clients: int, seconds: float,
                    out: multiprocessing.queues.Queue[tuple[list[float], bytes]]) -> None:
    try:
        out.put(asyncio.run(_load(endpoint, request, clients, seconds)))
    except (OSError, RuntimeError, asyncio.IncompleteReadError) as exc:  # said, not waited on
        out.put(([], repr(exc).encode()))


def load(endpoint: str, request: bytes, clients: int,
         seconds: float) -> tuple[list[float], bytes]:
    """Run the clients in a process of their own, so they never take the server's CPU
    accounting nor its event loop."""
    spawn = multiprocessing.get_context("spawn")
    out: multiprocessing.queues.Queue[tuple[list[float], bytes]] = spawn.Queue()
    proc = spawn.Process(target=_client_process, args=(endpoint, request, clients, seconds, out))
    proc.start()
    result = out.get(timeout=seconds + 120)
    proc.join()
    if not result[0]:
        raise SystemExit(f"the clients failed: {result[1].decode()}")
    return result


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tasks_in(body: bytes) -> int:
    data = orjson.loads(body)
    found = data["Response"]["Tasks"] if "Response" in data else data["tasks"]
    return len(found or [])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(frozen=True)
class Measured:
    returned: int  # tasks in one answer
    rate: float  # requests per second
    p50: float
    p99: float
    cpu_per_request: float  # seconds of server CPU


def measure(pid: int, endpoint: str, request: bytes, clients: int,
            seconds: float) -> Measured:
    cpu0 = cpu_seconds(pid)
    latencies, sample = load(endpoint, request, clients, seconds)
    cpu = cpu_seconds(pid) - cpu0
    return Measured(tasks_in(sample), len(latencies) / seconds, percentile(latencies, 0.5),
                    percentile(latencies, 0.99), cpu / len(latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: SQLite in a temp dir")
    parser.add_argument("--days", type=int, default=30, help="ledger history per shipper")
    parser.add_argument("--shippers", type=int, default=24)
    parser.add_argument("--interval", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="cls-bench-tasks-"))
    url = args.database_url or f"sqlite:///{data_dir / 'cls-shipper.db'}"
    began = time.perf_counter()
    shipper_id, count, now = build(url, args.days, args.shippers, args.interval)
    print(f"ledger: {count:,} tasks ({args.shippers} shippers x {args.days} days of "
          f"{args.interval}-second windows) on {url.split(':', 1)[0]}, built in "
          f"{time.perf_counter() - began:.1f} s")
    server = ServerProcess(data_dir, args=["--role", "api"],
                           database_url=args.database_url).start()
    host = f"127.0.0.1:{server.port}"
    # Three days back, as far as a query may reach (the clock moved on while building); the
    # empty range is one second halfway between two ticks, where no task was queued.
    start = int(time.time() * 1000) - 3 * DAY_MS + 60_000
    end = start + 3 * DAY_MS - 60_000
    empty = now - 71 * HOUR_MS - HOUR_MS // 2
    phases = [
        ("GET /tasks, 3 days", legacy_request(host, shipper_id, start, end),
         legacy_request(host, shipper_id, empty, empty)),
        ("DescribeShipperTasks, 3 days", v3_request(host, shipper_id, start, end),
         v3_request(host, shipper_id, empty, empty + 1)),
    ]
    try:
        assert server.proc is not None
        pid = server.proc.pid
        for _name, request, empty_request in phases:
            for warm in (request, empty_request):  # caches, pools
                load(server.base_url, warm, args.clients, 1.0)
        print(f"{args.clients} clients, {args.seconds:.0f} s per phase; load average "
              f"{os.getloadavg()[0]:.2f} before")
        for name, request, empty_request in phases:
            full = measure(pid, server.base_url, request, args.clients, args.seconds)
            base = measure(pid, server.base_url, empty_request, args.clients, args.seconds)
            for label, got in ((name, full), ("  same, empty range (baseline)", base)):
                print(f"{label:32s} {got.returned:4d} tasks  {got.rate:7.1f} req/s  "
                      f"p50 {got.p50 * 1000:7.1f} ms  p99 {got.p99 * 1000:7.1f} ms  "
                      f"server CPU {got.cpu_per_request * 1000:6.2f} ms/request")
            print(f"{'':32s} server CPU per task returned: "
                  f"{full.cpu_per_request / full.returned * 1e6:.1f} µs in all, "
                  f"{(full.cpu_per_request - base.cpu_per_request) / full.returned * 1e6:.1f}"
                  " µs beyond the baseline's")
        print(f"load average {os.getloadavg()[0]:.2f} after")
    finally:
        server.stop()


if __name__ == "__main__":
    main()

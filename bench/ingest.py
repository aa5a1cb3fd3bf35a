"""Ingest throughput: CLS uploads (protobuf + lz4 bodies of 1,000 nginx-style logs, as the
official SDK sends them) through HTTP into a running server, beside the decode-only rate
(decompress + protobuf parse) of the same bodies in the same run.

    .venv/bin/python bench/ingest.py [--seconds 5] [--connections 16] [--endpoint URL]
                                     [--metrics on|off]
    .venv/bin/python bench/ingest.py --database-url postgresql://... --api-nodes 2

Without --endpoint a server is started on a temporary data dir (`serve --workers 0`), or with
--database-url, `--api-nodes` API nodes (`serve --role api`) on that database, the
connections dealt among them in turn (their CPU is summed); `--topics` spreads the
connections over that many topics. Started servers collect Prometheus metrics unless
`--metrics off` (run both, alternating, to see what collecting them costs). `--profile FILE`
samples the first node with py-spy meanwhile and writes its collapsed stacks there. The
client is a minimal asyncio HTTP/1.1 keep-alive client sending pre-signed requests (the
q-sign signature does not cover the body), so the client's own CPU stays small on a 2-core
machine and the figure is the server's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.helpers.server import SECRET_ID, SECRET_KEY, LegacyClient, ServerProcess  # noqa: E402

from cls_shipper.auth import qsign  # noqa: E402
from cls_shipper.ingest import cls_pb  # noqa: E402
from cls_shipper.ingest.decode import compress_lz4, decode_upload, decompress  # noqa: E402


def wire_status() -> str:
    """Whether upload validation runs in C (cls_shipper._wire) or in Python."""
    from cls_shipper.ingest.native import wire
    return "built" if wire is not None else "not built: Python paths"


AGENTS = ["Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/120.0.0.0 Safari/537.36",
          "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
          "curl/8.4.0", "Go-http-client/1.1"]
PATHS = ["/", "/index.html", "/api/v1/users", "/api/v1/orders", "/static/app.js",
         "/static/style.css", "/login", "/search"]


def nginx_body(rng: random.Random, logs: int) -> tuple[bytes, int]:
    """An lz4 (SDK-style) LogGroupList of `logs` nginx access logs; also its raw size."""
    group_list = cls_pb.LogGroupList()
    group = group_list.logGroupList.add()
    group.filename = "/var/log/nginx/access.log"
    base = int(time.time() * 1000)
    for i in range(logs):
        log = group.logs.add()
        log.time = base + i
        path = rng.choice(PATHS)
        fields = {
            "remote_addr": f"{rng.randint(1, 223)}.{rng.randint(0, 255)}."
                           f"{rng.randint(0, 255)}.{rng.randint(1, 254)}",
            "remote_user": "-",
            "time_local": time.strftime("%d/%b/%Y:%H:%M:%S +0800", time.localtime(base / 1000)),
            "request": f"{rng.choice(['GET', 'GET', 'GET', 'POST'])} {path}"
                       f"?id={rng.randint(1, 99999)} HTTP/1.1",
            "status": rng.choice(["200", "200", "200", "200", "304", "404", "500"]),
            "body_bytes_sent": str(rng.randint(0, 50000)),
            "http_referer": rng.choice(["-", "https://example.com/", "https://www.google.com/"]),
            "http_user_agent": rng.choice(AGENTS),
            "request_time": f"{rng.random():.3f}",
            "upstream_response_time": f"{rng.random():.3f}",
        }
        for key, value in fields.items():
            content = log.contents.add()
            content.key, content.value = key, value
    raw = group_list.SerializeToString()
    return compress_lz4(raw), len(raw)


def decode_rate(bodies: list[bytes], seconds: float, full: bool) -> float:
    """Bodies per second: decompress + parse (or the full upload validation)."""
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for body in bodies:
            if full:
                decode_upload(body, "application/x-protobuf", "lz4")
            else:
                cls_pb.LogGroupList.FromString(decompress("lz4", body))
        done += len(bodies)
    return done / (time.perf_counter() - start)


def signed_uploads(endpoint: str, topic: str, bodies: list[bytes]) -> list[bytes]:
    """Whole pre-signed HTTP/1.1 requests, one per body."""
    host = urlsplit(endpoint).netloc
    params = {"topic_id": topic}
    headers = {"Host": host, "Content-Type": "application/x-protobuf"}
    auth = qsign.sign(SECRET_ID, SECRET_KEY, "POST", "/structuredlog", params, headers,
                      int(time.time()) - 60, 900)
    return [(f"POST /structuredlog?{urlencode(params)} HTTP/1.1\r\nHost: {host}\r\n"
             f"Content-Type: application/x-protobuf\r\nx-cls-compress-type: lz4\r\n"
             f"Authorization: {auth}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
            for body in bodies]


async def http_run(endpoints: list[str], topic_ids: list[str], bodies: list[bytes],
                   connections: int, seconds: float) -> tuple[int, float]:
    """Uploads on `connections` connections for `seconds`: connection n talks to endpoint
    n mod len(endpoints) and uploads into topic n mod len(topic_ids)."""
    requests = {(e, t): signed_uploads(endpoints[e], topic_ids[t], bodies)
                for e in range(len(endpoints)) for t in range(len(topic_ids))}
    deadline = time.perf_counter() + seconds
    sent = 0

    async def connection(n: int) -> None:
        nonlocal sent
        url = urlsplit(endpoints[n % len(endpoints)])
        heads = requests[(n % len(endpoints), n % len(topic_ids))]
        reader, writer = await asyncio.open_connection(url.hostname, url.port)
        i = n
        while time.perf_counter() < deadline:
            writer.write(heads[i % len(heads)])
            i += 1
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            if not status.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"upload failed: {status!r}")
            sent += 1
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection(n) for n in range(connections)))
    return sent, time.perf_counter() - start


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--bodies", type=int, default=16)
    parser.add_argument("--logs", type=int, default=1000)
    parser.add_argument("--endpoint", help="an already running server (default: start one)")
    parser.add_argument("--metrics", choices=["on", "off"], default="on",
                        help="whether the started server collects metrics (default on)")
    parser.add_argument("--database-url", help="start API nodes on this database")
    parser.add_argument("--api-nodes", type=int, default=1)
    parser.add_argument("--topics", type=int, default=1, help="connections dealt among them")
    parser.add_argument("--profile", help="py-spy's collapsed stacks of the first node")
    args = parser.parse_args()

    rng = random.Random(7)
    made = [nginx_body(rng, args.logs) for _ in range(args.bodies)]
    bodies = [body for body, _ in made]
    raw_per_body = sum(size for _, size in made) / len(made)
    wire_per_body = sum(map(len, bodies)) / len(bodies)
    print(f"C extension (cls_shipper._wire): {wire_status()}")
    print(f"bodies: {args.logs} logs, {raw_per_body / 1024:.0f} KiB protobuf, "
          f"{wire_per_body / 1024:.0f} KiB lz4")

    # Decode-only is measured before and after the HTTP run and averaged: the machine is
    # shared, and what else runs on it changes within seconds.
    parse_before = decode_rate(bodies, min(args.seconds, 3.0) / 2, full=False)
    servers: list[ServerProcess] = []
    endpoints = [args.endpoint] if args.endpoint else []
    profiler = None
    try:
        if not endpoints:
            node_args = (["--role", "api"] if args.database_url else ["--workers", "0"])
            node_args.append("--metrics" if args.metrics == "on" else "--no-metrics")
            for _ in range(args.api_nodes if args.database_url else 1):
                servers.append(ServerProcess(Path(tempfile.mkdtemp(prefix="cls-bench-")),
                                             args=node_args,
                                             database_url=args.database_url).start())
            endpoints = [server.base_url for server in servers]
        print(f"server metrics: {args.metrics}")
        print(f"{len(endpoints)} API node(s) on "
              f"{(args.database_url or 'sqlite').split(':', 1)[0]}; load average "
              f"{os.getloadavg()[0]:.2f}")
        client = LegacyClient(endpoints[0])
        logset = client.call("POST", "/logset", json={"logset_name": f"bench-{time.time_ns()}",
                                                      "period": 1})["logset_id"]
        topic_ids = [client.call("POST", "/topic", json={"logset_id": logset,
                                                         "topic_name": f"nginx{n}"})["topic_id"]
                     for n in range(args.topics)]
        asyncio.run(http_run(endpoints, topic_ids, bodies, args.connections, 1.0))  # warm-up
        pids = [server.proc.pid for server in servers if server.proc]
        if args.profile and pids:
            profiler = subprocess.Popen(
                [str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(pids[0]),
                 "--format", "raw", "--rate", "200", "--duration", str(int(args.seconds)),
                 "--output", args.profile, "--nonblocking"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu0 = sum(map(cpu_seconds, pids))
        sent, elapsed = asyncio.run(http_run(endpoints, topic_ids, bodies, args.connections,
                                             args.seconds))
        cpu = sum(map(cpu_seconds, pids)) - cpu0 if pids else None
        if profiler is not None:
            profiler.wait(timeout=60)
    finally:
        for server in servers:
            server.stop()

    parse = (parse_before + decode_rate(bodies, min(args.seconds, 3.0) / 2, full=False)) / 2
    check = decode_rate(bodies, min(args.seconds, 3.0), full=True)
    ingest = sent / elapsed
    print(f"ingest over HTTP ({args.connections} connections, {elapsed:.1f}s): "
          f"{ingest * args.logs:,.0f} logs/s, {ingest * raw_per_body / 1e6:.1f} MB/s protobuf, "
          f"{ingest * wire_per_body / 1e6:.1f} MB/s on the wire, {ingest:.0f} uploads/s")
    if cpu is not None:
        mb = sent * raw_per_body / 1e6
        print(f"server CPU: {cpu:.2f} s for {mb:.0f} MB protobuf = {mb / cpu:.0f} MB per "
              f"CPU-second, {sent * args.logs / cpu:,.0f} logs per CPU-second")
    print(f"decode-only (lz4 + cls_pb parse): {parse * args.logs:,.0f} logs/s")
    print(f"decode + validate (the ingest path's CPU work, no I/O): "
          f"{check * args.logs:,.0f} logs/s")
    print(f"ratio ingest / decode-only: {ingest / parse:.2f}")


if __name__ == "__main__":
    main()

"""Benchmark of the shipping encoders (formats.encoder.encode_window).

Builds a window of nginx-style access logs stored the way uploads are stored: LogGroupList
chunks of 1,000 logs, each LZ4-compressed. Then, in one run:

  (a) encode_window throughput per format and codec, into a PartWriter that discards;
  (b) the codec alone compressing the same JSON-lines bytes (the baseline of (a));
  (c) a straightforward exporter: parse, json.dumps per record, one buffer, gzip.compress;
  (d) peak RSS growth of encode_window for a 50 MB and a 100 MB window (fresh processes).

Throughput is per CPU-second of this process (time.process_time), so a busy neighbour on the
shared cores does not distort it; MB are 10^6 bytes of raw JSON lines. Usage:

    .venv/bin/python bench/ship_encode.py [--mb 100] [--side-mb 20]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import lz4.block

from cls_shipper.formats.compression import make_compressor
from cls_shipper.formats.encoder import Chunk, WindowResult, encode_window
from cls_shipper.formats.lzop import available as lzo_available
from cls_shipper.ingest.cls_pb import LogGroupList
from cls_shipper.model.shipper import (
    LEGACY_JSON,
    ContentInfo,
    CsvInfo,
    JsonInfo,
    ParquetKey,
    ShipperConfig,
)
from cls_shipper.sinks.base import WrittenObject
from cls_shipper.timefmt import normalise_log_time_ms

LOGS_PER_CHUNK = 1000
MB = 1_000_000


def wire_status() -> str:
    """Whether the C fast paths run (JSON lines JsonType 0, upload validation)."""
    try:
        from cls_shipper import _wire  # noqa: F401
    except ImportError:
        return "not built: Python paths"
    return "built"

_PATHS = ["/", "/index.html", "/api/v1/users/{id}", "/api/v1/orders/{id}/items",
          "/static/js/app.{hex}.js", "/static/css/main.{hex}.css", "/search",
          "/api/v2/products/{id}/reviews", "/login", "/cart/{id}", "/img/{hex}.png"]
_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/{v}.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.{v} Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:{v}.0) Gecko/20100101 Firefox/{v}.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_{v} like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148",
    "curl/8.{v}.0", "Go-http-client/1.1", "python-requests/2.{v}.0",
]
_REFERERS = ["-", "https://www.example.com/", "https://www.google.com/search?q={w}",
             "https://shop.example.com/cart/{id}", "https://m.example.com/p/{id}?from={w}"]
_WORDS = ["shoes", "laptop", "coffee", "book", "phone", "gift", "sale", "red", "cheap"]


class _Traffic:
    """Skewed like real traffic: a few clients and pages account for most requests."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.clients = [(f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
                         f"{rng.randint(1, 254)}", rng.choice(_AGENTS).format(
                             v=rng.randint(60, 130))) for _ in range(20_000)]

    def pick(self, size: int) -> int:
        return min(size - 1, int(self.rng.paretovariate(1.1)) - 1)


def _nginx_chunk(traffic: _Traffic, start_ms: int, index: int) -> bytes:
    """One upload: a LogGroupList with one LogGroup of 1,000 access-log records."""
    rng = traffic.rng
    message = LogGroupList()
    group = message.logGroupList.add()
    group.source = f"10.0.{index % 4}.{index % 250 + 1}"
    group.filename = "/var/log/nginx/access.log"
    group.hostname = f"web-{index % 4}"
    tag = group.logTags.add()
    tag.key, tag.value = "cluster", "prod-a"
    for i in range(LOGS_PER_CHUNK):
        ms = start_ms + index * 2000 + i * 2
        ip, agent = traffic.clients[traffic.pick(len(traffic.clients))]
        path = _PATHS[traffic.pick(len(_PATHS))].format(
            id=traffic.pick(1_000_000), hex=f"{traffic.pick(5000):010x}")
        if rng.random() < 0.3:
            path += f"?page={traffic.pick(50) + 1}&q={rng.choice(_WORDS)}"
        fields = (
            ("remote_addr", ip),
            ("time_local", time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(ms // 1000))),
            ("method", rng.choices(["GET", "POST", "PUT", "DELETE"], [80, 15, 3, 2])[0]),
            ("request_uri", path),
            ("protocol", rng.choice(["HTTP/1.1", "HTTP/2.0"])),
            ("status", rng.choices(["200", "304", "404", "500", "301"], [85, 6, 5, 1, 3])[0]),
            ("body_bytes_sent", str(rng.randint(0, 250_000))),
            ("http_referer", rng.choice(_REFERERS).format(id=traffic.pick(100_000),
                                                          w=rng.choice(_WORDS))),
            ("http_user_agent", agent),
            ("request_time", f"{rng.expovariate(20):.3f}"),
            ("upstream_response_time", f"{rng.expovariate(25):.3f}"),
            ("upstream_addr", f"10.1.0.{traffic.pick(16) + 1}:8080"),
        )
        log = group.logs.add()
        log.time = ms
        for key, value in fields:
            content = log.contents.add()
            content.key, content.value = key, value
    return bytes(lz4.block.compress(message.SerializeToString(), store_size=True))


def build_chunks(raw_mb: float) -> list[bytes]:
    """Enough chunks for about `raw_mb` MB of JSON lines (~540 bytes per record)."""
    traffic = _Traffic(random.Random(20240601))
    count = max(1, round(raw_mb * MB / 540 / LOGS_PER_CHUNK))
    start = 1_717_200_000_000
    return [_nginx_chunk(traffic, start, i) for i in range(count)]


def payloads(chunks: list[bytes]) -> Iterator[Chunk]:
    """What the engine hands encode_window: decompressed chunks in order (the LZ4
    decompression is part of every measured pipeline); offsets are not read unless a record
    is rejected, so every chunk may start at 0."""
    for chunk in chunks:
        yield lz4.block.decompress(chunk), "192.0.2.10", 0


class _Discard:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> None:
        self.size += len(data)

    def close(self) -> WrittenObject:
        return WrittenObject(bucket="bench", key="discarded", size=self.size, md5="", sha256="")

    def abort(self) -> None:
        pass


class _Collect(_Discard):
    def __init__(self) -> None:
        super().__init__()
        self.pieces: list[bytes] = []

    def write(self, data: bytes) -> None:
        super().write(data)
        self.pieces.append(data)


def config(content: ContentInfo, compress: str) -> ShipperConfig:
    return ShipperConfig(topic_id="t", bucket="bench-1", prefix="", shipper_name="bench",
                         interval=300, max_size=10240, partition="", compress=compress,
                         content=content)


JSON_ALL = ContentInfo("json", json=LEGACY_JSON)
JSON_PLAIN = ContentInfo("json", json=JsonInfo(enable_tag=False, meta_fields=[], json_type=0))
CSV = ContentInfo("csv", csv=CsvInfo(
    ["__TIMESTAMP__", "remote_addr", "method", "request_uri", "status", "body_bytes_sent",
     "http_referer", "http_user_agent", "request_time", "__SOURCE__"], ",", '"', "-", True))
PARQUET = ContentInfo("parquet", parquet=[
    ParquetKey("__TIMESTAMP__", "int64", "0"), ParquetKey("remote_addr", "string", ""),
    ParquetKey("method", "string", ""), ParquetKey("request_uri", "string", ""),
    ParquetKey("status", "int32", "NULL"), ParquetKey("body_bytes_sent", "int64", "0"),
    ParquetKey("http_user_agent", "string", ""), ParquetKey("request_time", "double", "NULL")])


R = TypeVar("R")


def cpu_timed(fn: Callable[[], R]) -> tuple[R, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def json_lines(chunks: list[bytes]) -> bytes:
    sink = _Collect()
    encode_window(payloads(chunks), config(JSON_ALL, "none"), lambda _: sink)
    return b"".join(sink.pieces)


def codec_alone(codec: str, data: bytes) -> tuple[int, float]:
    """Compress `data` as encode_window feeds a codec: 1 MiB at a time."""
    def run() -> int:
        compressor = make_compressor(codec)
        size = 0
        for at in range(0, len(data), 1 << 20):
            size += len(compressor.compress(data[at:at + (1 << 20)]))
        return size + len(compressor.finish())
    size, cpu, _ = cpu_timed(run)
    return size, cpu


def naive_exporter(chunks: list[bytes]) -> bytes:
    """What a first attempt looks like: dicts, json.dumps, one buffer, gzip at the end."""
    lines = []
    for payload, client_ip, _ in payloads(chunks):
        for group in LogGroupList.FromString(payload).logGroupList:
            tags = {t.key: t.value for t in group.logTags}
            for log in group.logs:
                record = {c.key: c.value for c in log.contents}
                record["__TIMESTAMP__"] = normalise_log_time_ms(log.time)
                record["__SOURCE__"] = group.source or client_ip
                record["__FILENAME__"] = group.filename
                record["__HOSTNAME__"] = group.hostname
                record["__TAG__"] = tags
                lines.append(json.dumps(record, ensure_ascii=False))
    return gzip.compress(("\n".join(lines) + "\n").encode(), compresslevel=6, mtime=0)


def _child_rss(chunk_file: str, count: int) -> None:
    """(d) in a fresh process: stream `count` chunks from the file through encode_window."""
    def read() -> Iterator[bytes]:
        with open(chunk_file, "rb") as f:
            for _ in range(count):
                (size,) = struct.unpack(">I", f.read(4))
                yield f.read(size)

    def stream() -> Iterator[Chunk]:
        for chunk in read():
            yield lz4.block.decompress(chunk), "192.0.2.10", 0

    import gc
    gc.collect()
    before = _peak_reset()
    sink = _Discard()
    result = encode_window(stream(), config(JSON_ALL, "gzip"), lambda _: sink)
    after = _status_kb("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"before_kb": before, "after_kb": after, "raw": result.raw_bytes}))


def _status_kb(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _peak_reset() -> int:
    """Current RSS in KiB, with the kernel's peak-RSS mark reset to it (Linux clear_refs 5),
    so the peak read afterwards is the peak of what follows, not of the imports."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return _status_kb("VmRSS")


def rss_growth(chunks: list[bytes], count: int, chunk_file: str) -> tuple[int, int, int]:
    out = subprocess.run([sys.executable, __file__, "--rss-child", chunk_file, str(count)],
                         check=True, capture_output=True, text=True).stdout
    data = json.loads(out)
    return data["before_kb"], data["after_kb"], data["raw"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100.0, help="window size, MB of JSON lines")
    parser.add_argument("--side-mb", type=float, default=20.0,
                        help="MB used for the other format/codec pairs")
    parser.add_argument("--rss-child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_child:
        _child_rss(args.rss_child[0], int(args.rss_child[1]))
        return

    cpu0 = time.process_time()
    chunks = build_chunks(args.mb)
    print(f"built {len(chunks)} chunks x {LOGS_PER_CHUNK} logs "
          f"({sum(map(len, chunks)) / MB:.1f} MB lz4) in {time.process_time() - cpu0:.1f} "
          f"CPU-s; cores: {os.cpu_count()}")
    print(f"C extension (cls_shipper._wire): {wire_status()}")
    records = len(chunks) * LOGS_PER_CHUNK
    data = json_lines(chunks)
    raw = len(data)
    print(f"window: {records} records, {raw / MB:.1f} MB JSON lines "
          f"({raw / records:.0f} B/record)\n")

    def rate(size: float, cpu: float) -> str:
        return f"{size / MB / cpu:7.1f} MB/s {size / cpu / 1000 / (raw / records):6.1f}k rec/s"

    print("(a) encode_window vs (b) the codec alone on the same JSON-lines bytes, per CPU-s")
    print(f"{'pipeline':26s} {'encode_window':>28s}   {'codec alone':>12s}   ratio  out MB")
    side = chunks[:max(1, round(len(chunks) * min(1.0, args.side_mb / args.mb)))]
    side_raw = len(json_lines(side))
    runs = [("json+gzip", JSON_ALL, "gzip", chunks, raw), ("json+none", JSON_ALL, "none", side,
            side_raw), ("json(no meta)+gzip", JSON_PLAIN, "gzip", side, side_raw)]
    runs += [(f"json+{c}", JSON_ALL, c, side, side_raw)
             for c in ("zstd", "snappy", "lz4", "lzop") if c != "lzop" or lzo_available()]
    runs += [("csv+gzip", CSV, "gzip", side, side_raw), ("parquet+snappy", PARQUET, "snappy",
             side, side_raw), ("parquet+zstd", PARQUET, "zstd", side, side_raw)]
    gzip_alone_rate = 0.0
    json_gzip_cpu = 1.0
    for name, content, codec, subset, subset_raw in runs:
        sink = _Discard()

        def run(c: ContentInfo = content, k: str = codec, s: list[bytes] = subset,
                w: _Discard = sink) -> WindowResult:
            return encode_window(payloads(s), config(c, k), lambda _: w)

        result, cpu, _ = cpu_timed(run)
        assert result.records == len(subset) * LOGS_PER_CHUNK
        # Every pipeline is rated on the JSON-lines bytes of its records, so CSV and Parquet
        # rates compare with JSON ones as "logs shipped per second".
        line = f"{name:26s} {rate(subset_raw, cpu)}"
        if content is JSON_ALL:
            part = data if subset is chunks else data[:subset_raw]
            _, alone_cpu = codec_alone(codec, part)
            alone = len(part) / MB / alone_cpu if alone_cpu else float("inf")
            ours = subset_raw / MB / cpu
            if codec == "gzip" and subset is chunks:
                gzip_alone_rate = alone
                json_gzip_cpu = cpu
            line += f"   {alone:7.1f} MB/s   {ours / alone:5.2f}"
        else:
            line += " " * 24
        print(f"{line}  {sink.size / MB:6.1f}")

    print("\n(c) straightforward exporter (json.dumps, one buffer, gzip -6) vs encode_window")
    _, naive_cpu, _ = cpu_timed(lambda: naive_exporter(side))
    sink = _Discard()
    _, ours_cpu, _ = cpu_timed(lambda: encode_window(payloads(side), config(JSON_ALL, "gzip"),
                                                     lambda _: sink))
    print(f"{'naive json+gzip':26s} {rate(side_raw, naive_cpu)}")
    print(f"{'encode_window json+gzip':26s} {rate(side_raw, ours_cpu)}   "
          f"speed-up {naive_cpu / ours_cpu:.2f}x")
    print(f"zlib gzip -6 alone         {gzip_alone_rate:7.1f} MB/s; Fluent Bit yardstick "
          f"(DESIGN.md) 21-24 MB per CPU-s")
    if shutil.which("gzip"):
        # GNU gzip has its own deflate; DESIGN.md's "~44 MB/s gzip level 6" matches it.
        _, _, cli_wall = cpu_timed(lambda: subprocess.run(
            ["gzip", "-6", "-c"], input=data, capture_output=True, check=True))
        ours = raw / MB / json_gzip_cpu
        print(f"GNU gzip -6 (CLI, wall)    {raw / MB / cli_wall:7.1f} MB/s; encode_window "
              f"json+gzip is {ours / (raw / MB / cli_wall):.2f}x of it")

    print("\n(d) peak RSS growth while encoding (json+gzip, fresh process each)")
    with tempfile.TemporaryDirectory() as tmp:
        chunk_file = str(Path(tmp) / "chunks.bin")
        with open(chunk_file, "wb") as f:
            for chunk in chunks:
                f.write(struct.pack(">I", len(chunk)) + chunk)
        for share in (0.5, 1.0):
            count = max(1, round(len(chunks) * share))
            before, after, window_raw = rss_growth(chunks, count, chunk_file)
            print(f"window {window_raw / MB:6.1f} MB: RSS {before / 1024:6.1f} -> "
                  f"{after / 1024:6.1f} MiB, growth {(after - before) / 1024:5.1f} MiB")
    print("naive exporter holds the whole window: its buffer alone is the window's size")


if __name__ == "__main__":
    main()

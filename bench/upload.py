"""`cls-shipper upload` cost: MB of input per CPU-second of the uploader process, against a
real server, beside the baseline measured in the same run: the stdlib's zlib level 6
compressing the same file alone (gzip-6, in this process, per CPU-second).

The input is nginx access logs as an application writes them, one JSON object a line (~450
bytes, the records of bench/ship_encode.py), `--lines` of them (default 360,000, ~162 MB).
Each case runs the CLI as its own process (`python -m cls_shipper upload`) and takes its CPU
from wait4; JSON lines (`--format auto`) and raw lines (`--format raw`, every line one
`__CONTENT__`) alternate with the uploader of another source tree (`--old-src`, e.g. a
checkout of main) when given, `--rounds` times. The server (SQLite, no workers) is started
here; its CPU per MB is printed too. Usage:

    .venv/bin/python bench/upload.py [--lines 360000] [--rounds 2] [--old-src ../main/src]
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

import orjson

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from tests.helpers.server import SECRET_ID, SECRET_KEY, LegacyClient, ServerProcess  # noqa: E402

from cls_shipper.ingest.cls_pb import LogGroupList  # noqa: E402
from cls_shipper.ingest.decode import decompress  # noqa: E402
from ship_encode import build_chunks  # noqa: E402

MB = 1_000_000


def write_lines(path: Path, lines: int, seq: bool = False) -> int:
    """`lines` nginx records as JSON objects, a few integer fields as a logger writes them;
    with `seq`, each starts with a unique `"seq": n` (0, 1, ...) to find it again by."""
    written = 0
    with path.open("wb") as out:
        for chunk in build_chunks(lines * 540 / MB):
            raw = decompress("lz4", chunk[4:], int.from_bytes(chunk[:4], "little"))
            for log in LogGroupList.FromString(raw).logGroupList[0].logs:
                record: dict[str, str | int] = {c.key: c.value for c in log.contents}
                record["status"] = int(record["status"])
                record["body_bytes_sent"] = int(record["body_bytes_sent"])
                if seq:
                    record = {"seq": written, **record}
                out.write(orjson.dumps(record) + b"\n")
                written += 1
                if written == lines:
                    return written
    return written


def server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def upload_cpu(src: Path, endpoint: str, topic: str, path: Path, fmt: str) -> tuple[float, float]:
    """CPU-seconds and wall seconds of one `cls-shipper upload` process."""
    env = {**os.environ, "PYTHONPATH": f"{src}:{REPO}", "CLS_SHIPPER_SECRET_ID": SECRET_ID,
           "CLS_SHIPPER_SECRET_KEY": SECRET_KEY, "COLUMNS": "100"}
    if src != REPO / "src":
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # the other tree is only read, never written
    wall = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "cls_shipper", "upload", "--topic-id", topic,
                             "--endpoint", endpoint, "--format", fmt, str(path)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"upload failed ({src}):\n{err.decode(errors='replace')[-2000:]}")
    return usage.ru_utime + usage.ru_stime, time.perf_counter() - wall


def gzip6_cpu(data: bytes) -> float:
    start = time.process_time()
    z = zlib.compressobj(6, zlib.DEFLATED, 31)
    view = memoryview(data)
    for at in range(0, len(data), 1 << 20):
        z.compress(view[at:at + (1 << 20)])
    z.flush()
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=360_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--old-src", type=Path, help="another tree's src/ to compare with")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cls-bench-upload-"))
    server = ServerProcess(work / "data", args=["--workers", "0"]).start()
    try:
        path = work / "access.jsonl"
        count = write_lines(path, args.lines)
        data = path.read_bytes()
        mb = len(data) / MB
        print(f"input: {count:,} JSON lines, {mb:.1f} MB; load average "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        client = LegacyClient(server.base_url)
        logset = client.call("POST", "/logset", json={"logset_name": "bench",
                                                      "period": 1})["logset_id"]
        trees = [("new", REPO / "src")] + ([("old", args.old_src.resolve())]
                                           if args.old_src else [])
        print(f"{'round':<6}{'uploader':<10}{'format':<8}{'CPU-s':>7}{'MB/CPU-s':>10}"
              f"{'wall s':>8}{'server MB/CPU-s':>17}{'gzip-6 alone':>14}{'ratio':>7}")
        for round_ in range(args.rounds):
            for fmt in ("auto", "raw"):
                for name, src in trees if round_ % 2 == 0 else trees[::-1]:
                    topic = client.call("POST", "/topic", json={
                        "logset_id": logset, "topic_name": f"{name}-{fmt}-{round_}"})["topic_id"]
                    assert server.proc is not None
                    before = server_cpu(server.proc.pid)
                    cpu, wall = upload_cpu(src, server.base_url, topic, path, fmt)
                    served = server_cpu(server.proc.pid) - before
                    base = mb / gzip6_cpu(data)
                    print(f"{round_:<6}{name:<10}{fmt:<8}{cpu:>7.2f}{mb / cpu:>10.1f}{wall:>8.1f}"
                          f"{mb / served:>17.1f}{base:>14.1f}{mb / cpu / base:>7.2f}", flush=True)
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

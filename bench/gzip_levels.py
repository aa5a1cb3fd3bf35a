"""Deflate implementations and levels on the nginx JSON lines that gzip objects carry: speed
per CPU-second and compressed size, each beside the stdlib's zlib at level 6 measured in the
same run (alternating, best of `--repeat`), so the choice in formats/compression.py rests on
numbers. zlib-ng and isal are the project's dependencies or candidates; libdeflate (PyPI
`deflate`) is measured when installed (it has no streaming API: 4 MiB gzip members).

    .venv/bin/python bench/gzip_levels.py [--mb 40] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from zlib_ng import zlib_ng

from ship_encode import build_chunks, json_lines

PIECE = 1 << 20


def streamed(module: Any, level: int) -> Callable[[bytes], int]:
    def run(data: bytes) -> int:
        z = module.compressobj(level, module.DEFLATED, 31)
        size = sum(len(z.compress(data[at:at + PIECE])) for at in range(0, len(data), PIECE))
        return size + len(z.flush())
    return run


def members(module: Any, level: int) -> Callable[[bytes], int]:
    def run(data: bytes) -> int:
        step = 4 * PIECE
        return sum(len(module.gzip_compress(data[at:at + step], level))
                   for at in range(0, len(data), step))
    return run


def measure(fn: Callable[[bytes], int], data: bytes) -> tuple[int, float]:
    start = time.process_time()
    size = fn(data)
    return size, time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, default=40.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data = json_lines(build_chunks(args.mb))
    mb = len(data) / 1e6
    cases: list[tuple[str, Callable[[bytes], int]]] = [("zlib 1", streamed(zlib, 1))]
    cases += [(f"zlib-ng {lv}", streamed(zlib_ng, lv)) for lv in range(1, 10)]
    try:
        from isal import isal_zlib
        cases += [(f"isal {lv}", streamed(isal_zlib, lv)) for lv in range(4)]
    except ImportError:
        print("isal not installed: skipped")
    try:
        import deflate  # type: ignore[import-not-found, unused-ignore]
        cases += [(f"libdeflate {lv} (4 MiB members)", members(deflate, lv))
                  for lv in (1, 4, 5, 6)]
    except ImportError:
        print("deflate (libdeflate) not installed: skipped")
    print(f"{mb:.1f} MB of nginx JSON lines; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'implementation, level':<32}{'MB/CPU-s':>10}{'zlib-6 MB/CPU-s':>17}{'speed':>7}"
          f"{'size':>7}")
    for name, fn in cases:
        best = base = float("inf")
        size = base_size = 0
        for _ in range(args.repeat):  # alternate with the baseline, keep the best of each
            base_size, cpu6 = measure(streamed(zlib, 6), data)
            size, cpu = measure(fn, data)
            base, best = min(base, cpu6), min(best, cpu)
        print(f"{name:<32}{mb / best:>10.1f}{mb / base:>17.1f}{base / best:>6.2f}x"
              f"{size / base_size:>7.3f}")


if __name__ == "__main__":
    main()

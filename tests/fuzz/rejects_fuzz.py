"""Fuzzing "no record blocks a window" for a bounded time (tests/helpers/rejects.py).

    make fuzz-rejects FUZZ_SECONDS=60
    python tests/fuzz/rejects_fuzz.py SECONDS [FIRST_SEED]

Rounds of generated and mutated uploads, each a window encoded in every format, with and
without encoders that refuse records, through the C paths and the Python ones, until the
time is up; a round that breaks the property raises with its seed, which replays it."""

from __future__ import annotations

import sys
import time

from tests.helpers.rejects import run_round

from cls_shipper.ingest.native import wire


def main(seconds: float, first_seed: int) -> None:
    deadline = time.monotonic() + seconds
    seed = first_seed
    checked = rejected = 0
    while time.monotonic() < deadline:
        try:
            done, refused = run_round(seed, wire)
        except Exception:
            print(f"rejects fuzz: seed {seed} breaks the property", file=sys.stderr)
            raise
        checked += done
        rejected += refused
        seed += 1
    print(f"rejects fuzz: {seed - first_seed} windows, {checked} records checked, "
          f"{rejected} rejected (C extension {'built' if wire else 'absent'})")


if __name__ == "__main__":
    main(float(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)

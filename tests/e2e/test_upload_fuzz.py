"""The upload fuzz harness's oracle (tests/fuzz/upload_fuzz.py) over its seeds and a fixed set
of random inputs, in the suite: `make fuzz-upload` explores further, coverage-guided."""

from __future__ import annotations

import random

import pytest

upload_fuzz = pytest.importorskip("tests.fuzz.upload_fuzz")


def test_every_accepted_upload_stores_exactly_its_records() -> None:
    rng = random.Random(10)
    inputs = list(upload_fuzz.SEEDS)
    inputs += [rng.randbytes(rng.randint(4, 300)) for _ in range(400)]
    for data in inputs:
        upload_fuzz.check_one(data)
    assert upload_fuzz.app().head > 0  # some of them were accepted, and checked


def test_the_independent_decoder_reads_every_member() -> None:
    import gzip

    body = gzip.compress(b"a") + gzip.compress(b"b")
    assert upload_fuzz.inflate("deflate", body) == b"ab"
    with pytest.raises(upload_fuzz.Refused):
        upload_fuzz.inflate("deflate", body + b"x" * 70)

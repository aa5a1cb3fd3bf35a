"""Topic partitions: which partition an upload goes to, and the key range each one covers.

CLS splits a topic's 128-bit hash key space evenly over its partitions (`partition_count`),
numbered from 1; an upload carrying `x-cls-hashkey` goes to the partition whose range holds
the key, so uploads with one key stay in order in one partition, and one without a key is
spread over the partitions. This module is the one place that rule lives: ingest (through
the store), pull, consumer-group assignment and any API that describes partitions use it.
"""

from __future__ import annotations

import hashlib
import itertools
import re

KEY_BITS = 128
KEY_SPACE = 1 << KEY_BITS
# The most partitions a topic can have (CLS: 10 at creation, 50 after splits).
MAX_PARTITIONS = 50
_HEX_KEY = re.compile(r"[0-9a-fA-F]{32}")
# Uploads without a key take the partitions in turn. Process-local and shared by all topics:
# any fair spread will do, and it costs no lookup or lock on the ingest path.
_turns = itertools.count()


def partition_ids(count: int) -> range:
    """The ids of a topic's partitions: 1 to `count`."""
    return range(1, max(1, count) + 1)


def key_position(hash_key: str) -> int:
    """A hash key's place in the key space: the key itself when it is 32 hex digits (an MD5
    in hex, the form CLS's key ranges are written in), else the MD5 of its UTF-8 text."""
    if _HEX_KEY.fullmatch(hash_key):
        return int(hash_key, 16)
    return int.from_bytes(hashlib.md5(hash_key.encode("utf-8", "surrogatepass")).digest(), "big")


def key_range(partition_id: int, count: int) -> tuple[str, str]:
    """(inclusive begin, exclusive end) of a partition's key range, as 32 hex digits (the end
    of the last partition is the key space's size, written as 32 'f's plus one: CLS writes
    it as "ffffffffffffffffffffffffffffffff", which we follow)."""
    begin = (partition_id - 1) * KEY_SPACE // count
    end = partition_id * KEY_SPACE // count
    return f"{begin:032x}", f"{min(end, KEY_SPACE - 1):032x}"


def choose(count: int, key_pos: int | None) -> int:
    """The partition an upload goes to: the one whose range holds `key_pos`, or the next in
    turn when the upload has no key."""
    if count <= 1:
        return 1
    if key_pos is None:
        return next(_turns) % count + 1
    return key_pos * count // KEY_SPACE + 1

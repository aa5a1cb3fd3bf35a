"""Object keys and window arithmetic: pure functions, deterministic by construction."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

from cls_shipper.model.naming import ObjectNaming, resolve_zone, shipper_token, window_token
from cls_shipper.model.windows import next_windows

START = int(datetime(2026, 11, 28, 9, 5, tzinfo=UTC).timestamp() * 1000)


def naming(**over: object) -> ObjectNaming:
    args: dict[str, object] = {
        "shipper_id": "s1", "prefix": "logs/", "partition": "%Y/%m/%d/%H/",
        "zone": resolve_zone("Asia/Shanghai"), "range_start_ms": START, "extension": ".gz",
        "filename_mode": 0, "content_type": "application/gzip",
        "rejects_extension": ".jsonl.gz", "rejects_content_type": "application/gzip", **over}
    return ObjectNaming(**args)  # type: ignore[arg-type]


def key(part: int = 0, first_offset: int = 42, **over: object) -> str:
    return naming(**over).key(part, first_offset)


def test_legacy_random_name_is_a_function_of_shipper_and_window() -> None:
    token = window_token("s1", START)
    assert key() == f"logs/2026/11/28/17/_{token}_0.gz"  # 09:05 UTC is 17:05 in UTC+8
    assert key() == key()
    assert key(part=1) == f"logs/2026/11/28/17/_{token}_1.gz"
    assert key(shipper_id="s2") != key()
    assert key(range_start_ms=START + 300_000) != key()


def test_time_zone_and_slashes() -> None:
    assert key(zone=resolve_zone("UTC-05:00"), partition="/%Y%m%d/%H/").startswith(
        "logs/20261128/04/_")
    assert key(prefix="", partition="/dt=%Y%m%d/test").startswith("dt=20261128/test_")
    assert "//" not in key(prefix="a//", partition="//%Y//")


def test_shipping_time_names() -> None:
    token = shipper_token("s1")
    assert key(filename_mode=1) == f"logs/2026/11/28/17/202611281705_000_42_{token}.gz"
    assert key(filename_mode=1, part=2) == f"logs/2026/11/28/17/202611281705_000_42_{token}-2.gz"
    assert key(filename_mode=1, partition="%Y%m%d") == (
        f"logs/20261128/202611281705_000_42_{token}.gz")
    # Two shippers on one topic, bucket and prefix never share a key.
    assert key(filename_mode=1, shipper_id="s2") != key(filename_mode=1)


def test_windows_are_contiguous_aligned_and_bounded() -> None:
    windows = list(next_windows(START, 300, START + 1_000_000, limit=100))
    assert windows[0] == (START, START + 300_000)
    assert all(a[1] == b[0] for a, b in itertools.pairwise(windows))
    assert windows[-1][1] <= START + 1_000_000 and len(windows) == 3
    # After an interval change the first window ends on the new grid.
    changed = list(next_windows(START + 300_000, 600, START + 2_000_000, limit=2))
    assert changed[0][1] % 600_000 == 0 and changed[0][0] == START + 300_000
    # A historical range stops at its end, the last window cut short.
    bounded = list(next_windows(START, 300, START + 10_000_000, limit=100,
                                stop_ms=START + 450_000))
    assert bounded == [(START, START + 300_000), (START + 300_000, START + 450_000)]
    assert list(next_windows(START, 300, START + 299_999, limit=5)) == []


def test_pattern_matches_every_part_of_its_window_and_nothing_else() -> None:
    for mode in (0, 1):
        window = naming(filename_mode=mode)
        pattern = window.pattern(42)
        assert all(pattern.match(window.key(part, 42)) for part in range(12))
        assert window.listing_prefix(42) == "logs/2026/11/28/17/"
        assert not pattern.match(naming(filename_mode=mode, range_start_ms=START + 300_000)
                                 .key(0, 42))
        assert not pattern.match(naming(filename_mode=mode, shipper_id="s2").key(0, 42))
        assert not pattern.match(window.key(0, 42) + ".tmp")


def test_pattern_refuses_a_trailing_newline_and_non_ascii_digits() -> None:
    # `match` is how the audit applies the pattern: it must still match whole keys only.
    for mode in (0, 1):
        window = naming(filename_mode=mode)
        pattern = window.pattern(42)
        assert not pattern.match(window.key(0, 42) + "\n")
        assert not pattern.match(window.key(3, 42).replace("3", "\u0663"))


def test_rejects_key_sits_beside_the_parts_and_the_pattern_knows_it() -> None:
    token = window_token("s1", START)
    legacy = naming()
    assert legacy.rejects_key(42) == f"logs/2026/11/28/17/_{token}_rejects.jsonl.gz"
    shipping_time = naming(filename_mode=1)
    assert shipping_time.rejects_key(42) == (
        f"logs/2026/11/28/17/_202611281705_000_42_{shipper_token('s1')}_rejects.jsonl.gz")
    for names in (legacy, shipping_time):
        pattern = names.pattern(42)
        rejects = names.rejects_key(42)
        assert rejects.rpartition("/")[0] == names.key(0, 42).rpartition("/")[0]
        assert rejects.startswith(names.listing_prefix(42))
        assert pattern.match(rejects) and pattern.match(names.key(3, 42))
        assert not pattern.match(rejects + "x") and not pattern.match(rejects[:-3])
        assert not naming(shipper_id="s2", filename_mode=names.filename_mode).pattern(
            42).match(rejects)

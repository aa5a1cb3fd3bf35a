"""Window arithmetic. Windows are `[start, end)` in ingest-time epoch ms, their ends aligned to
multiples of the interval; only a window right after an interval change starts unaligned,
so the sequence stays contiguous."""

from __future__ import annotations

from collections.abc import Iterator


def align_down(ms: int, interval_s: int) -> int:
    step = interval_s * 1000
    return ms - ms % step


def next_windows(start_ms: int, interval_s: int, closed_before_ms: int, limit: int,
                 stop_ms: int = 0) -> Iterator[tuple[int, int]]:
    """Consecutive windows from `start_ms` whose end is at or before `closed_before_ms` (the
    topic's seal), at most `limit` of them, and none starting at or after `stop_ms` (if set;
    the last window is cut short at `stop_ms`)."""
    step = interval_s * 1000
    start = start_ms
    for _ in range(limit):
        if stop_ms and start >= stop_ms:
            return
        end = (start // step + 1) * step
        if stop_ms:
            end = min(end, stop_ms)
        if end > closed_before_ms:
            return
        yield start, end
        start = end

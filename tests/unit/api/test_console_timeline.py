"""The console's coverage strip as the browser gets it: runs of adjacent windows of one
width and status, which must expand back to exactly the windows read, with the spans no
window covers as gaps and audit findings by window index."""

from __future__ import annotations

import time
from pathlib import Path

from cls_shipper.api.console import timeline
from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.service import Context, logsets, shippers, topics
from cls_shipper.service.audit import AuditReport, Finding
from cls_shipper.service.coverage import Coverage, Window
from cls_shipper.service.shipper_rules import defaults
from cls_shipper.settings import Settings
from cls_shipper.store import open_database

STEP = 60_000


def make_coverage(tmp_path: Path, windows: list[tuple[int, int, str]],
                  start_ms: int) -> Coverage:
    settings = Settings(data_dir=tmp_path, min_interval=1)
    ctx = Context(open_database(settings.db_url), settings)
    topic = topics.create(ctx, logsets.create(ctx, "ls", 7), "app")
    config = ShipperConfig(**{**defaults("v3"), "topic_id": topic, "bucket": "b-1",
                              "prefix": "p", "shipper_name": "s", "interval": 60})
    shipper = shippers.get(ctx, shippers.create(ctx, config, "v3"))
    found = [Window(f"t{i}", start, end, status) for i, (start, end, status)
             in enumerate(windows)]
    return Coverage(shipper, start_ms, found[-1].range_end_ms, found)


def expand(strip: dict[str, object]) -> list[tuple[int, int, str]]:
    """The windows the browser reads out of the runs (console.js `win`)."""
    out = []
    rs, rw, rn, rk = (strip[k] for k in ("rs", "rw", "rn", "rk"))
    assert isinstance(rs, list) and isinstance(rw, list) and isinstance(rn, list)
    assert isinstance(rk, str)
    origin = strip["start"]
    assert isinstance(origin, int)
    for first, width, count, kind in zip(rs, rw, rn, rk, strict=True):
        for j in range(count):
            begin = origin + (first + j * width) * 1000
            out.append((begin, begin + width * 1000, kind))
    return out


def test_runs_expand_to_exactly_the_windows_read(tmp_path: Path) -> None:
    base = (int(time.time() * 1000) - 86_400_000) // STEP * STEP
    statuses = ["success"] * 50 + ["failed"] * 2 + ["success"] * 3 + ["running", "wait"]
    windows = [(base + i * STEP, base + (i + 1) * STEP, s) for i, s in enumerate(statuses)]
    # The interval doubled (the same status, adjacent: a new run all the same), then a
    # window missing (a gap).
    doubled = windows[-1][1]
    windows += [(doubled + i * 2 * STEP, doubled + (i + 1) * 2 * STEP, "wait")
                for i in range(3)]
    after = windows[-1][1] + STEP
    windows.append((after, after + STEP, "success"))
    # The range starts mid-second: offsets still land on the windows' own seconds.
    coverage = make_coverage(tmp_path, windows, base - 5 * STEP + 440)
    strip = timeline.strip(coverage, None)
    codes = {"success": "s", "failed": "f", "running": "r", "wait": "w"}
    assert expand(strip) == [(s, e, codes[k]) for s, e, k in windows]
    assert strip["rn"] == [50, 2, 3, 1, 1, 3, 1]  # seven runs for 61 windows
    start = strip["start"]
    assert isinstance(start, int)
    gap = [(windows[59][1] - start) / 1000, (after - start) / 1000]
    assert strip["gaps"] == [gap]


def test_audit_findings_mark_windows_by_index(tmp_path: Path) -> None:
    base = (int(time.time() * 1000) - 86_400_000) // STEP * STEP
    windows = [(base + i * STEP, base + (i + 1) * STEP, "success") for i in range(4)]
    coverage = make_coverage(tmp_path, windows, base)
    report = AuditReport(coverage.shipper.shipper_id, base, windows[-1][1], findings=[
        Finding("missing", windows[2][0], windows[2][1], "t2", "k", "gone"),
        Finding("unfinished", windows[3][0], windows[3][1], "t3", "", "")])
    strip = timeline.strip(coverage, report)
    assert strip["flagged"] == {"2": "missing"}
    assert strip["audited"] is True

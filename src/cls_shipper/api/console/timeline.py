"""A shipper page's view of a range: the strip's compact data (one canvas draws it), the
counts, and the page of the task table, all from one coverage read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cls_shipper.model.task import TaskDetail, TaskStatus
from cls_shipper.service.audit import AuditReport
from cls_shipper.service.coverage import Coverage, Window, first_window_ms
from cls_shipper.timefmt import now_ms

SPANS = {"1h": 3_600_000, "6h": 21_600_000, "1d": 86_400_000, "3d": 259_200_000,
         "7d": 604_800_000}
PAGE_ROWS = 100
STATUS_CODE = {TaskStatus.SUCCESS: "s", TaskStatus.FAILED: "f", TaskStatus.WAIT: "w",
               TaskStatus.RUNNING: "r"}
_CODE_OF = {status.value: code for status, code in STATUS_CODE.items()}


@dataclass
class View:
    coverage: Coverage
    status: str  # table filter: "" for all
    from_ms: int  # table filter on window start, 0 for none
    to_ms: int
    page: int
    counts: dict[str, int] = field(default_factory=dict)
    rows: list[Window] = field(default_factory=list)
    # The page's rows with their counters, objects and attempts (looked up per row).
    details: list[TaskDetail] = field(default_factory=list)
    matching: int = 0

    @property
    def pages(self) -> int:
        return max(1, -(-self.matching // PAGE_ROWS))


def build(coverage: Coverage, status: str, from_ms: int, to_ms: int, page: int) -> View:
    view = View(coverage, status, from_ms, to_ms, page)
    view.counts = {s.value: 0 for s in TaskStatus}
    chosen = []
    # Newest first: the table opens on what is happening now.
    for task in reversed(coverage.windows):
        view.counts[task.status] += 1
        if status and task.status != status:
            continue
        if from_ms and task.range_start_ms < from_ms:
            continue
        if to_ms and task.range_start_ms >= to_ms:
            continue
        chosen.append(task)
    view.matching = len(chosen)
    view.page = min(max(page, 1), view.pages)
    first = (view.page - 1) * PAGE_ROWS
    view.rows = chosen[first:first + PAGE_ROWS]
    return view


def strip(coverage: Coverage, report: AuditReport | None) -> dict[str, Any]:
    """What the canvas draws, in seconds from the range start: the windows as runs of
    adjacent windows of one width and status (`rs` first start, `rw` width, `rn` how many,
    `rk` the status letters, one a run: a steady shipper's ten thousand windows are a
    handful of runs); the spans no window covers between the first window and the next one
    to be cut (gaps); the windows the audit found fault with, by index."""
    # Offsets are whole seconds from a whole second (windows are whole seconds long and
    # aligned to them): from the range's own start, a window starting at 10.000 would read
    # 09 when the range starts at .440.
    start = coverage.start_ms - coverage.start_ms % 1000
    windows = coverage.windows
    shipper = coverage.shipper
    first = min([first_window_ms(shipper), *(w.range_start_ms for w in windows[:1])])
    covered_until = max(first, start)
    gaps: list[list[float]] = []
    rs: list[int] = []
    rw: list[int] = []
    rn: list[int] = []
    rk: list[str] = []
    last_end = last_width = -1
    last_code = ""
    for task in windows:
        if task.range_start_ms > covered_until:
            gaps.append([(covered_until - start) / 1000, (task.range_start_ms - start) / 1000])
        covered_until = max(covered_until, task.range_end_ms)
        begin = (task.range_start_ms - start) // 1000
        width = (task.range_end_ms - task.range_start_ms) // 1000
        code = _CODE_OF[task.status]
        if begin == last_end and width == last_width and code == last_code:
            rn[-1] += 1
        else:
            rs.append(begin)
            rw.append(width)
            rn.append(1)
            rk.append(code)
            last_width, last_code = width, code
        last_end = begin + width
    cut_until = min(shipper.progress.next_window_ms, coverage.end_ms)
    if cut_until > covered_until:
        gaps.append([(covered_until - start) / 1000, (cut_until - start) / 1000])
    # By window index, as text: JSON keys are strings (and orjson refuses others).
    flagged: dict[str, str] = {}
    if report is not None:
        index = {w.task_id: i for i, w in enumerate(windows)}
        for finding in report.findings:
            if finding.kind == "gap":
                gaps.append([(finding.range_start_ms - start) / 1000,
                             (finding.range_end_ms - start) / 1000])
            elif finding.task_id in index and finding.kind != "unfinished":
                flagged[str(index[finding.task_id])] = finding.kind
    return {
        "start": start, "end": coverage.end_ms, "now": now_ms(),
        "first": (first - start) / 1000, "cut": (shipper.progress.next_window_ms - start) / 1000,
        "rs": rs, "rw": rw, "rn": rn, "rk": "".join(rk),
        "gaps": gaps, "flagged": flagged, "audited": report is not None,
    }

"""A shipper page's view of a range: the strip's compact data (one canvas draws it), the
counts, and the page of the task table, all from one coverage read."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cls_shipper.model.task import Task, TaskDetail, TaskStatus
from cls_shipper.service.audit import AuditReport
from cls_shipper.service.coverage import Coverage, first_window_ms
from cls_shipper.timefmt import now_ms

SPANS = {"1h": 3_600_000, "6h": 21_600_000, "1d": 86_400_000, "3d": 259_200_000,
         "7d": 604_800_000}
PAGE_ROWS = 100
STATUS_CODE = {TaskStatus.SUCCESS: "s", TaskStatus.FAILED: "f", TaskStatus.WAIT: "w",
               TaskStatus.RUNNING: "r"}


@dataclass
class View:
    coverage: Coverage
    status: str  # table filter: "" for all
    from_ms: int  # table filter on window start, 0 for none
    to_ms: int
    page: int
    counts: dict[str, int] = field(default_factory=dict)
    rows: list[Task] = field(default_factory=list)
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
        view.counts[task.status.value] += 1
        if status and task.status.value != status:
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
    """What the canvas draws, in offsets from the range start (seconds): each window's start
    and end and a status letter; the spans no window covers between the first window and
    the next one to be cut (gaps); the windows the audit found fault with."""
    start = coverage.start_ms
    windows = coverage.windows
    shipper = coverage.shipper
    first = min([first_window_ms(shipper), *(w.range_start_ms for w in windows[:1])])
    covered_until = max(first, start)
    gaps: list[list[float]] = []
    for task in windows:
        if task.range_start_ms > covered_until:
            gaps.append([(covered_until - start) / 1000, (task.range_start_ms - start) / 1000])
        covered_until = max(covered_until, task.range_end_ms)
    cut_until = min(shipper.progress.next_window_ms, coverage.end_ms)
    if cut_until > covered_until:
        gaps.append([(covered_until - start) / 1000, (cut_until - start) / 1000])
    flagged: dict[int, str] = {}
    if report is not None:
        index = {w.task_id: i for i, w in enumerate(windows)}
        for finding in report.findings:
            if finding.kind == "gap":
                gaps.append([(finding.range_start_ms - start) / 1000,
                             (finding.range_end_ms - start) / 1000])
            elif finding.task_id in index and finding.kind != "unfinished":
                flagged[index[finding.task_id]] = finding.kind
    return {
        "start": start, "end": coverage.end_ms, "now": now_ms(),
        "first": (first - start) / 1000, "cut": (shipper.progress.next_window_ms - start) / 1000,
        "s": [(w.range_start_ms - start) // 1000 for w in windows],
        "e": [(w.range_end_ms - start) // 1000 for w in windows],
        "k": "".join(STATUS_CODE[w.status] for w in windows),
        "gaps": gaps, "flagged": flagged, "audited": report is not None,
    }

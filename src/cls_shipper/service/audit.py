"""Proving what was shipped: the ledger checked against the bucket.

For every window of a shipper in a time range: is each object the ledger recorded in the
bucket, with the recorded size and MD5? Is anything else there under the window's names?
Are the windows contiguous, and is every one shipped? A clean report is the evidence that
each record of the range is in the bucket exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Literal

from cls_shipper.errors import Kinds, ServiceError, SinkError, invalid
from cls_shipper.model.naming import ObjectNaming
from cls_shipper.model.task import TaskDetail, TaskStatus
from cls_shipper.service.context import Context
from cls_shipper.service.shippers import get as get_shipper
from cls_shipper.shipping import ledger
from cls_shipper.sinks.base import Sink

MAX_RANGE_MS = 31 * 86_400_000
FindingKind = Literal["missing", "mismatched", "extra", "gap", "unfinished"]


@dataclass(frozen=True, slots=True)
class Finding:
    kind: FindingKind
    range_start_ms: int
    range_end_ms: int
    task_id: str = ""
    key: str = ""
    detail: str = ""


@dataclass
class AuditReport:
    shipper_id: str
    start_ms: int
    end_ms: int
    windows: int = 0
    shipped_windows: int = 0
    objects: int = 0
    records: int = 0
    records_rejected: int = 0  # in the windows' rejects objects, which are checked too
    bytes_out: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


def _check_window(sink: Sink, task: TaskDetail, report: AuditReport) -> None:
    config = task.config
    recorded = {obj.key: obj for obj in task.objects}
    for key, obj in recorded.items():
        report.objects += 1
        found = sink.stat(config.bucket, key)
        if found is None:
            report.findings.append(Finding("missing", task.range_start_ms, task.range_end_ms,
                                           task.task_id, key, "not in the bucket"))
        elif found.size != obj.size or (found.md5 and found.md5 != obj.md5):
            report.findings.append(Finding(
                "mismatched", task.range_start_ms, task.range_end_ms, task.task_id, key,
                f"bucket has {found.size} bytes md5 {found.md5 or '?'}, the ledger recorded "
                f"{obj.size} bytes md5 {obj.md5}"))
    if config.filename_mode == 1 and task.first_offset is None:
        return  # an empty window has no names of its own in shipping-time naming
    naming = ObjectNaming.for_window(task.shipper_id, task.range_start_ms, config)
    pattern = naming.pattern(task.first_offset or 0)
    for stored in sink.list_objects(config.bucket,
                                    naming.listing_prefix(task.first_offset or 0)):
        if pattern.match(stored.key) and stored.key not in recorded:
            report.findings.append(Finding(
                "extra", task.range_start_ms, task.range_end_ms, task.task_id, stored.key,
                "named like this window's objects but not in the ledger"))


def audit(ctx: Context, sink: Sink, shipper_id: str, start_ms: int, end_ms: int) -> AuditReport:
    """Check the windows of `shipper_id` that start in [start_ms, end_ms]."""
    if start_ms > end_ms:
        raise invalid("start_time must not be later than end_time")
    if end_ms - start_ms > MAX_RANGE_MS:
        raise invalid("an audit covers at most 31 days; audit a longer span in parts")
    get_shipper(ctx, shipper_id)  # ShipperNotExist
    with ctx.db.read() as conn:
        windows = ledger.windows_starting_in(conn, shipper_id, start_ms, end_ms)
    report = AuditReport(shipper_id, start_ms, end_ms, windows=len(windows))
    for before, after in pairwise(windows):
        if before.range_end_ms != after.range_start_ms:
            report.findings.append(Finding("gap", before.range_end_ms, after.range_start_ms,
                                           detail="no task covers this span"))
    try:
        _check_windows(sink, windows, report)
    except SinkError as exc:
        raise ServiceError(Kinds.OBJECT_STORE_FAILED, f"audit stopped: {exc}") from exc
    return report


def _check_windows(sink: Sink, windows: list[TaskDetail], report: AuditReport) -> None:
    for task in windows:
        if task.status is not TaskStatus.SUCCESS:
            report.findings.append(Finding("unfinished", task.range_start_ms, task.range_end_ms,
                                           task.task_id, detail=f"{task.status}: {task.message}"))
            continue
        report.shipped_windows += 1
        report.records += task.records
        report.records_rejected += task.records_rejected
        report.bytes_out += task.bytes_out
        _check_window(sink, task, report)

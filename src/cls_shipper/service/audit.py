"""Proving what was shipped: the ledger checked against the bucket.

For every window of a shipper in a time range: is each object the ledger recorded in the
bucket, with the recorded size and MD5? Is anything else there under the window's names?
Are the windows contiguous, and is every one shipped? A clean report is the evidence that
each record of the range is in the bucket exactly once."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any, Literal

from sqlalchemy import select

from cls_shipper.errors import Kinds, ServiceError, SinkError, invalid
from cls_shipper.model.naming import ObjectNaming
from cls_shipper.model.shipper import ShipperConfig
from cls_shipper.service.context import Context
from cls_shipper.service.shippers import get as get_shipper
from cls_shipper.sinks.base import Sink
from cls_shipper.store.schema import tasks

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
    bytes_out: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.findings


def _check_window(sink: Sink, row: Any, report: AuditReport) -> None:
    config = ShipperConfig.from_dict(row.config)
    recorded = {obj["key"]: obj for obj in row.objects or []}
    for key, obj in recorded.items():
        report.objects += 1
        found = sink.stat(config.bucket, key)
        if found is None:
            report.findings.append(Finding("missing", row.range_start_ms, row.range_end_ms,
                                           row.task_id, key, "not in the bucket"))
        elif found.size != obj["size"] or (found.md5 and found.md5 != obj["md5"]):
            report.findings.append(Finding(
                "mismatched", row.range_start_ms, row.range_end_ms, row.task_id, key,
                f"bucket has {found.size} bytes md5 {found.md5 or '?'}, the ledger recorded "
                f"{obj['size']} bytes md5 {obj['md5']}"))
    if config.filename_mode == 1 and row.first_offset is None:
        return  # an empty window has no names of its own in shipping-time naming
    naming = ObjectNaming.for_window(row.shipper_id, row.range_start_ms, config)
    pattern = naming.pattern(row.first_offset or 0)
    for stored in sink.list_objects(config.bucket, naming.listing_prefix(row.first_offset or 0)):
        if pattern.match(stored.key) and stored.key not in recorded:
            report.findings.append(Finding(
                "extra", row.range_start_ms, row.range_end_ms, row.task_id, stored.key,
                "named like this window's objects but not in the ledger"))


def audit(ctx: Context, sink: Sink, shipper_id: str, start_ms: int, end_ms: int) -> AuditReport:
    """Check the windows of `shipper_id` that start in [start_ms, end_ms]."""
    if start_ms > end_ms:
        raise invalid("start_time must not be later than end_time")
    if end_ms - start_ms > MAX_RANGE_MS:
        raise invalid("an audit covers at most 31 days; audit a longer span in parts")
    get_shipper(ctx, shipper_id)  # ShipperNotExist
    with ctx.db.read() as conn:
        rows = list(conn.execute(select(tasks).where(
            tasks.c.shipper_id == shipper_id, tasks.c.range_start_ms >= start_ms,
            tasks.c.range_start_ms <= end_ms).order_by(tasks.c.range_start_ms)).all())
    report = AuditReport(shipper_id, start_ms, end_ms, windows=len(rows))
    for before, after in pairwise(rows):
        if before.range_end_ms != after.range_start_ms:
            report.findings.append(Finding("gap", before.range_end_ms, after.range_start_ms,
                                           detail="no task covers this span"))
    try:
        _check_windows(sink, rows, report)
    except SinkError as exc:
        raise ServiceError(Kinds.OBJECT_STORE_FAILED, f"audit stopped: {exc}") from exc
    return report


def _check_windows(sink: Sink, rows: list[Any], report: AuditReport) -> None:
    for row in rows:
        if row.status != "success":
            report.findings.append(Finding("unfinished", row.range_start_ms, row.range_end_ms,
                                           row.task_id, detail=f"{row.status}: {row.message}"))
            continue
        report.shipped_windows += 1
        report.records += row.records
        report.bytes_out += row.bytes_out
        _check_window(sink, row, report)

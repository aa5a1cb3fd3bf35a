"""Shippers: create, read, list, modify, delete, switch on and off (spec §4.1-§4.5, §7.4-§7.7)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, not_, or_, select, update
from sqlalchemy.engine import Connection

from cls_shipper.errors import ErrorKind, Kinds, ServiceError, SinkError, SinkErrorKind, invalid
from cls_shipper.ids import new_id
from cls_shipper.model.shipper import Api, ContentInfo, ShipperConfig
from cls_shipper.model.task import TaskStatus
from cls_shipper.model.windows import align_down
from cls_shipper.service import topics as topic_service
from cls_shipper.service.context import Context
from cls_shipper.service.shipper_rules import check_bucket, check_prefix, validate
from cls_shipper.shipping import ledger
from cls_shipper.store.schema import shippers, topics
from cls_shipper.timefmt import now_ms

log = logging.getLogger("cls_shipper.service.shippers")
IMMUTABLE = ("topic_id",)
# The probe object a destination check writes and deletes, after the shipper's prefix.
_PROBE_KINDS: dict[SinkErrorKind, ErrorKind] = {
    "bucket_missing": Kinds.DESTINATION_MISSING,
    "access_denied": Kinds.DESTINATION_DENIED,
    "invalid": Kinds.INVALID_PARAM,
    "unreachable": Kinds.OBJECT_STORE_FAILED,
    "other": Kinds.OBJECT_STORE_FAILED,
}


# API 3.0 HistoryStatus (spec §7.6, §8.6).
HISTORY_REALTIME, HISTORY_PREPARING, HISTORY_RUNNING, HISTORY_EXCEPTION, HISTORY_COMPLETE = (
    0, 1, 2, 3, 4)
# API 3.0 TaskStatus of a shipper (spec §7.6): the `taskStatus` filter of DescribeShippers.
TASK_STATUS_STOPPED, TASK_STATUS_RUNNING, TASK_STATUS_EXCEPTION = 0, 1, 2


@dataclass(frozen=True, slots=True)
class History:
    """Historical shipping (API 3.0 StartTime in the past): the range is
    [aligned StartTime, EndTime or the creation time), the part that was already history when
    the shipper was created."""

    status: int  # HISTORY_*
    fraction: float  # share of the range's time shipped successfully, 0.0-1.0
    remain_s: int  # estimated seconds until the range is shipped; 0 when done or unknown


NO_HISTORY = History(HISTORY_REALTIME, 0.0, 0)


@dataclass(frozen=True, slots=True)
class Progress:
    """How far a shipper has shipped, for GET /shipper and DescribeShippers."""

    shipped_until_ms: int  # end of the newest window shipped with nothing pending before it
    next_window_ms: int  # start of the next window the scheduler will cut
    oldest_failed_ms: int | None  # start of the oldest failed window, if any
    pending: int  # tasks waiting or running
    failed: int
    succeeded: int
    history: History = NO_HISTORY  # API 3.0 historical shipping, see History


@dataclass(frozen=True, slots=True)
class Shipper:
    shipper_id: str
    effective: bool
    created_ms: int
    updated_ms: int
    start_ms: int
    end_ms: int
    config: ShipperConfig
    progress: Progress
    blocked: ledger.Blocked | None = None  # its destination refuses it (see the ledger)

    @property
    def task_status(self) -> int:
        """API 3.0 TaskStatus: stopped when switched off, exception while blocked or while
        any task has failed (and not been retried), else running."""
        if not self.effective:
            return TASK_STATUS_STOPPED
        if self.blocked is not None or self.progress.failed:
            return TASK_STATUS_EXCEPTION
        return TASK_STATUS_RUNNING


def check_destination(ctx: Context, bucket: str, prefix: str) -> None:
    """Fail now, not at the first window, when the bucket is missing or not writable: write
    a small object under the prefix and delete it (unless CHECK_DESTINATION is off, for
    creating shippers before their buckets exist). Done outside any transaction: it waits
    on the network."""
    if not ctx.settings.check_destination:
        return
    try:
        ctx.sink().probe(bucket, prefix)
    except SinkError as exc:
        detail = exc.detail or exc.message
        message = {
            "bucket_missing": f"bucket {bucket!r} does not exist ({detail}): create it "
                              "first, or start the server with CHECK_DESTINATION=false",
            "access_denied": f"no permission to write to bucket {bucket!r} ({detail}): grant "
                             "the server's object store credentials PutObject on it",
        }.get(exc.kind, f"cannot check bucket {bucket!r}: {exc.message}")
        raise ServiceError(_PROBE_KINDS[exc.kind], message) from None


def create(ctx: Context, config: ShipperConfig, api: Api, *, start_ms: int = 0,
           end_ms: int = 0) -> str:
    """A new shipper. Windows start at the aligned window holding `start_ms` (API 3.0
    StartTime, for historical shipping) or, without one, the creation time."""
    config = validate(config, api, ctx.settings.min_interval)
    created = now_ms()
    if start_ms < 0 or end_ms < 0:
        raise invalid("StartTime and EndTime must be unix seconds (0: not set)")
    if end_ms and not start_ms:
        raise invalid("EndTime needs a StartTime in the past: EndTime cannot be in the future, "
                      "so the range from now to it would be empty")
    if start_ms and end_ms and end_ms <= start_ms:
        raise invalid("EndTime must be after StartTime")
    if end_ms and end_ms > created + 1000:
        raise invalid("EndTime cannot be in the future")
    if start_ms > created + 1000:
        raise invalid("StartTime cannot be in the future")
    topic = topic_service.get(ctx, config.topic_id)
    if start_ms:
        retention_start = created - topic.period * 86_400_000
        if start_ms < retention_start:
            raise invalid("StartTime cannot be earlier than the start of the topic's retention")
    check_destination(ctx, config.bucket, config.prefix)
    first_window = align_down(start_ms or created, config.interval)
    shipper_id = new_id()
    with ctx.db.begin() as conn:
        count = conn.execute(select(func.count()).select_from(shippers)
                             .where(shippers.c.topic_id == config.topic_id)).scalar_one()
        if count >= ctx.settings.quota_shippers:
            raise ServiceError(Kinds.SHIPPER_EXCEED,
                               f"a topic has at most {ctx.settings.quota_shippers} shippers")
        clash = conn.execute(select(shippers.c.shipper_id).where(
            shippers.c.topic_id == config.topic_id,
            shippers.c.shipper_name == config.shipper_name)).first()
        if clash is not None:
            raise ServiceError(Kinds.SHIPPER_CONFLICT,
                               f"topic already has a shipper named {config.shipper_name!r}")
        # Seal the topic at the creation time: an upload acknowledged after this commit then
        # gets an ingest time at or after `created`, so inside the first window or later, even
        # when this node's clock runs ahead of the node that takes the upload.
        conn.execute(update(topics).where(topics.c.topic_id == config.topic_id).values(
            sealed_ms=case((topics.c.sealed_ms < created, created),
                           else_=topics.c.sealed_ms)))
        conn.execute(insert(shippers).values(
            shipper_id=shipper_id, topic_id=config.topic_id, shipper_name=config.shipper_name,
            created_ms=created, updated_ms=created, effective=True, config=config.to_dict(),
            next_window_ms=first_window, start_ms=start_ms, end_ms=end_ms))
    # Changes to what is shipped where are rare and matter: one line each, with the request
    # id of the call that made them.
    log.info("shipper %s created on topic %s: bucket %s, prefix %r, every %d s",
             shipper_id, config.topic_id, config.bucket, config.prefix, config.interval)
    return shipper_id


def _history(conn: Connection, row: Any, now: int) -> History:
    if not row.start_ms:
        return NO_HISTORY
    interval_s = int(row.config["interval"])
    first = align_down(row.start_ms, interval_s)
    last = row.end_ms or row.created_ms
    total = max(last - first, 1)
    seen = ledger.range_progress(conn, row.shipper_id, first, last)
    fraction = min(seen.shipped_ms / total, 1.0)
    if seen.shipped_ms >= total:
        return History(HISTORY_COMPLETE, 1.0, 0)
    if seen.any_failed:
        status = HISTORY_EXCEPTION
    elif seen.any_started:
        status = HISTORY_RUNNING
    else:
        status = HISTORY_PREPARING
    # Estimate from the pace so far: range time shipped per wall-clock time since the first
    # run of the range started. Nothing shipped yet means no pace to go by: 0 (unknown).
    remain = 0
    if seen.shipped_ms > 0 and seen.first_started_ms is not None:
        elapsed = max(now - seen.first_started_ms, 1)
        remain = round((total - seen.shipped_ms) * elapsed / seen.shipped_ms / 1000)
    return History(status, fraction, remain)


def _progress(conn: Connection, shipper_id: str, next_window_ms: int) -> Progress:
    found = ledger.progress_of(conn, shipper_id)
    return Progress(
        shipped_until_ms=found.shipped_until_ms,
        next_window_ms=next_window_ms,
        oldest_failed_ms=found.oldest_failed_ms,
        pending=found.counts[TaskStatus.WAIT] + found.counts[TaskStatus.RUNNING],
        failed=found.counts[TaskStatus.FAILED],
        succeeded=found.counts[TaskStatus.SUCCESS],
    )


def _to_shipper(conn: Connection, row: Any) -> Shipper:
    progress = dataclasses.replace(_progress(conn, row.shipper_id, row.next_window_ms),
                                   history=_history(conn, row, now_ms()))
    return Shipper(
        shipper_id=row.shipper_id, effective=row.effective, created_ms=row.created_ms,
        updated_ms=row.updated_ms, start_ms=row.start_ms, end_ms=row.end_ms,
        config=ShipperConfig.from_dict(row.config), progress=progress,
        blocked=ledger.blocked_of(row),
    )


def get(ctx: Context, shipper_id: str) -> Shipper:
    if not isinstance(shipper_id, str) or not shipper_id:
        raise invalid("shipper_id must be a non-empty string")
    with ctx.db.read() as conn:
        row = conn.execute(select(shippers).where(shippers.c.shipper_id == shipper_id)).first()
        if row is None:
            raise ServiceError(Kinds.SHIPPER_NOT_EXIST, f"shipper {shipper_id!r} does not exist")
        return _to_shipper(conn, row)


@dataclass(frozen=True, slots=True)
class ShipperQuery:
    topic_ids: list[str] | None = None
    shipper_ids: list[str] | None = None
    names: list[str] | None = None
    exact_names: bool = False
    offset: int = 0
    limit: int = 50
    task_statuses: list[int] | None = None  # TASK_STATUS_* (API 3.0 `taskStatus` filter)


def _task_status_condition(statuses: list[int]) -> Any:
    """SQL for Shipper.task_status in `statuses`; the same rule as the property."""
    has_failed = or_(ledger.has_failed_task(shippers.c.shipper_id),
                     shippers.c.blocked_since_ms.is_not(None))
    by_status = {
        TASK_STATUS_STOPPED: not_(shippers.c.effective),
        TASK_STATUS_RUNNING: and_(shippers.c.effective, not_(has_failed)),
        TASK_STATUS_EXCEPTION: and_(shippers.c.effective, has_failed),
    }
    unknown = [s for s in statuses if s not in by_status]
    if unknown:
        raise invalid("taskStatus must be 0 (stopped), 1 (running) or 2 (exception)")
    return or_(*[by_status[s] for s in statuses])


def search(ctx: Context, query: ShipperQuery) -> tuple[list[Shipper], int]:
    """Shippers matching every given criterion, in creation order, and the total count."""
    if query.offset < 0 or query.limit < 1:
        raise invalid("offset must be >= 0 and count/limit >= 1")
    cond: list[Any] = []
    if query.topic_ids is not None:
        cond.append(shippers.c.topic_id.in_(query.topic_ids))
    if query.shipper_ids is not None:
        cond.append(shippers.c.shipper_id.in_(query.shipper_ids))
    if query.names is not None:
        if query.exact_names:
            cond.append(shippers.c.shipper_name.in_(query.names))
        else:
            cond.append(or_(*[shippers.c.shipper_name.contains(n, autoescape=True)
                              for n in query.names]))
    if query.task_statuses is not None:
        cond.append(_task_status_condition(query.task_statuses))
    with ctx.db.read() as conn:
        total = conn.execute(select(func.count()).select_from(shippers).where(*cond)).scalar_one()
        rows = conn.execute(select(shippers).where(*cond)
                            .order_by(shippers.c.created_ms, shippers.c.shipper_id)
                            .offset(query.offset).limit(query.limit)).all()
        return [_to_shipper(conn, r) for r in rows], total


def list_for_topic(ctx: Context, topic_id: str, offset: int, count: int) -> list[Shipper]:
    topic_service.get(ctx, topic_id)  # TopicNotExist for an unknown topic
    found, _ = search(ctx, ShipperQuery(topic_ids=[topic_id], offset=offset, limit=count))
    return found


def modify(ctx: Context, shipper_id: str, api: Api, changes: dict[str, Any],
           effective: bool | None = None) -> None:
    """Apply a partial update. `changes` holds ShipperConfig field names; later windows use
    the new config, tasks already cut keep the snapshot they were cut with."""
    unknown = set(changes) - {f.name for f in dataclasses.fields(ShipperConfig)}
    if unknown:
        raise invalid(f"unknown shipper field(s): {', '.join(sorted(unknown))}")
    for name in IMMUTABLE:
        if name in changes:
            raise invalid(f"{name} cannot be modified")
    if not changes and effective is None:
        raise invalid("give at least one field to modify")
    _check_new_destination(ctx, shipper_id, changes)
    with ctx.db.begin() as conn:
        # FOR UPDATE: two concurrent modifies on PostgreSQL must not both read the old config
        # and write it back whole, losing one change (SQLite's BEGIN IMMEDIATE serialises).
        row = conn.execute(select(shippers).where(shippers.c.shipper_id == shipper_id)
                           .with_for_update()).first()
        if row is None:
            raise ServiceError(Kinds.SHIPPER_NOT_EXIST, f"shipper {shipper_id!r} does not exist")
        current = ShipperConfig.from_dict(row.config)
        # max_size is the one rule that differs between the APIs (legacy 100-256, API 3.0
        # 5-256). A value the request does not change was valid when it was set, perhaps
        # through the other API, so it is held to the looser bound: a shipper created with
        # MaxSize 5 stays manageable through the legacy API.
        rules: Api = api if "max_size" in changes else "v3"
        content = changes.get("content")
        if (isinstance(content, ContentInfo) and content.format == "json"
                and content.json is None and current.content.json is not None):
            # JSON without options (the legacy API has none) keeps the current ones: a
            # read-modify-write through GET /shipper must not change what is shipped.
            changes = {**changes, "content": ContentInfo("json", json=current.content.json)}
        updated = validate(dataclasses.replace(current, **changes), rules,
                           ctx.settings.min_interval)
        if updated.shipper_name != current.shipper_name and conn.execute(
                select(shippers.c.shipper_id).where(
                    shippers.c.topic_id == current.topic_id,
                    shippers.c.shipper_name == updated.shipper_name,
                    shippers.c.shipper_id != shipper_id)).first() is not None:
            raise ServiceError(Kinds.SHIPPER_CONFLICT,
                               f"topic already has a shipper named {updated.shipper_name!r}")
        values: dict[str, Any] = {"config": updated.to_dict(), "updated_ms": now_ms(),
                                  "shipper_name": updated.shipper_name}
        if effective is not None:
            values["effective"] = effective
        conn.execute(update(shippers).where(shippers.c.shipper_id == shipper_id).values(**values))
    log.info("shipper %s modified: %s", shipper_id,
             ", ".join(sorted([*changes, *(["effective"] if effective is not None else [])])))


def _check_new_destination(ctx: Context, shipper_id: str, changes: dict[str, Any]) -> None:
    """Before a modify's transaction (no lock held on the network): check the destination
    when the bucket or the prefix changes."""
    if "bucket" not in changes and "prefix" not in changes:
        return
    with ctx.db.read() as conn:
        row = conn.execute(select(shippers.c.config)
                           .where(shippers.c.shipper_id == shipper_id)).first()
    if row is None:
        return  # the transaction reports ShipperNotExist
    current = ShipperConfig.from_dict(row.config)
    check_destination(ctx, check_bucket(changes.get("bucket", current.bucket)),
                      check_prefix(changes.get("prefix", current.prefix)))


def delete_shipper(ctx: Context, shipper_id: str) -> None:
    """Deletes the rule and its task ledger; objects already shipped stay in the bucket."""
    with ctx.db.begin() as conn:
        result = conn.execute(delete(shippers).where(shippers.c.shipper_id == shipper_id))
        if result.rowcount == 0:
            raise ServiceError(Kinds.SHIPPER_NOT_EXIST, f"shipper {shipper_id!r} does not exist")
        ledger.delete_shipper_tasks(conn, shipper_id)
    log.info("shipper %s deleted with its task ledger", shipper_id)


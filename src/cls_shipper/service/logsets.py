"""Logsets: named containers of topics with a retention period in days (spec §5.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.ids import check_custom_id, new_id
from cls_shipper.service.context import Context
from cls_shipper.service.matching import TagFilter, id_matches, text_matches
from cls_shipper.service.tags import check_tags
from cls_shipper.store.schema import (
    consumer_group_topics,
    consumer_groups,
    consumer_members,
    consumer_partitions,
    logsets,
    topics,
)
from cls_shipper.timefmt import now_ms

MAX_PERIOD_DAYS = 3640  # API 3.0's "permanent"; the legacy doc's max is 90.
# API 3.0's CreateLogset has no retention; its topics then keep logs this long.
DEFAULT_PERIOD_DAYS = 30


@dataclass(frozen=True, slots=True)
class Logset:
    logset_id: str
    logset_name: str
    period: int
    tags: list[dict[str, str]]
    created_ms: int
    topic_count: int = 0


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise invalid("logset_name must be a non-empty string")
    if len(name) > 255 or "|" in name:
        raise invalid("logset_name must be at most 255 characters and contain no '|'")
    return name


def _check_period(period: Any) -> int:
    if isinstance(period, bool) or not isinstance(period, int) \
            or not 1 <= period <= MAX_PERIOD_DAYS:
        raise invalid(f"period must be a whole number of days from 1 to {MAX_PERIOD_DAYS}")
    return period


def create(ctx: Context, name: Any, period: Any = DEFAULT_PERIOD_DAYS,
           tags: list[dict[str, str]] | None = None, logset_id: str | None = None) -> str:
    name = _check_name(name)
    period = _check_period(period)
    tags = check_tags(tags)
    new = check_custom_id(logset_id, "LogsetId") if logset_id else new_id()
    with ctx.db.begin() as conn:
        count = conn.execute(select(func.count()).select_from(logsets)).scalar_one()
        if count >= ctx.settings.quota_logsets:
            raise ServiceError(Kinds.LOGSET_EXCEED,
                               f"at most {ctx.settings.quota_logsets} logsets may exist")
        taken = conn.execute(select(logsets.c.logset_id).where(
            (logsets.c.logset_name == name) | (logsets.c.logset_id == new))).first()
        if taken is not None:
            raise ServiceError(Kinds.LOGSET_CONFLICT, f"logset {name!r} already exists")
        try:
            conn.execute(insert(logsets).values(logset_id=new, logset_name=name, period=period,
                                                tags=tags or [], created_ms=now_ms()))
        except IntegrityError:
            raise ServiceError(Kinds.LOGSET_CONFLICT, f"logset {name!r} already exists") from None
    return new


def _row_to_logset(row: Any) -> Logset:
    return Logset(row.logset_id, row.logset_name, row.period, list(row.tags or []),
                  row.created_ms, row.topic_count)


def _query() -> Any:
    topic_count = (select(func.count()).select_from(topics)
                   .where(topics.c.logset_id == logsets.c.logset_id).scalar_subquery())
    return select(logsets, topic_count.label("topic_count"))


def get(ctx: Context, logset_id: str) -> Logset:
    with ctx.db.read() as conn:
        row = conn.execute(_query().where(logsets.c.logset_id == logset_id)).first()
    if row is None:
        raise ServiceError(Kinds.LOGSET_NOT_EXIST, f"logset {logset_id!r} does not exist")
    return _row_to_logset(row)


def list_all(ctx: Context) -> list[Logset]:
    with ctx.db.read() as conn:
        rows = conn.execute(_query().order_by(logsets.c.created_ms, logsets.c.logset_id)).all()
    return [_row_to_logset(r) for r in rows]


def search(ctx: Context, *, names: list[str] | None = None, exact_names: bool = False,
           ids: list[str] | None = None, tags: TagFilter | None = None) -> list[Logset]:
    """Logsets matching every given criterion, in creation order."""
    tag_filter = tags or TagFilter()
    return [item for item in list_all(ctx)
            if text_matches(item.logset_name, names, exact_names)
            and id_matches(item.logset_id, ids) and tag_filter.matches(item.tags)]


def modify(ctx: Context, logset_id: str, name: Any = None, period: Any = None,
           tags: list[dict[str, str]] | None = None) -> None:
    values: dict[str, Any] = {}
    if name is not None:
        values["logset_name"] = _check_name(name)
    if period is not None:
        values["period"] = _check_period(period)
    if tags is not None:
        values["tags"] = check_tags(tags)
    if not values:
        raise invalid("give at least one of logset_name, period")
    with ctx.db.begin() as conn:
        if "logset_name" in values:
            clash = conn.execute(select(logsets.c.logset_id).where(
                logsets.c.logset_name == values["logset_name"],
                logsets.c.logset_id != logset_id)).first()
            if clash is not None:
                raise ServiceError(Kinds.LOGSET_CONFLICT,
                                   f"logset {values['logset_name']!r} already exists")
        result = conn.execute(update(logsets).where(logsets.c.logset_id == logset_id)
                              .values(**values))
        if result.rowcount == 0:
            raise ServiceError(Kinds.LOGSET_NOT_EXIST, f"logset {logset_id!r} does not exist")


def delete_logset(ctx: Context, logset_id: str) -> None:
    with ctx.db.begin() as conn:
        exists = conn.execute(select(logsets.c.logset_id)
                              .where(logsets.c.logset_id == logset_id)).first()
        if exists is None:
            raise ServiceError(Kinds.LOGSET_NOT_EXIST, f"logset {logset_id!r} does not exist")
        has_topics = conn.execute(select(topics.c.topic_id)
                                  .where(topics.c.logset_id == logset_id).limit(1)).first()
        if has_topics is not None:
            raise ServiceError(Kinds.LOGSET_NOT_EMPTY,
                               "the logset still contains topics; delete them first")
        # The logset's consumer groups go with it: with no topic left they read nothing.
        for table in (consumer_members, consumer_partitions, consumer_group_topics,
                      consumer_groups):
            conn.execute(delete(table).where(table.c.logset_id == logset_id))
        conn.execute(delete(logsets).where(logsets.c.logset_id == logset_id))

"""Topics: the append-only logs that uploads go into (spec §5.2, §7.10)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.ids import check_custom_id, new_id
from cls_shipper.model import partitions
from cls_shipper.service import topic_options
from cls_shipper.service.context import Context
from cls_shipper.service.matching import TagFilter, id_matches, text_matches
from cls_shipper.service.tags import check_tags
from cls_shipper.service.topic_options import TopicOptions
from cls_shipper.store.schema import (
    consumer_group_topics,
    consumer_groups,
    consumer_partitions,
    log_chunks,
    logsets,
    shippers,
    topics,
)
from cls_shipper.timefmt import now_ms

LOG_TYPES = ("json_log", "delimiter_log", "minimalist_log", "multiline_log", "fullregex_log")
RESERVED_NAMES = ("cls_service_log", "loglistener_status", "loglistener_alarm",
                  "loglistener_business", "cls_service_metric")


@dataclass(frozen=True, slots=True)
class Topic:
    topic_id: str
    logset_id: str
    topic_name: str
    partition_count: int
    path: str
    wild_path: str
    collection: bool
    index: bool
    log_type: str
    extract_rule: dict[str, Any]
    period: int  # effective retention in days
    tags: list[dict[str, str]]
    created_ms: int
    next_offset: int
    last_ingest_ms: int
    options: TopicOptions
    own_period: bool  # the retention is the topic's own, not its logset's


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise invalid("topic_name must be a non-empty string")
    if len(name) > 255 or "|" in name or name in RESERVED_NAMES:
        raise invalid("topic_name must be at most 255 characters, contain no '|' and not be "
                      "a reserved name")
    return name


def _check_partitions(value: Any) -> int:
    # The doc samples send partition_count as the string "1".
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 3:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10:
        raise invalid("partition_count must be a whole number from 1 to 10")
    return value


def _check_str(name: str, value: Any, limit: int = 1024) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise invalid(f"{name} must be a string of at most {limit} characters")
    return value


def _check_log_type(value: Any) -> str:
    if value not in LOG_TYPES:
        raise invalid(f"log_type must be one of {', '.join(LOG_TYPES)}")
    return str(value)


def create(ctx: Context, logset_id: Any, topic_name: Any, *, partition_count: Any = 1,
           path: Any = "", wild_path: Any = "", log_type: Any = "minimalist_log",
           extract_rule: Any = None, collection: Any = True, period: Any = None,
           tags: list[dict[str, str]] | None = None, topic_id: str | None = None,
           options: dict[str, Any] | None = None) -> str:
    """A new topic; `options` are TopicOptions fields (the API 3.0 topic options)."""
    if not isinstance(logset_id, str) or not logset_id:
        raise invalid("logset_id must be a non-empty string")
    values = {
        "topic_name": _check_name(topic_name),
        "partition_count": _check_partitions(partition_count),
        "path": _check_str("path", path),
        "wild_path": _check_str("wild_path", wild_path),
        "log_type": _check_log_type(log_type),
        "extract_rule": extract_rule if extract_rule is not None else {},
        "collection": collection,
    }
    chosen = topic_options.apply(TopicOptions(), options or {}, creating=True)
    tags = check_tags(tags)
    if period is not None:
        values["period"] = topic_options.check_period(period, chosen.storage_type)
    if not isinstance(values["extract_rule"], dict):
        raise invalid("extract_rule must be an object")
    if not isinstance(collection, bool):
        raise invalid("collection must be a boolean")
    new = check_custom_id(topic_id, "TopicId") if topic_id else new_id()
    with ctx.db.begin() as conn:
        if conn.execute(select(logsets.c.logset_id)
                        .where(logsets.c.logset_id == logset_id)).first() is None:
            raise ServiceError(Kinds.LOGSET_NOT_EXIST, f"logset {logset_id!r} does not exist")
        topic_options.check_topic(chosen, values["partition_count"],
                                  values.get("period") or _logset_period(conn, logset_id))
        count = conn.execute(select(func.count()).select_from(topics)
                             .where(topics.c.logset_id == logset_id)).scalar_one()
        if count >= ctx.settings.quota_topics:
            raise ServiceError(Kinds.TOPIC_EXCEED,
                               f"a logset holds at most {ctx.settings.quota_topics} topics")
        clash = conn.execute(select(topics.c.topic_id).where(
            ((topics.c.logset_id == logset_id) & (topics.c.topic_name == values["topic_name"]))
            | (topics.c.topic_id == new))).first()
        if clash is not None:
            raise ServiceError(Kinds.TOPIC_CONFLICT,
                               f"topic {values['topic_name']!r} already exists in the logset")
        created = now_ms()
        conn.execute(insert(topics).values(
            topic_id=new, logset_id=logset_id, index_enabled=False, tags=tags or [],
            created_ms=created, next_offset=0, last_ingest_ms=0, sealed_ms=0,
            options=chosen.stored(), **values))
    return new


def _logset_period(conn: Any, logset_id: str) -> int:
    return int(conn.execute(select(logsets.c.period)
                            .where(logsets.c.logset_id == logset_id)).scalar_one())


def _query() -> Any:
    return select(topics, logsets.c.period.label("logset_period")).join(
        logsets, logsets.c.logset_id == topics.c.logset_id)


def _to_topic(row: Any) -> Topic:
    return Topic(row.topic_id, row.logset_id, row.topic_name, row.partition_count, row.path,
                 row.wild_path, row.collection, row.index_enabled, row.log_type,
                 dict(row.extract_rule or {}), row.period or row.logset_period,
                 list(row.tags or []), row.created_ms, row.next_offset, row.last_ingest_ms,
                 topic_options.from_stored(row.options), row.period is not None)


def get(ctx: Context, topic_id: str) -> Topic:
    with ctx.db.read() as conn:
        row = conn.execute(_query().where(topics.c.topic_id == topic_id)).first()
    if row is None:
        raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id!r} does not exist")
    return _to_topic(row)


def list_topics(ctx: Context, logset_id: str | None = None) -> list[Topic]:
    query = _query().order_by(topics.c.created_ms, topics.c.topic_id)
    if logset_id is not None:
        query = query.where(topics.c.logset_id == logset_id)
    with ctx.db.read() as conn:
        if logset_id is not None and conn.execute(select(logsets.c.logset_id).where(
                logsets.c.logset_id == logset_id)).first() is None:
            raise ServiceError(Kinds.LOGSET_NOT_EXIST, f"logset {logset_id!r} does not exist")
        rows = conn.execute(query).all()
    return [_to_topic(r) for r in rows]


@dataclass(frozen=True, slots=True)
class TopicQuery:
    names: list[str] | None = None
    exact_names: bool = False
    logset_names: list[str] | None = None
    exact_logset_names: bool = False
    topic_ids: list[str] | None = None
    logset_ids: list[str] | None = None
    tags: TagFilter | None = None
    storage_types: list[str] | None = None
    biz_type: int | None = None


def search(ctx: Context, query: TopicQuery) -> list[tuple[Topic, str]]:
    """Topics matching every criterion, in creation order, each with its logset's name."""
    with ctx.db.read() as conn:
        names = dict(conn.execute(select(logsets.c.logset_id, logsets.c.logset_name)).all())
    tag_filter = query.tags or TagFilter()
    return [(t, names.get(t.logset_id, "")) for t in list_topics(ctx)
            if text_matches(t.topic_name, query.names, query.exact_names)
            and text_matches(names.get(t.logset_id, ""), query.logset_names,
                             query.exact_logset_names)
            and id_matches(t.topic_id, query.topic_ids)
            and id_matches(t.logset_id, query.logset_ids) and tag_filter.matches(t.tags)
            and id_matches(t.options.storage_type, query.storage_types)
            and (query.biz_type is None or t.options.biz_type == query.biz_type)]


def modify(ctx: Context, topic_id: str, *, options: dict[str, Any] | None = None,
           partition_count: Any = None, **changes: Any) -> None:
    """Change a topic's fields (None = unchanged) and its `options` (TopicOptions fields).
    A `partition_count` of 0 or less is taken as 1, as CLS's ModifyTopic does."""
    checks = {
        "topic_name": _check_name,
        "path": lambda v: _check_str("path", v),
        "wild_path": lambda v: _check_str("wild_path", v),
        "log_type": _check_log_type,
    }
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if value is None:
            continue
        if name in checks:
            values[name] = checks[name](value)
        elif name == "period":
            values["period"] = value  # checked below, against the storage type
        elif name == "collection":
            if not isinstance(value, bool):
                raise invalid("collection must be a boolean")
            values["collection"] = value
        elif name == "extract_rule":
            if not isinstance(value, dict):
                raise invalid("extract_rule must be an object")
            values["extract_rule"] = value
        elif name == "tags":
            values["tags"] = check_tags(value)
        else:
            raise invalid(f"unknown topic field {name!r}")
    if partition_count is not None:
        if isinstance(partition_count, bool) or not isinstance(partition_count, int):
            raise invalid("PartitionCount must be a whole number")
        values["partition_count"] = max(partition_count, 1)
    option_changes = {k: v for k, v in (options or {}).items() if v is not None}
    if not values and not option_changes:
        raise invalid("give at least one field to modify")
    with ctx.db.begin() as conn:
        row = conn.execute(_query().where(topics.c.topic_id == topic_id)).first()
        if row is None:
            raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id!r} does not exist")
        current = _to_topic(row)
        chosen = topic_options.apply(current.options, option_changes, creating=False)
        if "period" in values:
            topic_options.check_period(values["period"], chosen.storage_type)
        topic_options.check_topic(chosen, values.get("partition_count", current.partition_count),
                                  values.get("period", current.period))
        if option_changes:
            values["options"] = chosen.stored()
        if "topic_name" in values and conn.execute(select(topics.c.topic_id).where(
                topics.c.logset_id == row.logset_id, topics.c.topic_name == values["topic_name"],
                topics.c.topic_id != topic_id)).first() is not None:
            raise ServiceError(Kinds.TOPIC_CONFLICT,
                               f"topic {values['topic_name']!r} already exists in the logset")
        conn.execute(update(topics).where(topics.c.topic_id == topic_id).values(**values))


def delete_topic(ctx: Context, topic_id: str) -> None:
    """Deleting a topic deletes its log; its shippers must be deleted first, so no task is
    left pointing at a log that is gone. Consumer groups stop reading it: the topic leaves
    their topic lists and their offsets in it go (a group may be left reading no topic)."""
    with ctx.db.begin() as conn:
        row = conn.execute(select(topics.c.logset_id)
                           .where(topics.c.topic_id == topic_id)).first()
        if row is None:
            raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id!r} does not exist")
        if conn.execute(select(shippers.c.shipper_id)
                        .where(shippers.c.topic_id == topic_id).limit(1)).first() is not None:
            raise ServiceError(Kinds.NOT_ALLOWED,
                               "the topic still has shippers; delete them first")
        conn.execute(delete(topics).where(topics.c.topic_id == topic_id))
        if ctx.db.is_postgresql:
            # A heartbeat assigns under its group's row lock (service/consumers.py): holding
            # the rows of the groups reading this topic, in one order, means no heartbeat
            # inserts a row for it after the deletes below. (SQLite's write lock is held.)
            conn.execute(select(consumer_groups.c.group_name).where(
                consumer_groups.c.logset_id == row.logset_id,
                consumer_groups.c.group_name.in_(
                    select(consumer_group_topics.c.group_name)
                    .where(consumer_group_topics.c.topic_id == topic_id)))
                .order_by(consumer_groups.c.group_name).with_for_update())
        for table in (consumer_partitions, consumer_group_topics, log_chunks):
            conn.execute(delete(table).where(table.c.topic_id == topic_id))


# ---- partitions ----

@dataclass(frozen=True, slots=True)
class PartitionInfo:
    """One partition as DescribePartitions shows it. `writable` partitions are 1 to the
    topic's PartitionCount, each an even share of the hash key space; a read-only one is
    above a lowered count and still holds records: no key routes to it any more (its keys
    are empty, the range it had is not kept) and `last_write_ms` is its newest record's
    ingest time."""

    partition_id: int
    writable: bool
    begin_key: str
    end_key: str
    created_ms: int
    last_write_ms: int | None


def describe_partitions(ctx: Context, topic_id: str) -> list[PartitionInfo]:
    with ctx.db.read() as conn:
        row = conn.execute(select(topics.c.partition_count, topics.c.created_ms)
                           .where(topics.c.topic_id == topic_id)).first()
        if row is None:
            raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id!r} does not exist")
        count = int(row.partition_count)
        higher = conn.execute(
            select(log_chunks.c.partition_id, func.max(log_chunks.c.ingest_ms))
            .where(log_chunks.c.topic_id == topic_id, log_chunks.c.partition_id > count)
            .group_by(log_chunks.c.partition_id).order_by(log_chunks.c.partition_id)).all()
    created = int(row.created_ms)
    out = [PartitionInfo(p, True, *partitions.key_range(p, count), created, None)
           for p in partitions.partition_ids(count)]
    out += [PartitionInfo(int(p), False, "", "", created, int(last)) for p, last in higher]
    return out


def refuse_partition_change(ctx: Context, action: str, topic_id: str) -> None:
    """SplitPartition and MergePartition: the topic must exist, then the answer is that they
    are not supported. Partitions here are even shares of the key space set by
    PartitionCount (model/partitions.py); a split or merge would need ranges of their own."""
    with ctx.db.read() as conn:
        if conn.execute(select(topics.c.topic_id)
                        .where(topics.c.topic_id == topic_id)).first() is None:
            raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id!r} does not exist")
    raise ServiceError(Kinds.NOT_SUPPORTED,
                       f"{action} is not supported: a topic's partitions split its hash key "
                       "space evenly; change their number with ModifyTopic PartitionCount "
                       "(records in partitions above a lowered count stay readable)")

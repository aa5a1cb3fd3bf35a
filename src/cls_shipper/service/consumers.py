"""Consumer groups (the SDK's `YunApiLogClient` calls and its `ConsumerWorker`): groups of a
logset reading some of its topics, consumers heartbeating into them, the topics' partitions
shared among the live consumers, and the offsets the group commits.

Every state is a database row, so any API node answers any call. A consumer is live while its
heartbeats come less than the group's `Timeout` seconds apart; each heartbeat (in one write
transaction, the group's row locked on PostgreSQL, the database's write lock on SQLite)
drops the consumers that went silent and shares the partitions among the live ones: each
keeps what it holds up to its fair share (the partitions divided by the consumers, some one
more), and what is left goes to those with the fewest. A partition moving between live
consumers changes hands only once its holder's heartbeat stops listing it (the holder has
shut its reader down and committed), so two live consumers never read it at once; a
consumer past the timeout holds nothing. Delivery is at least once.

A committed offset is the partition's next record the group has not processed (what the
SDK commits); `DescribeConsumerOffsets` answers it, or, for a partition the group never
committed, the offset of the position asked for (`begin`, `end` or a Unix time). Retention
keeps what a group has not committed (`store/chunks.py: expire_chunks`, docs/api-legacy.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.inputs import check_text
from cls_shipper.model import partitions
from cls_shipper.service.context import Context
from cls_shipper.store import chunks as chunk_store
from cls_shipper.store.schema import (
    consumer_group_topics,
    consumer_groups,
    consumer_members,
    consumer_partitions,
    log_chunks,
    logsets,
    topics,
)
from cls_shipper.timefmt import normalise_log_time_ms, now_ms

MAX_GROUPS_PER_LOGSET = 50
MAX_TOPICS_PER_GROUP = 50
# Live consumers of one group: more could never each hold a partition (10 topics of at most
# 50 partitions), and a bound keeps a heartbeat's work small.
MAX_CONSUMERS = 500
MAX_NAME = 255
MIN_TIMEOUT, MAX_TIMEOUT = 1, 3600


@dataclass(frozen=True, slots=True)
class GroupInfo:
    logset_id: str
    group: str
    timeout: int
    topics: list[str]


# ---- checks ----

def _name(value: Any, what: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise invalid(f"{what} must be 1 to {MAX_NAME} characters")
    check_text(value, what)
    return value


def _timeout(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) \
            or not MIN_TIMEOUT <= value <= MAX_TIMEOUT:
        raise invalid(f"Timeout must be a whole number of seconds from {MIN_TIMEOUT} to "
                      f"{MAX_TIMEOUT}")
    return value


def _topic_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise invalid("Topics must be a non-empty list of topic ids")
    if len(value) > MAX_TOPICS_PER_GROUP:
        raise ServiceError(Kinds.LIMIT_EXCEEDED,
                           f"a consumer group reads at most {MAX_TOPICS_PER_GROUP} topics")
    out: list[str] = []
    for item in value:
        out.append(_name(item, "a topic id"))
    if len(set(out)) != len(out):
        raise invalid("Topics names a topic twice")
    return out


def _check_logset(conn: Connection, logset_id: str) -> None:
    if conn.execute(select(logsets.c.logset_id)
                    .where(logsets.c.logset_id == logset_id)).first() is None:
        raise ServiceError(Kinds.LOGSET_NOT_EXIST, f"logset {logset_id[:64]!r} does not exist")


def _check_topics(ctx: Context, conn: Connection, logset_id: str,
                  wanted: Sequence[str]) -> None:
    query = select(topics.c.topic_id, topics.c.logset_id).where(topics.c.topic_id.in_(wanted))
    if ctx.db.is_postgresql:
        # Shared locks on the topics: a DeleteTopic running now (which deletes the topic's
        # row first) either finishes before this finds no topic, or waits for this group's
        # rows and deletes them too.
        query = query.with_for_update(read=True)
    found = {r.topic_id: r.logset_id for r in conn.execute(query)}
    for topic_id in wanted:
        if topic_id not in found:
            raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic_id[:64]!r} does not exist")
        if found[topic_id] != logset_id:
            raise invalid(f"topic {topic_id!r} is not in logset {logset_id!r}")


def _group_where(logset_id: str, group: str, table: Any) -> tuple[Any, Any]:
    return table.c.logset_id == logset_id, table.c.group_name == group


def _lock_group(ctx: Context, conn: Connection, logset_id: str, group: str) -> Any:
    """The group's row, locked for the transaction on PostgreSQL (SQLite's write lock is
    already held): heartbeats of one group are assigned one after the other."""
    query = select(consumer_groups).where(*_group_where(logset_id, group, consumer_groups))
    if ctx.db.is_postgresql:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise ServiceError(Kinds.CONSUMER_GROUP_NOT_EXIST,
                           f"consumer group {group[:255]!r} does not exist in logset "
                           f"{logset_id[:64]!r}")
    return row


def _group_topics(conn: Connection, logset_id: str, group: str) -> list[str]:
    return list(conn.execute(
        select(consumer_group_topics.c.topic_id)
        .where(*_group_where(logset_id, group, consumer_group_topics))
        .order_by(consumer_group_topics.c.topic_id)).scalars())


# ---- groups ----

def create_group(ctx: Context, logset_id: Any, group: Any, timeout: Any,
                 topic_ids: Any) -> None:
    logset = _name(logset_id, "LogsetId")
    name = _name(group, "ConsumerGroup")
    seconds = _timeout(timeout)
    wanted = _topic_list(topic_ids)
    with ctx.db.begin() as conn:
        _check_logset(conn, logset)
        _check_topics(ctx, conn, logset, wanted)
        if conn.execute(select(consumer_groups.c.group_name).where(
                *_group_where(logset, name, consumer_groups))).first() is not None:
            raise ServiceError(Kinds.CONSUMER_GROUP_CONFLICT,
                               f"consumer group already exists: {name!r}")
        count = conn.execute(select(func.count()).select_from(consumer_groups)
                             .where(consumer_groups.c.logset_id == logset)).scalar_one()
        if count >= MAX_GROUPS_PER_LOGSET:
            raise ServiceError(Kinds.CONSUMER_GROUP_EXCEED,
                               f"a logset holds at most {MAX_GROUPS_PER_LOGSET} consumer groups")
        now = now_ms()
        conn.execute(insert(consumer_groups).values(
            logset_id=logset, group_name=name, timeout_s=seconds, created_ms=now,
            updated_ms=now))
        conn.execute(insert(consumer_group_topics), [
            {"logset_id": logset, "group_name": name, "topic_id": t} for t in wanted])


def modify_group(ctx: Context, logset_id: Any, group: Any, topic_ids: Any = None,
                 timeout: Any = None) -> None:
    logset = _name(logset_id, "LogsetId")
    name = _name(group, "ConsumerGroup")
    if topic_ids is None and timeout is None:
        raise invalid("give Topics or Timeout to modify")
    seconds = None if timeout is None else _timeout(timeout)
    wanted = None if topic_ids is None else _topic_list(topic_ids)
    with ctx.db.begin() as conn:
        _lock_group(ctx, conn, logset, name)
        values: dict[str, Any] = {"updated_ms": now_ms()}
        if seconds is not None:
            values["timeout_s"] = seconds
        conn.execute(update(consumer_groups)
                     .where(*_group_where(logset, name, consumer_groups)).values(**values))
        if wanted is not None:
            _check_topics(ctx, conn, logset, wanted)
            current = set(_group_topics(conn, logset, name))
            gone = current - set(wanted)
            if gone:
                # A topic the group stops reading takes its offsets with it: they would
                # otherwise hold that topic's records from retention for nobody.
                for table in (consumer_group_topics, consumer_partitions):
                    conn.execute(delete(table).where(*_group_where(logset, name, table),
                                                     table.c.topic_id.in_(gone)))
            new = [t for t in wanted if t not in current]
            if new:
                conn.execute(insert(consumer_group_topics), [
                    {"logset_id": logset, "group_name": name, "topic_id": t} for t in new])


def delete_group(ctx: Context, logset_id: Any, group: Any) -> None:
    logset = _name(logset_id, "LogsetId")
    name = _name(group, "ConsumerGroup")
    with ctx.db.begin() as conn:
        _lock_group(ctx, conn, logset, name)
        for table in (consumer_partitions, consumer_members, consumer_group_topics,
                      consumer_groups):
            conn.execute(delete(table).where(*_group_where(logset, name, table)))


def list_groups(ctx: Context, logset_id: Any, topic_ids: Any = None) -> list[GroupInfo]:
    """The logset's groups (at most MAX_GROUPS_PER_LOGSET), those reading one of `topic_ids`
    when it is given and not empty."""
    logset = _name(logset_id, "LogsetId")
    wanted = set(_topic_list(topic_ids)) if topic_ids else None
    with ctx.db.read() as conn:
        _check_logset(conn, logset)
        groups = conn.execute(select(consumer_groups)
                              .where(consumer_groups.c.logset_id == logset)
                              .order_by(consumer_groups.c.group_name)).all()
        read: dict[str, list[str]] = {}
        for row in conn.execute(select(consumer_group_topics)
                                .where(consumer_group_topics.c.logset_id == logset)
                                .order_by(consumer_group_topics.c.topic_id)):
            read.setdefault(row.group_name, []).append(row.topic_id)
    return [GroupInfo(logset, g.group_name, g.timeout_s, read.get(g.group_name, []))
            for g in groups
            if wanted is None or wanted & set(read.get(g.group_name, []))]


# ---- partitions and offsets ----

def topic_partitions(conn: Connection, topic_id: str) -> list[int]:
    """A topic's partitions: 1 to `partition_count`, and any higher one that still holds
    records (after the count was lowered), so that no record is left without a reader."""
    count = conn.execute(select(topics.c.partition_count)
                         .where(topics.c.topic_id == topic_id)).scalar()
    if count is None:
        return []
    ids = list(partitions.partition_ids(int(count)))
    higher = conn.execute(select(log_chunks.c.partition_id).distinct().where(
        log_chunks.c.topic_id == topic_id, log_chunks.c.partition_id > int(count))
        .limit(partitions.MAX_PARTITIONS)).scalars()
    return sorted(set(ids) | {int(p) for p in higher})


def _partition(value: Any) -> int:
    # The SDK sends PartitionId as a string ("-1": all) in DescribeConsumerOffsets.
    if isinstance(value, str) and value.lstrip("-").isascii() and value.lstrip("-").isdigit() \
            and len(value) <= 4:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) \
            or not -1 <= value <= partitions.MAX_PARTITIONS:
        raise invalid(f"PartitionId must be a partition id (1 to {partitions.MAX_PARTITIONS}) "
                      "or -1 for all")
    return value


def _position_offset(conn: Connection, topic_id: str, partition_id: int, head: int,
                     position: str) -> int:
    """The offset of `begin` (the partition's oldest record kept), `end` (where the next
    record goes) or a Unix time (the first record ingested at or after it)."""
    if position == "end":
        return head
    if position == "begin":
        since = None
    else:
        text = position.strip()
        if not (text.isascii() and text.isdigit() and len(text) <= 19):
            raise invalid("From must be begin, end or a Unix time in seconds")
        since = normalise_log_time_ms(int(text))
    found = chunk_store.partition_offset_at(conn, topic_id, partition_id, since)
    return head if found is None else found


def describe_offsets(ctx: Context, logset_id: Any, group: Any, topic_id: Any,
                     partition_id: Any = -1, position: Any = "end") -> list[tuple[int, int]]:
    """[(partition, offset)] for one partition of the topic or all (-1): the group's
    committed offset, or the offset of `position` where it committed none."""
    logset = _name(logset_id, "LogsetId")
    name = _name(group, "ConsumerGroup")
    topic = _name(topic_id, "TopicId")
    wanted = _partition(partition_id)
    if isinstance(position, int) and not isinstance(position, bool):
        position = str(position)
    if not isinstance(position, str) or len(position) > 32:
        raise invalid("From must be begin, end or a Unix time in seconds")
    with ctx.db.read() as conn:
        group_row = conn.execute(select(consumer_groups.c.group_name).where(
            *_group_where(logset, name, consumer_groups))).first()
        if group_row is None:
            raise ServiceError(Kinds.CONSUMER_GROUP_NOT_EXIST,
                               f"consumer group {name!r} does not exist in logset {logset!r}")
        if topic not in _group_topics(conn, logset, name):
            raise ServiceError(Kinds.TOPIC_NOT_EXIST,
                               f"consumer group {name!r} does not read topic {topic!r}")
        # The head before the chunks: see service/pull.py.
        head = chunk_store.topic_head(conn, topic)
        if head is None:
            raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic!r} does not exist")
        ids = topic_partitions(conn, topic)
        if wanted != -1:
            if wanted not in ids:
                raise ServiceError(Kinds.PARTITION_NOT_EXIST,
                                   f"topic {topic!r} has no partition {wanted}")
            ids = [wanted]
        committed = {r.partition_id: r.committed_offset for r in conn.execute(
            select(consumer_partitions.c.partition_id, consumer_partitions.c.committed_offset)
            .where(*_group_where(logset, name, consumer_partitions),
                   consumer_partitions.c.topic_id == topic))}
        out: list[tuple[int, int]] = []
        for pid in ids:
            offset = committed.get(pid)
            out.append((pid, int(offset) if offset is not None
                        else _position_offset(conn, topic, pid, head, position)))
    return out


def commit_offsets(ctx: Context, logset_id: Any, group: Any, consumer: Any,
                   offsets: Sequence[tuple[str, int, int]]) -> None:
    """Record (topic, partition, offset) commits; an offset must lie within the topic (-1:
    nothing processed yet). A consumer commits the partitions it holds, including one it is
    letting go of (what it processed, on its way out, before the next consumer gets it). A
    commit by a consumer for a partition another live consumer holds is stale (a consumer
    the group timed out, shutting down a reader it no longer holds): it is accepted but not
    recorded, so it cannot move the holder's offset back. A commit naming no consumer (an
    operator resetting offsets) is always recorded."""
    logset = _name(logset_id, "LogsetId")
    name = _name(group, "ConsumerGroup")
    if consumer:
        _name(consumer, "Consumer")
    if len(offsets) > MAX_TOPICS_PER_GROUP * partitions.MAX_PARTITIONS:
        raise ServiceError(Kinds.LIMIT_EXCEEDED, "too many offsets in one commit")
    with ctx.db.begin() as conn:
        row = _lock_group(ctx, conn, logset, name)
        now = now_ms()
        read = set(_group_topics(conn, logset, name))
        others_hold: set[tuple[str, int]] = set()
        if consumer:
            live = set(conn.execute(select(consumer_members.c.consumer).where(
                *_group_where(logset, name, consumer_members),
                consumer_members.c.last_seen_ms >= now - row.timeout_s * 1000)).scalars())
            live.discard(consumer)
            others_hold = {(r.topic_id, r.partition_id) for r in conn.execute(
                select(consumer_partitions.c.topic_id, consumer_partitions.c.partition_id)
                .where(*_group_where(logset, name, consumer_partitions),
                       consumer_partitions.c.owner.in_(live)))}
        for topic, pid, offset in offsets:
            if topic not in read:
                raise ServiceError(Kinds.TOPIC_NOT_EXIST,
                                   f"consumer group {name!r} does not read topic {topic!r}")
            head = chunk_store.topic_head(conn, topic)
            if head is None:
                raise ServiceError(Kinds.TOPIC_NOT_EXIST, f"topic {topic!r} does not exist")
            if pid not in topic_partitions(conn, topic):
                raise ServiceError(Kinds.PARTITION_NOT_EXIST,
                                   f"topic {topic!r} has no partition {pid}")
            if isinstance(offset, bool) or not -1 <= offset <= head:
                raise ServiceError(Kinds.INVALID_OFFSET,
                                   f"offset {offset} is not in topic {topic!r} (-1 to {head})")
            if (topic, pid) in others_hold:
                continue
            key = (*_group_where(logset, name, consumer_partitions),
                   consumer_partitions.c.topic_id == topic,
                   consumer_partitions.c.partition_id == pid)
            done = conn.execute(update(consumer_partitions).where(*key).values(
                committed_offset=offset, committed_ms=now))
            if not done.rowcount:
                conn.execute(insert(consumer_partitions).values(
                    logset_id=logset, group_name=name, topic_id=topic, partition_id=pid,
                    owner=None, committed_offset=offset, committed_ms=now))


# ---- heartbeats and assignment ----

def assign(owned: dict[str, list[tuple[str, int]]],
           all_partitions: Iterable[tuple[str, int]]) -> dict[str, list[tuple[str, int]]]:
    """Share the partitions among the consumers (the keys of `owned`, each with what it holds
    now): each keeps what it holds up to its fair share, the rest go one by one to the
    consumer holding fewest (ties by name). Pure, so the rule is tested alone."""
    every = sorted(set(all_partitions))
    names = sorted(owned)
    if not names:
        return {}
    base, extra = divmod(len(every), len(names))
    valid = set(every)
    result: dict[str, list[tuple[str, int]]] = {}
    taken: set[tuple[str, int]] = set()
    # Those holding most keep first, so the consumers allowed one more are ones that have it.
    for name in sorted(names, key=lambda n: (-len(owned[n]), n)):
        held = [p for p in sorted(owned[name]) if p in valid and p not in taken]
        cap = base
        if extra and len(held) > base:
            cap, extra = base + 1, extra - 1
        result[name] = held[:cap]
        taken.update(result[name])
    for part in every:
        if part in taken:
            continue
        name = min(names, key=lambda n: (len(result[n]), n))
        result[name].append(part)
        taken.add(part)
    return {n: sorted(ps) for n, ps in result.items()}


def heartbeat(ctx: Context, logset_id: Any, group: Any, consumer: Any,
              held: Iterable[tuple[str, int]] | None = None) -> dict[str, list[int]]:
    """Record that `consumer` is alive and answer the partitions it should read now, by topic
    (every topic of the group, possibly with none). `held` is what the consumer reports it
    still holds (the SDK: what it was answered, plus partitions it is still shutting down).

    A partition handed from one live consumer to another changes hands only once the one
    holding it has let go: its answer leaves the partition out, it shuts its reader down
    (committing what it processed) and stops reporting it, and only the heartbeat that no
    longer reports it moves it to the next consumer, who learns it at its own next
    heartbeat and starts from that commit. Until then the next consumer is not given it, so
    two live consumers never read one partition at once. A consumer silent for the group's
    timeout holds nothing: its partitions go straight to the others."""
    logset = _name(logset_id, "LogsetId")
    name = _name(group, "ConsumerGroup")
    member = _name(consumer, "Consumer")
    reported = set(held or ())
    with ctx.db.begin() as conn:
        row = _lock_group(ctx, conn, logset, name)
        # The time once the group is locked: a heartbeat that waited for the lock must not
        # judge the others by a moment before theirs.
        now = now_ms()
        members_of = _group_where(logset, name, consumer_members)
        # Consumers silent for the group's timeout are gone: their partitions are shared out.
        conn.execute(delete(consumer_members).where(
            *members_of, consumer_members.c.last_seen_ms < now - row.timeout_s * 1000))
        seen = conn.execute(update(consumer_members).where(
            *members_of, consumer_members.c.consumer == member).values(last_seen_ms=now))
        if not seen.rowcount:
            live = conn.execute(select(func.count()).select_from(consumer_members)
                                .where(*members_of)).scalar_one()
            if live >= MAX_CONSUMERS:
                raise ServiceError(Kinds.LIMIT_EXCEEDED,
                                   f"a consumer group has at most {MAX_CONSUMERS} live consumers")
            conn.execute(insert(consumer_members).values(
                logset_id=logset, group_name=name, consumer=member, last_seen_ms=now))
        live_names = list(conn.execute(select(consumer_members.c.consumer)
                                       .where(*members_of)).scalars())
        read = _group_topics(conn, logset, name)
        every = [(t, p) for t in read for p in topic_partitions(conn, t)]
        rows = conn.execute(select(consumer_partitions.c.topic_id,
                                   consumer_partitions.c.partition_id,
                                   consumer_partitions.c.owner)
                            .where(*_group_where(logset, name, consumer_partitions))).all()
        owned: dict[str, list[tuple[str, int]]] = {n: [] for n in live_names}
        current: dict[tuple[str, int], str | None] = {}
        for r in rows:
            current[(r.topic_id, r.partition_id)] = r.owner
            if r.owner in owned:
                owned[r.owner].append((r.topic_id, r.partition_id))
        wanted = {p: n for n, ps in assign(owned, every).items() for p in ps}
        # Who holds each partition after this heartbeat: a live holder keeps a partition
        # meant for another until it stops reporting it; anything else goes where wanted.
        holder: dict[tuple[str, int], str] = {}
        for part, target in wanted.items():
            was = current.get(part)
            letting_go = was == member and part not in reported
            holder[part] = was if was in owned and was != target and not letting_go \
                else target
        part_of = _group_where(logset, name, consumer_partitions)
        for (topic, pid), owner in holder.items():
            if (topic, pid) not in current:
                conn.execute(insert(consumer_partitions).values(
                    logset_id=logset, group_name=name, topic_id=topic, partition_id=pid,
                    owner=owner, committed_offset=None, committed_ms=None))
            elif current[(topic, pid)] != owner:
                conn.execute(update(consumer_partitions).where(
                    *part_of, consumer_partitions.c.topic_id == topic,
                    consumer_partitions.c.partition_id == pid).values(owner=owner))
        # Owners that are gone own nothing (a partition that no longer exists keeps its
        # committed offset, and so its hold on retention, until the group drops the topic).
        stale = [k for k, o in current.items() if o is not None and k not in holder]
        for topic, pid in stale:
            conn.execute(update(consumer_partitions).where(
                *part_of, consumer_partitions.c.topic_id == topic,
                consumer_partitions.c.partition_id == pid).values(owner=None))
    mine: dict[str, list[int]] = {t: [] for t in read}
    for (topic, pid), owner in sorted(holder.items()):
        if owner == member and wanted[(topic, pid)] == member:
            mine[topic].append(pid)
    return mine


# ---- the status view (cls-shipper status) ----

@dataclass(frozen=True, slots=True)
class PartitionState:
    topic_id: str
    partition_id: int
    owner: str | None  # the live consumer holding it; None while nobody does
    committed_offset: int | None
    lag: int  # records at or after the committed offset (all kept, when none committed)
    oldest_unprocessed_ms: int | None  # ingest time of the first of them


@dataclass(frozen=True, slots=True)
class GroupState:
    logset_id: str
    group: str
    timeout: int
    consumers: list[tuple[str, int, bool]]  # name, last heartbeat, alive
    partitions: list[PartitionState]


def group_states(conn: Connection, now: int, limit: int = 100) -> list[GroupState]:
    """Every consumer group (the first `limit`), its consumers and its partitions with
    their committed offsets and lag."""
    out: list[GroupState] = []
    for g in conn.execute(select(consumer_groups).order_by(
            consumer_groups.c.logset_id, consumer_groups.c.group_name).limit(limit)):
        where_members = _group_where(g.logset_id, g.group_name, consumer_members)
        members = [(m.consumer, int(m.last_seen_ms), m.last_seen_ms >= now - g.timeout_s * 1000)
                   for m in conn.execute(select(consumer_members).where(*where_members)
                                         .order_by(consumer_members.c.consumer))]
        alive = {m[0] for m in members if m[2]}
        rows = {(r.topic_id, r.partition_id): r for r in conn.execute(
            select(consumer_partitions).where(
                *_group_where(g.logset_id, g.group_name, consumer_partitions)))}
        states: list[PartitionState] = []
        for topic in _group_topics(conn, g.logset_id, g.group_name):
            for pid in topic_partitions(conn, topic):
                r = rows.get((topic, pid))
                committed = None if r is None or r.committed_offset is None \
                    else int(r.committed_offset)
                lag, oldest = _lag(conn, topic, pid, committed)
                # A consumer past the group's timeout holds nothing, though its row names
                # it until the next heartbeat shares its partitions out.
                owner = None if r is None or r.owner not in alive else str(r.owner)
                states.append(PartitionState(topic, pid, owner, committed, lag, oldest))
        out.append(GroupState(g.logset_id, g.group_name, g.timeout_s, members, states))
    return out


def _lag(conn: Connection, topic_id: str, partition_id: int,
         committed: int | None) -> tuple[int, int | None]:
    start = max(committed or 0, 0)
    ahead = (log_chunks.c.topic_id == topic_id, log_chunks.c.partition_id == partition_id,
             log_chunks.c.first_offset + log_chunks.c.record_count > start)
    lag = conn.execute(select(func.coalesce(func.sum(
        log_chunks.c.first_offset + log_chunks.c.record_count
        - func.max(log_chunks.c.first_offset, start)
        if conn.dialect.name == "sqlite" else
        log_chunks.c.first_offset + log_chunks.c.record_count
        - func.greatest(log_chunks.c.first_offset, start)), 0)).where(*ahead)).scalar_one()
    oldest = conn.execute(select(func.min(log_chunks.c.ingest_ms)).where(*ahead)).scalar()
    return int(lag), None if oldest is None else int(oldest)


def group_states_for(ctx: Context) -> list[GroupState]:
    with ctx.db.read() as conn:
        return group_states(conn, now_ms())

"""Partitions, pulls, consumer groups and the retention rule, on both backends."""

from __future__ import annotations

import base64
import json
import struct
import threading
import time

import cramjam
import pytest
from sqlalchemy import func, insert, select, text

from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.ingest import cls_pb
from cls_shipper.model import partitions
from cls_shipper.service import Context, consumers, logsets, pull, topics
from cls_shipper.settings import Settings
from cls_shipper.store import chunks as store
from cls_shipper.store import open_database
from cls_shipper.store.schema import consumer_partitions
from cls_shipper.timefmt import now_ms


@pytest.fixture()
def ctx(database_url: str) -> Context:
    return Context(open_database(database_url),
                   Settings(quota_logsets=1000, quota_topics=1000, check_destination=False))


def _topic(ctx: Context, count: int = 1, period: int = 7) -> tuple[str, str]:
    logset = logsets.create(ctx, f"ls-{now_ms()}-{id(object())}", period)
    return logset, topics.create(ctx, logset, "t", partition_count=count)


def _records(ids: list[str]) -> bytes:
    lgl = cls_pb.LogGroupList()
    group = lgl.logGroupList.add()
    group.source = "10.0.0.1"
    for rid in ids:
        log = group.logs.add()
        log.time = 1_764_300_000
        content = log.contents.add()
        content.key, content.value = "id", rid
    return bytes(lgl.SerializeToString())


def _append(ctx: Context, topic: str, ids: list[str], key: str | None = None) -> None:
    raw = _records(ids)
    position = None if key is None else partitions.key_position(key)
    store.append_chunks(ctx.db, [store.NewChunk(topic, len(ids), "none", len(raw), "ip", raw,
                                                position)])


def _ids(pulled: pull.Pulled) -> list[str]:
    assert pulled.compress_type == "snappy"
    answer = json.loads(cramjam.snappy.decompress_raw(pulled.body).read())
    out: list[str] = []
    for message in answer["Response"]["Message"]:
        raw = base64.b64decode(message)
        version, _, _, _, _, length = struct.unpack(">iqq36s36si", raw[:96])
        assert version == 130 and length == len(raw) - 96
        group = cls_pb.LogGroup()
        group.ParseFromString(raw[96:])
        out += [c.value for log in group.logs for c in log.contents]
    assert answer["Response"]["NextOffset"] == pulled.next_offset
    return out


# ---- partitions ----

def test_a_hash_key_picks_the_partition_whose_range_holds_it() -> None:
    assert [partitions.key_range(p, 2) for p in (1, 2)] == [
        ("0" * 32, "8" + "0" * 31), ("8" + "0" * 31, "f" * 32)]
    assert partitions.choose(2, partitions.key_position("0" * 32)) == 1
    assert partitions.choose(2, partitions.key_position("8" + "0" * 31)) == 2
    assert partitions.choose(2, partitions.key_position("f" * 32)) == 2
    # Any other text is hashed: one key always lands in one partition.
    assert len({partitions.choose(5, partitions.key_position("user-42")) for _ in range(9)}) == 1
    turns = [partitions.choose(3, None) for _ in range(6)]
    assert sorted(turns) == [1, 1, 2, 2, 3, 3]


def test_pull_reads_one_partition_from_an_offset(ctx: Context) -> None:
    _, topic = _topic(ctx, 2)
    _append(ctx, topic, ["a1", "a2", "a3"], key="0" * 32)
    _append(ctx, topic, ["b1"], key="f" * 32)
    _append(ctx, topic, ["a4"], key="0" * 32)
    first = pull.pull(ctx, topic, pull.PullQuery(1))
    assert _ids(first) == ["a1", "a2", "a3", "a4"] and first.next_offset == 5
    assert _ids(pull.pull(ctx, topic, pull.PullQuery(2))) == ["b1"]
    # From inside an upload, a few bytes at a time: at least one record each time.
    middle = pull.pull(ctx, topic, pull.PullQuery(1, start_offset=1, size=1))
    assert _ids(middle) == ["a2"] and middle.next_offset == 2
    # At the end: nothing, and the offset to go on from is the topic's head.
    end = pull.pull(ctx, topic, pull.PullQuery(2, start_offset=4))
    assert _ids(end) == [] and end.next_offset == 5
    # EndTime before every record: the end is reached (-1), as the SDK expects.
    assert pull.pull(ctx, topic, pull.PullQuery(1, end_time=1)).next_offset == -1


@pytest.mark.parametrize(("query", "kind"), [
    (pull.PullQuery(3), Kinds.PARTITION_NOT_EXIST),
    (pull.PullQuery(0), Kinds.PARTITION_NOT_EXIST),
    (pull.PullQuery(1, start_offset=2), Kinds.INVALID_OFFSET),
    (pull.PullQuery(1, start_offset=-2), Kinds.INVALID_OFFSET),
    (pull.PullQuery(1, size=0), Kinds.INVALID_PARAM),
    (pull.PullQuery(1, size=pull.MAX_PULL_BYTES + 1), Kinds.INVALID_PARAM),
    (pull.PullQuery(1, compress_type="gzip"), Kinds.INVALID_COMPRESS_TYPE),
    (pull.PullQuery(1, query="* | select 1"), Kinds.NOT_SUPPORTED),
])
def test_pull_refuses_what_it_cannot_answer(ctx: Context, query: pull.PullQuery,
                                            kind: object) -> None:
    _, topic = _topic(ctx, 2)
    _append(ctx, topic, ["x"])
    with pytest.raises(ServiceError) as caught:
        pull.pull(ctx, topic, query)
    assert caught.value.kind is kind
    with pytest.raises(ServiceError) as unknown:
        pull.pull(ctx, "no-such-topic", pull.PullQuery(1))
    assert unknown.value.kind is Kinds.TOPIC_NOT_EXIST


# ---- assignment ----

def test_assignment_is_balanced_and_keeps_what_consumers_hold() -> None:
    every = [("t", p) for p in range(1, 6)]
    alone = consumers.assign({"a": []}, every)
    assert alone == {"a": every}
    # A second consumer takes the share the first gives up; the first keeps the rest.
    shared = consumers.assign({"a": alone["a"], "b": []}, every)
    assert sorted(map(len, shared.values())) == [2, 3]
    assert set(shared["a"]) <= set(alone["a"])
    assert sorted(shared["a"] + shared["b"]) == every
    # A third joins: nobody loses more than needed, every partition has one owner.
    third = consumers.assign({**shared, "c": []}, every)
    assert sorted(map(len, third.values())) == [1, 2, 2]
    assert sorted(p for ps in third.values() for p in ps) == every
    assert all(set(third[n]) <= set(shared[n]) for n in ("a", "b"))
    assert consumers.assign({}, every) == {}


def test_heartbeats_share_partitions_and_a_silent_consumer_loses_them(
        ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    logset, topic = _topic(ctx, 4)
    consumers.create_group(ctx, logset, "g", 10, [topic])
    clock = [1_000_000]
    monkeypatch.setattr(consumers, "now_ms", lambda: clock[0])
    assert consumers.heartbeat(ctx, logset, "g", "a") == {topic: [1, 2, 3, 4]}
    # b joins: a still reads every partition, so b gets none yet.
    assert consumers.heartbeat(ctx, logset, "g", "b") == {topic: []}
    # a is told its share and is still shutting the rest down (it reports all four): they
    # stay a's, and b still gets nothing.
    a = consumers.heartbeat(ctx, logset, "g", "a", [(topic, p) for p in (1, 2, 3, 4)])[topic]
    assert len(a) == 2
    assert consumers.heartbeat(ctx, logset, "g", "b") == {topic: []}
    # Once a no longer reports them, they are b's.
    assert consumers.heartbeat(ctx, logset, "g", "a", [(topic, p) for p in a])[topic] == a
    b = consumers.heartbeat(ctx, logset, "g", "b")[topic]
    assert sorted(a + b) == [1, 2, 3, 4]
    assert _owners(ctx, logset, clock[0]) == {p: "a" if p in a else "b" for p in (1, 2, 3, 4)}
    # b goes silent for the group's timeout: it holds nothing (the status shows no owner
    # before anyone heartbeats) and a gets its partitions back at once.
    clock[0] += 6_000
    assert consumers.heartbeat(ctx, logset, "g", "a", [(topic, p) for p in a])[topic] == a
    clock[0] += 4_001
    assert _owners(ctx, logset, clock[0]) == {p: "a" if p in a else None for p in (1, 2, 3, 4)}
    assert consumers.heartbeat(ctx, logset, "g", "a", [(topic, p) for p in a]) == {
        topic: [1, 2, 3, 4]}
    (status,) = [g for g in consumers.group_states_for(ctx) if g.logset_id == logset]
    assert [c[0] for c in status.consumers] == ["a"]


def _owners(ctx: Context, logset: str, now: int) -> dict[int, str | None]:
    with ctx.db.read() as conn:
        (group,) = [g for g in consumers.group_states(conn, now) if g.logset_id == logset]
    return {p.partition_id: p.owner for p in group.partitions}


def test_a_consumer_timed_out_cannot_move_the_holders_offset_back(
        ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    logset, topic = _topic(ctx, 1)
    _append(ctx, topic, [f"r{i}" for i in range(10)])
    consumers.create_group(ctx, logset, "g", 10, [topic])
    clock = [now_ms()]
    monkeypatch.setattr(consumers, "now_ms", lambda: clock[0])
    assert consumers.heartbeat(ctx, logset, "g", "a") == {topic: [1]}
    consumers.commit_offsets(ctx, logset, "g", "a", [(topic, 1, 3)])
    # a is late: b takes the partition over from a's commit and goes further.
    clock[0] += 10_001
    assert consumers.heartbeat(ctx, logset, "g", "b") == {topic: [1]}
    consumers.commit_offsets(ctx, logset, "g", "b", [(topic, 1, 8)])
    # a comes back (still reading, and reporting, the partition): b keeps it, and what a
    # commits of it on its way out is not recorded.
    assert consumers.heartbeat(ctx, logset, "g", "a", [(topic, 1)]) == {topic: []}
    consumers.commit_offsets(ctx, logset, "g", "a", [(topic, 1, 5)])
    assert consumers.describe_offsets(ctx, logset, "g", topic, 1) == [(1, 8)]
    # b's own commits, and an operator's (no consumer named), are.
    consumers.commit_offsets(ctx, logset, "g", "b", [(topic, 1, 9)])
    assert consumers.describe_offsets(ctx, logset, "g", topic, 1) == [(1, 9)]
    consumers.commit_offsets(ctx, logset, "g", "", [(topic, 1, 2)])
    assert consumers.describe_offsets(ctx, logset, "g", topic, 1) == [(1, 2)]


def test_offsets_are_committed_and_read_back(ctx: Context) -> None:
    logset, topic = _topic(ctx, 2)
    _append(ctx, topic, ["a1", "a2"], key="0" * 32)
    _append(ctx, topic, ["b1"], key="f" * 32)
    consumers.create_group(ctx, logset, "g", 10, [topic])
    # Nothing committed: the position asked for.
    assert consumers.describe_offsets(ctx, logset, "g", topic, -1, "begin") == [(1, 0), (2, 2)]
    assert consumers.describe_offsets(ctx, logset, "g", topic, "2", "end") == [(2, 3)]
    consumers.commit_offsets(ctx, logset, "g", "a", [(topic, 1, 2)])
    assert consumers.describe_offsets(ctx, logset, "g", topic, -1, "begin") == [(1, 2), (2, 2)]
    (state,) = [g for g in consumers.group_states_for(ctx) if g.logset_id == logset]
    assert [(p.partition_id, p.committed_offset, p.lag) for p in state.partitions] == [
        (1, 2, 0), (2, None, 1)]


@pytest.mark.parametrize(("call", "kind"), [
    (lambda c, ls, t: consumers.heartbeat(c, ls, "nope", "a"), Kinds.CONSUMER_GROUP_NOT_EXIST),
    (lambda c, ls, t: consumers.describe_offsets(c, ls, "nope", t),
     Kinds.CONSUMER_GROUP_NOT_EXIST),
    (lambda c, ls, t: consumers.create_group(c, ls, "g", 10, [t]),
     Kinds.CONSUMER_GROUP_CONFLICT),
    (lambda c, ls, t: consumers.create_group(c, ls, "h", 0, [t]), Kinds.INVALID_PARAM),
    (lambda c, ls, t: consumers.create_group(c, ls, "h", 10, [t] * 10_000),
     Kinds.LIMIT_EXCEEDED),
    (lambda c, ls, t: consumers.create_group(c, ls, "h", 10, ["other"]),
     Kinds.TOPIC_NOT_EXIST),
    (lambda c, ls, t: consumers.create_group(c, ls, "x" * 300, 10, [t]), Kinds.INVALID_PARAM),
    (lambda c, ls, t: consumers.commit_offsets(c, ls, "g", "a", [(t, 1, 10**12)]),
     Kinds.INVALID_OFFSET),
    (lambda c, ls, t: consumers.commit_offsets(c, ls, "g", "a", [(t, 9, 0)]),
     Kinds.PARTITION_NOT_EXIST),
    (lambda c, ls, t: consumers.describe_offsets(c, ls, "g", t, "1", "yesterday"),
     Kinds.INVALID_PARAM),
    (lambda c, ls, t: consumers.describe_offsets(c, ls, "g", t, "99999"), Kinds.INVALID_PARAM),
])
def test_groups_refuse_hostile_input(ctx: Context, call: object, kind: object) -> None:
    logset, topic = _topic(ctx, 1)
    consumers.create_group(ctx, logset, "g", 10, [topic])
    with pytest.raises(ServiceError) as caught:
        call(ctx, logset, topic)  # type: ignore[operator]
    assert caught.value.kind is kind
    if kind is Kinds.CONSUMER_GROUP_CONFLICT:
        # What the SDK's ConsumerWorker looks for before it updates the group instead.
        assert "consumer group already exists" in caught.value.message


# ---- retention ----

def test_retention_keeps_what_a_group_has_not_committed_for_a_bounded_time(
        ctx: Context) -> None:
    logset, topic = _topic(ctx, 1, period=1)
    consumers.create_group(ctx, logset, "g", 10, [topic])
    _append(ctx, topic, ["a"])
    _append(ctx, topic, ["b"])
    later = now_ms() + 2 * store.DAY_MS

    def left_after(ms: int, days: float = 7) -> list[int]:
        # (Other tests' topics share a PostgreSQL database: judge this topic's chunks.)
        store.expire_chunks(ctx.db, ms, consumer_hold_days=days)
        return [c.first_offset for c in store.read_window(ctx.db, topic, 0, 1 << 62)]

    # Past retention, but the group has processed nothing: kept.
    assert left_after(later) == [0, 1]
    # Once it commits the first record, that one goes.
    consumers.commit_offsets(ctx, logset, "g", "c", [(topic, 1, 1)])
    assert left_after(later) == [1]
    # The bound: past retention plus the hold, the rest goes whatever the group did.
    assert left_after(later + 5 * store.DAY_MS) == [1]
    assert left_after(later + 7 * store.DAY_MS) == []
    # With 0 days groups never hold: what the group has not processed goes at retention.
    _append(ctx, topic, ["c"])
    consumers.commit_offsets(ctx, logset, "g", "c", [(topic, 1, 2)])
    assert left_after(later + 30 * store.DAY_MS, days=0) == []


# ---- partition count changes, partition listing, deletions ----

def _key(partition_id: int, count: int) -> str:
    """A hash key in the partition's range (its first key)."""
    return partitions.key_range(partition_id, count)[0]


def test_changing_the_partition_count_strands_no_record(ctx: Context) -> None:
    logset, topic = _topic(ctx, 4)
    for p in range(1, 5):
        _append(ctx, topic, [f"old{p}"], key=_key(p, 4))
    consumers.create_group(ctx, logset, "g", 10, [topic])
    assert consumers.heartbeat(ctx, logset, "g", "a") == {topic: [1, 2, 3, 4]}

    topics.modify(ctx, topic, partition_count=2)
    # 3 and 4 hold records: still listed (read-only, no key routes there), read and assigned.
    listed = topics.describe_partitions(ctx, topic)
    assert [(p.partition_id, p.writable, p.begin_key, p.end_key) for p in listed] == [
        (1, True, "0" * 32, "8" + "0" * 31), (2, True, "8" + "0" * 31, "f" * 32),
        (3, False, "", ""), (4, False, "", "")]
    assert all(p.last_write_ms is not None for p in listed[2:])
    assert consumers.heartbeat(ctx, logset, "g", "a") == {topic: [1, 2, 3, 4]}
    # b gets its share once a has let go of it (a reports holding nothing).
    assert consumers.heartbeat(ctx, logset, "g", "b") == {topic: []}
    assert consumers.heartbeat(ctx, logset, "g", "a")[topic] in ([1, 2], [3, 4])
    assert consumers.heartbeat(ctx, logset, "g", "b")[topic] in ([1, 2], [3, 4])
    assert _ids(pull.pull(ctx, topic, pull.PullQuery(4))) == ["old4"]
    # New uploads use the new count only: the key that went to 4 now goes to 2, and the
    # unkeyed ones take 1 and 2 in turn.
    _append(ctx, topic, ["new-f"], key="f" * 32)
    for n in range(6):
        _append(ctx, topic, [f"any{n}"])
    one, two = (_ids(pull.pull(ctx, topic, pull.PullQuery(p))) for p in (1, 2))
    assert "new-f" in two and one[0] == "old1" and two[0] == "old2"
    assert sorted(one[1:] + [i for i in two[1:] if i != "new-f"]) == [f"any{n}" for n in range(6)]
    assert one[1:] and two[2:]
    assert _ids(pull.pull(ctx, topic, pull.PullQuery(3))) == ["old3"]
    assert _ids(pull.pull(ctx, topic, pull.PullQuery(4))) == ["old4"]
    # Committing past a read-only partition's records keeps it listed until they expire.
    consumers.commit_offsets(ctx, logset, "g", "a", [(topic, 4, 4)])
    assert [p for p, _ in consumers.describe_offsets(ctx, logset, "g", topic)] == [1, 2, 3, 4]
    store.expire_chunks(ctx.db, now_ms() + 30 * store.DAY_MS, consumer_hold_days=0)
    assert [p.partition_id for p in topics.describe_partitions(ctx, topic)] == [1, 2]
    assert consumers.heartbeat(ctx, logset, "g", "a")[topic] in ([1], [2])
    with pytest.raises(ServiceError) as gone:
        pull.pull(ctx, topic, pull.PullQuery(4))
    assert gone.value.kind is Kinds.PARTITION_NOT_EXIST

    # Raised: the new partitions take uploads and are shared out at once.
    topics.modify(ctx, topic, partition_count=5)
    assert [p.partition_id for p in topics.describe_partitions(ctx, topic)] == [1, 2, 3, 4, 5]
    _append(ctx, topic, ["k5"], key="f" * 32)
    assert _ids(pull.pull(ctx, topic, pull.PullQuery(5))) == ["k5"]
    held = [consumers.heartbeat(ctx, logset, "g", c)[topic] for c in ("a", "b", "a")]
    assert sorted(held[1] + held[2]) == [1, 2, 3, 4, 5]


def test_split_and_merge_are_refused(ctx: Context) -> None:
    _, topic = _topic(ctx, 2)
    for action in ("SplitPartition", "MergePartition"):
        with pytest.raises(ServiceError) as caught:
            topics.refuse_partition_change(ctx, action, topic)
        assert caught.value.kind is Kinds.NOT_SUPPORTED and action in caught.value.message
        with pytest.raises(ServiceError) as unknown:
            topics.refuse_partition_change(ctx, action, "no-such-topic")
        assert unknown.value.kind is Kinds.TOPIC_NOT_EXIST


def test_deleting_a_topic_takes_it_out_of_its_groups(ctx: Context) -> None:
    logset, topic = _topic(ctx, 2)
    other = topics.create(ctx, logset, "other")
    _append(ctx, topic, ["a"])
    consumers.create_group(ctx, logset, "g", 10, [topic, other])
    consumers.create_group(ctx, logset, "only", 10, [topic])
    consumers.heartbeat(ctx, logset, "g", "a")
    consumers.commit_offsets(ctx, logset, "g", "a", [(topic, 1, 1)])
    topics.delete_topic(ctx, topic)
    assert {g.group: g.topics for g in consumers.list_groups(ctx, logset)} == {
        "g": [other], "only": []}
    assert consumers.heartbeat(ctx, logset, "g", "a") == {other: [1]}
    (state,) = [g for g in consumers.group_states_for(ctx)
                if g.logset_id == logset and g.group == "g"]
    assert [p.topic_id for p in state.partitions] == [other]
    with pytest.raises(ServiceError) as caught:
        consumers.describe_offsets(ctx, logset, "g", topic)
    assert caught.value.kind is Kinds.TOPIC_NOT_EXIST
    # A topic made again with the same id starts with no group reading it.
    topics.create(ctx, logset, "again", topic_id=topic)
    assert {g.group: g.topics for g in consumers.list_groups(ctx, logset)}["only"] == []


def test_deleting_a_logset_takes_its_groups(ctx: Context) -> None:
    logset, topic = _topic(ctx, 1)
    consumers.create_group(ctx, logset, "g", 10, [topic])
    consumers.heartbeat(ctx, logset, "g", "a")
    with pytest.raises(ServiceError) as caught:
        logsets.delete_logset(ctx, logset)
    assert caught.value.kind is Kinds.LOGSET_NOT_EMPTY
    topics.delete_topic(ctx, topic)
    logsets.delete_logset(ctx, logset)
    assert not [g for g in consumers.group_states_for(ctx) if g.logset_id == logset]
    # A logset made again with the same id has no groups.
    logsets.create(ctx, "again", 7, logset_id=logset)
    assert consumers.list_groups(ctx, logset) == []


def _waiting_for_a_group(ctx: Context) -> bool:
    with ctx.db.read() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            "AND query ILIKE '%consumer_groups%FOR UPDATE%'")).scalar_one())


def test_a_topic_deleted_during_a_heartbeat_leaves_no_group_row(ctx: Context) -> None:
    """PostgreSQL runs them at once (SQLite's write lock puts one after the other): the
    deletion waits for the heartbeat's group lock, so the rows the heartbeat writes go too."""
    if not ctx.db.is_postgresql:
        pytest.skip("SQLite writers take turns")
    logset, topic = _topic(ctx, 1)
    consumers.create_group(ctx, logset, "g", 10, [topic])
    done: list[Exception | None] = []

    def delete() -> None:
        try:
            topics.delete_topic(ctx, topic)
            done.append(None)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            done.append(exc)

    with ctx.db.begin() as conn:
        # A heartbeat half done: its group locked, a partition row written.
        consumers._lock_group(ctx, conn, logset, "g")
        conn.execute(insert(consumer_partitions).values(
            logset_id=logset, group_name="g", topic_id=topic, partition_id=1, owner="a",
            committed_offset=None, committed_ms=None))
        worker = threading.Thread(target=delete)
        worker.start()
        deadline = time.monotonic() + 60
        # Until the deletion finishes (the rule is broken) or waits on a lock (seen from
        # another connection: a transaction keeps its first view of pg_stat_activity).
        while not done and time.monotonic() < deadline and not _waiting_for_a_group(ctx):
            time.sleep(0.05)
    worker.join()
    assert done == [None]
    with ctx.db.read() as conn:
        left = conn.execute(select(func.count()).select_from(consumer_partitions)
                            .where(consumer_partitions.c.topic_id == topic)).scalar_one()
    assert left == 0
    assert consumers.list_groups(ctx, logset)[0].topics == []

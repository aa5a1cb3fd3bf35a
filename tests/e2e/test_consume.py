"""Consumption through the official legacy SDK, run unchanged in its own virtualenv:
`LogClient.pull_logs` against `POST /pull_log`, and the consumer library (`ConsumerWorker`,
`LogHubConfig`, `ConsumerProcessorBase`) in two processes sharing one consumer group, one of
which is SIGKILLed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from cls_shipper.service import consumers
from tests.helpers.sdk_env import run_sdk_script, sdk_python
from tests.helpers.server import LegacyClient, ServerProcess

PARTITIONS = 3

_UPLOAD = """
from tencentcloud.log.logclient import LogClient
from tencentcloud.log.cls_pb2 import LogGroupList
client = LogClient(ARGS["endpoint"], ARGS["secret_id"], ARGS["secret_key"])
for batch in ARGS["batches"]:
    lgl = LogGroupList()
    group = lgl.logGroupList.add()
    group.source, group.filename = "10.0.0.9", "/var/log/app.log"
    for rid in batch:
        log = group.logs.add()
        log.time = 1764300000
        c = log.contents.add()
        c.key, c.value = "id", rid
    client.put_log_raw(ARGS["topic"], lgl)
print(json.dumps({"ok": True}))
"""

# Every partition read with pull_logs from the oldest record, `size` bytes a call; the ids in
# order with the offset each was read at, and what the calls answered at the end.
_PULL_ALL = """
from tencentcloud.log.logclient import LogClient
from tencentcloud.log.logexception import LogException
client = LogClient(ARGS["endpoint"], ARGS["secret_id"], ARGS["secret_key"])
out = {}
for pid in ARGS["partitions"]:
    offset, seen = -1, []
    while True:
        r = client.pull_logs(ARGS["topic"], pid, ARGS["size"], offset=offset)
        ids = [c.value for g in r.get_log_groups() for log in g.logs for c in log.contents]
        if not ids:
            break
        seen.append([offset, ids, [g.source for g in r.get_log_groups()]])
        offset = r.get_next_offset()
    out[str(pid)] = {"reads": seen, "end": offset}
errors = []
for bad in ARGS["bad"]:
    try:
        client.pull_logs(ARGS["topic"], bad["partition"], bad["size"], offset=bad["offset"])
        errors.append(None)
    except LogException as e:
        errors.append([e.get_error_code(), e.resp_status])
out["errors"] = errors
print(json.dumps(out))
"""

_WORKER = """
import json, os, sys, time, logging
from tencentcloud.log.consumer import ConsumerWorker, LogHubConfig, ConsumerProcessorBase
args = json.loads(sys.argv[1])
logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
os.environ["YUNAPI_ENDPOINT"] = args["endpoint"]

class Appender(ConsumerProcessorBase):
    def process(self, log_groups, offset_tracker):
        # Written (and handed to the OS) before the offset is saved: at least once.
        with open(args["out"], "a") as fh:
            for group in log_groups:
                for log in group.logs:
                    for c in log.contents:
                        fh.write(c.value + "\\n")
            fh.flush()
        self.save_offset(offset_tracker)

# Heartbeats every 3 s (group timeout 6 s), so that A's death is noticed within the test's
# time. The worker's log (with times) goes to the .err file beside its output.
config = LogHubConfig(args["endpoint"], args["secret_id"], args["secret_key"], "",
                      args["logset"], [args["topic"]], args["group"], args["name"],
                      heartbeat_interval=3, data_fetch_interval=0.2,
                      offset_start_time="begin")
worker = ConsumerWorker(Appender, consumer_option=config)
worker.start()
open(args["out"] + ".started", "w").close()
while True:
    time.sleep(1)
"""


def _sdk_args(server: ServerProcess, client: LegacyClient, **more: Any) -> dict[str, Any]:
    return {"endpoint": server.base_url, "secret_id": client.secret_id,
            "secret_key": client.secret_key, **more}


def _new_topic(client: LegacyClient, partitions: int) -> tuple[str, str]:
    logset = client.call("POST", "/logset", json={"logset_name": f"ls-{uuid.uuid4().hex[:8]}",
                                                  "period": 7})["logset_id"]
    topic = client.call("POST", "/topic", json={"logset_id": logset, "topic_name": "app",
                                                "partition_count": partitions})["topic_id"]
    return str(logset), str(topic)


def _upload(server: ServerProcess, client: LegacyClient, topic: str,
            batches: list[list[str]]) -> None:
    run_sdk_script(_UPLOAD, _sdk_args(server, client, topic=topic, batches=batches))


def test_pull_logs_reads_every_partition_in_order(server: ServerProcess,
                                                  client: LegacyClient) -> None:
    _, topic = _new_topic(client, PARTITIONS)
    batches = [[f"b{b}-r{i}" for i in range(20)] for b in range(9)]
    _upload(server, client, topic, batches)
    # 300 bytes a call: several calls per upload, so reads start inside uploads too.
    found = run_sdk_script(_PULL_ALL, _sdk_args(
        server, client, topic=topic, partitions=list(range(1, PARTITIONS + 1)), size=300,
        bad=[{"partition": PARTITIONS + 1, "size": 1000, "offset": 0},
             {"partition": 1, "size": 10 << 20 | 1, "offset": 0},
             {"partition": 1, "size": 1000, "offset": 10**12},
             {"partition": 1, "size": 1000, "offset": -5}]))
    seen: list[str] = []
    for pid in range(1, PARTITIONS + 1):
        reads = found[str(pid)]["reads"]
        ids = [rid for _, chunk, _ in reads for rid in chunk]
        # Each partition got whole uploads (no key: in turn), in upload order.
        assert ids, f"partition {pid} got nothing"
        order = [batches.index(next(b for b in batches if rid in b)) for rid in ids]
        assert order == sorted(order)
        assert all(source == "10.0.0.9" for _, _, sources in reads for source in sources)
        offsets = [offset for offset, _, _ in reads]
        assert offsets[1:] == sorted(offsets[1:]) and found[str(pid)]["end"] > offsets[-1]
        seen += ids
    assert sorted(seen) == sorted(rid for b in batches for rid in b)
    assert found["errors"] == [["PartitionNotExist", 404], ["InvalidParam", 400],
                               ["InvalidOffset", 400], ["InvalidOffset", 400]]


@pytest.fixture()
def workers(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(args: dict[str, Any]) -> subprocess.Popen[bytes]:
        # The worker's own log, to read when a test fails.
        with open(args["out"] + ".err", "wb") as err:
            proc = subprocess.Popen([str(sdk_python()), "-c", _WORKER, json.dumps(args)],
                                    stdout=subprocess.DEVNULL, stderr=err)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def _wait_for(condition: Callable[[], bool], what: str, limit: float = 120.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.2)


def _groups(server: ServerProcess) -> list[consumers.GroupState]:
    engine = create_engine(server.db_url)
    try:
        with engine.connect() as conn:
            return consumers.group_states(conn, int(time.time() * 1000))
    finally:
        engine.dispose()


def test_consumer_workers_share_partitions_and_take_over_a_killed_one(
        server: ServerProcess, client: LegacyClient, tmp_path: Path,
        workers: Callable[[dict[str, Any]], subprocess.Popen[bytes]]) -> None:
    logset, topic = _new_topic(client, PARTITIONS + 1)
    group = f"g-{uuid.uuid4().hex[:6]}"
    out_a, out_b = tmp_path / "a.txt", tmp_path / "b.txt"
    base = _sdk_args(server, client, logset=logset, topic=topic, group=group)
    first = [[f"one-{b}-{i}" for i in range(25)] for b in range(8)]
    _upload(server, client, topic, first)
    proc_a = workers({**base, "name": "consumer-a", "out": str(out_a)})
    workers({**base, "name": "consumer-b", "out": str(out_b)})
    wanted = {rid for b in first for rid in b}
    _wait_for(lambda: wanted <= set(_lines(out_a)) | set(_lines(out_b)),
              "both workers together process the first uploads")

    def split() -> dict[str, list[int]]:
        owners: dict[str, list[int]] = {}
        for state in _groups(server)[0].partitions:
            owners.setdefault(state.owner or "", []).append(state.partition_id)
        return owners

    # Both consumers hold partitions (two each): the group shares them out.
    _wait_for(lambda: sorted(map(len, split().values())) == [2, 2] and "" not in split(),
              "the partitions are shared by both consumers")
    held_by_a = split()["consumer-a"]
    # What A committed before it dies is where B must go on from in A's partitions.
    _wait_for(lambda: all(s.committed_offset is not None and s.lag == 0
                          for s in _groups(server)[0].partitions),
              "every partition's offset is committed")
    proc_a.kill()
    proc_a.wait()
    committed = {s.partition_id: s.committed_offset for s in _groups(server)[0].partitions}
    b_before = len(_lines(out_b))
    second = [[f"two-{b}-{i}" for i in range(25)] for b in range(8)]
    _upload(server, client, topic, second)
    wanted |= {rid for b in second for rid in b}
    _wait_for(lambda: wanted <= set(_lines(out_a)) | set(_lines(out_b)),
              "every record is processed after A is gone")
    # B takes A's partitions at its first heartbeat after A's timeout; the new records may
    # all have been processed before it (none needed to land in A's partitions), so the
    # group is asked until it shows B holding them, as a user watching it would.
    _wait_for(lambda: set(split()) == {"consumer-b"}, "B holds every partition")
    owners = split()
    assert owners == {"consumer-b": list(range(1, PARTITIONS + 2))}
    # B processed the new records of A's partitions, and nothing of them that A had
    # committed: it went on from A's offsets (the records' offsets read with pull_logs).
    found = run_sdk_script(_PULL_ALL, _sdk_args(
        server, client, topic=topic, partitions=held_by_a, size=1, bad=[]))
    below: set[str] = set()
    for pid in held_by_a:
        reads = found[str(pid)]["reads"]
        # One record a read (Size 1): a record's offset is one below the next read's.
        nexts = [offset for offset, _, _ in reads[1:]] + [found[str(pid)]["end"]]
        assert all(len(ids) == 1 for _, ids, _ in reads)
        below |= {ids[0] for (_, ids, _), nxt in zip(reads, nexts, strict=True)
                  if nxt - 1 < committed[pid]}
    assert below, "A had committed records of its partitions"
    after_kill = set(_lines(out_b)[b_before:])
    taken_over = {rid for pid in held_by_a for _, ids, _ in found[str(pid)]["reads"]
                  for rid in ids} - below
    assert taken_over and taken_over <= after_kill
    assert not after_kill & below
    # `cls-shipper status` shows the group: B alone alive, holding every partition, lag 0
    # once B has committed what it processed.
    _wait_for(lambda: all(s.lag == 0 for s in _groups(server)[0].partitions),
              "B commits what it processed")
    done = subprocess.run([sys.executable, "-m", "cls_shipper", "status", "--json",
                           "--database-url", server.db_url],
                          capture_output=True, text=True, timeout=60, check=True)
    (shown,) = [g for g in json.loads(done.stdout)["consumer_groups"] if g["group"] == group]
    assert [c[0] for c in shown["consumers"] if c[2]] == ["consumer-b"]
    assert [(p["partition_id"], p["owner"], p["lag"]) for p in shown["partitions"]] == [
        (pid, "consumer-b", 0) for pid in range(1, PARTITIONS + 2)]
    assert all(p["committed_offset"] > committed[p["partition_id"]]
               for p in shown["partitions"])


_GROUP_CALLS = """
import os
os.environ["YUNAPI_ENDPOINT"] = ARGS["endpoint"]
from tencentcloud.log.logclient import YunApiLogClient
from tencentcloud.log.logexception import LogException
api = YunApiLogClient(ARGS["secret_id"], ARGS["secret_key"])
ls, topic = ARGS["logset"], ARGS["topic"]
out = {}
def attempt(name, call):
    try:
        call()
        out[name] = None
    except LogException as e:
        out[name] = [e.get_error_code(), e.get_error_message()]
attempt("create", lambda: api.create_consumer_group(ls, "g", 20, [topic]))
attempt("again", lambda: api.create_consumer_group(ls, "g", 20, [topic]))
attempt("update", lambda: api.update_consumer_group(ls, "g", [topic], 30))
out["list"] = [[g.get_consumer_group_name(), g.get_timeout(), g.get_topics()]
               for g in api.list_consumer_group(ls, [topic]).get_consumer_groups()]
out["beat"] = api.heart_beat(ls, "g", "c1", []).get_partitions()
attempt("commit", lambda: api.update_offsets(ls, "g", "c1", [
    {"TopicID": topic, "PartitionOffsets": [{"PartitionId": 2, "Offset": 1}]}]))
out["offsets"] = api.get_offsets(ls, "g", topic, -1, "end").get_consumer_group_offsets()
# A second consumer gets its share only once c1's heartbeat no longer lists it.
def beat(name, held):
    return api.heart_beat(ls, "g", name, [{"TopicID": topic, "Partitions": held}]
                          ).get_partitions()[0]["Partitions"]
out["handover"] = [beat("c2", []), beat("c1", [1, 2]), beat("c2", []), beat("c1", [1]),
                   beat("c2", [])]
attempt("unknown group", lambda: api.heart_beat(ls, "nope", "c1", []))
attempt("unknown group offsets", lambda: api.get_offsets(ls, "nope", topic, 1, "end"))
attempt("too many topics", lambda: api.create_consumer_group(ls, "h", 20, [topic] * 5000))
attempt("offset past the end", lambda: api.update_offsets(ls, "g", "c1", [
    {"TopicID": topic, "PartitionOffsets": [{"PartitionId": 1, "Offset": 10**15}]}]))
attempt("delete", lambda: api.delete_consumer_group(ls, "g"))
attempt("deleted", lambda: api.get_offsets(ls, "g", topic, 1, "end"))
print(json.dumps(out))
"""


def test_consumer_group_calls_of_the_sdk(server: ServerProcess, client: LegacyClient) -> None:
    logset, topic = _new_topic(client, 2)
    _upload(server, client, topic, [["a"], ["b"], ["c"]])
    out = run_sdk_script(_GROUP_CALLS, _sdk_args(server, client, logset=logset, topic=topic))
    assert out["create"] is None and out["update"] is None
    assert out["again"][0] == "ResourceInUse.ConsumerGroup"
    assert "consumer group already exists" in out["again"][1]
    assert out["list"] == [["g", 30, [topic]]]
    assert out["beat"] == [{"TopicID": topic, "Partitions": [1, 2]}]
    assert out["commit"] is None
    assert out["offsets"] == {topic: [{"PartitionId": 1, "Offset": 3},
                                      {"PartitionId": 2, "Offset": 1}]}
    assert out["handover"] == [[], [1], [], [1], [2]]
    assert out["unknown group"][0] == "ResourceNotFound.ConsumerGroupNotExist"
    assert out["unknown group offsets"][0] == "ResourceNotFound.ConsumerGroupNotExist"
    assert out["too many topics"][0] == "InvalidParameter"
    assert out["offset past the end"][0] == "InvalidParameterValue"
    assert out["delete"] is None
    assert out["deleted"][0] == "ResourceNotFound.ConsumerGroupNotExist"

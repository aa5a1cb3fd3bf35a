"""No record blocks a window, end to end: a real server (SQLite and PostgreSQL) whose encoders
refuse one record (tests/helpers/poison.py, loaded into the server by tests/helpers/poisoned/
sitecustomize.py: nothing ingest accepts makes a real encoder refuse a record today), objects
in a real S3-compatible server. The window holding it among thousands ends `success` with
`records_rejected: 1`, every other record is in its parts once, the rejects object holds the
record with its offset and reason, and the audit is clean."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from tests.helpers.s3server import S3TestServer
from tests.helpers.sdk_env import sdk_put_logs
from tests.helpers.server import REPO, LegacyClient, ServerProcess
from tests.helpers.shipping import (
    decompress,
    legacy,
    parse_legacy,
    read_records,
    tasks_of,
    wait_shipped,
)

POISON_KEY = "poison"
POISON_SEQ = 1717
TOTAL = 3000
ENGINE_ENV = {
    "CLS_SHIPPER_SCHEDULER_TICK": "0.2",
    "CLS_SHIPPER_LEASE_SECONDS": "4",
}
FORMATS = {
    "json": ({"format": "json"}, "gzip"),
    "csv": ({"format": "csv", "csv_info": {"keys": ["seq", "msg"], "delimiter": ",",
                                           "escape_char": '"', "non_existing_field": "-",
                                           "print_key": False}}, "gzip"),
    "parquet": ({"format": "parquet", "parquet_info": {"parquet_key_info": [
        {"key_name": "seq", "key_type": "int64", "key_non_existing_field": ""},
        {"key_name": "msg", "key_type": "string", "key_non_existing_field": ""}]}}, "zstd"),
}


@pytest.fixture(scope="module")
def poisoned_server(tmp_path_factory: pytest.TempPathFactory,
                    s3_server: S3TestServer) -> Iterator[ServerProcess]:
    path = os.pathsep.join([str(REPO / "tests" / "helpers" / "poisoned"), str(REPO),
                            os.environ.get("PYTHONPATH", "")])
    proc = ServerProcess(tmp_path_factory.mktemp("rejects"),
                         args=["--min-interval", "1", "--workers", "2",
                               "--object-store", s3_server.sink_url],
                         env={**s3_server.env, **ENGINE_ENV, "PYTHONPATH": path,
                              "TEST_POISON_CONTENT_KEY": POISON_KEY}).start()
    yield proc
    proc.stop()


def record(seq: int) -> dict[str, str]:
    contents = {"seq": str(seq), "msg": f"line {seq}, with \"quotes\" and ,commas"}
    if seq == POISON_SEQ:
        contents[POISON_KEY] = "the encoders refuse this record"
    return contents


def test_one_poison_record_among_thousands_ships_the_rest(
        poisoned_server: ServerProcess, s3_server: S3TestServer) -> None:
    client = LegacyClient(poisoned_server.base_url)
    logset = client.call("POST", "/logset", json={"logset_name": uuid.uuid4().hex,
                                                  "period": 7})["logset_id"]
    topic = client.call("POST", "/topic", json={"logset_id": logset,
                                                "topic_name": "app"})["topic_id"]
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    s3_server.create_bucket(bucket)
    shippers = {fmt: client.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": bucket, "prefix": f"{fmt}/", "shipper_name": fmt,
        "interval": 1, "partition": "%Y%m%d/", "compress": {"format": codec},
        "content": content})["shipper_id"] for fmt, (content, codec) in FORMATS.items()}
    # One upload: one chunk, so one window holds every record, the poison one among them.
    now_us = int(time.time() * 1_000_000)
    assert sdk_put_logs(poisoned_server.base_url, client.secret_id, client.secret_key, topic,
                        [[(now_us, record(seq)) for seq in range(TOTAL)]]) == TOTAL
    done_at = time.time() * 1000
    for fmt, shipper_id in shippers.items():
        wait_shipped(client, shipper_id, done_at)
        check_shipper(client, s3_server, bucket, fmt, shipper_id, now_us, done_at)


def check_shipper(client: LegacyClient, s3: S3TestServer, bucket: str, fmt: str,
                  shipper_id: str, uploaded_us: int, shipped_through: float) -> None:
    codec = FORMATS[fmt][1]
    details = [client.call("GET", "/task", {"shipper_id": shipper_id, "task_id": t["task_id"]})
               for t in tasks_of(client, shipper_id)
               if parse_legacy(t["range_start"]) <= shipped_through]  # later: maybe running
    assert all(d["status"] == "success" for d in details), [d["message"] for d in details]
    (window,) = [d for d in details if d["records"] or d["records_rejected"]]
    assert (window["records"], window["records_rejected"]) == (TOTAL - 1, 1), fmt
    shipped: list[dict[str, Any]] = []
    rejects = [o for o in window["objects"] if o["kind"] == "rejects"]
    assert len(rejects) == 1 and rejects[0]["key"] in window["message"], window["message"]
    for obj in window["objects"]:
        data = s3.get_object(bucket, obj["key"])
        assert len(data) == obj["size"]
        if obj["kind"] == "part":
            shipped += read_records(data, fmt, codec, csv_keys=["seq", "msg"])
    assert sorted(int(r["seq"]) for r in shipped) == [s for s in range(TOTAL) if s != POISON_SEQ]
    (line,) = decompress(s3.get_object(bucket, rejects[0]["key"]), codec).splitlines()
    entry = orjson.loads(line)
    assert entry["offset"] == window["first_offset"] + POISON_SEQ
    assert entry["contents"] == record(POISON_SEQ) and entry["source"] == "10.1.2.3"
    assert entry["time"] == uploaded_us  # as uploaded, not as shipped (ms)
    assert entry["reason"] == "Poison: this encoder refuses the test's poison records"
    # The rejects object sits beside the parts, named so table readers skip it.
    part_dir = window["objects"][0]["key"].rpartition("/")[0]
    assert rejects[0]["key"].startswith(part_dir + "/_")
    assert rejects[0]["key"].endswith(".jsonl" + {"gzip": ".gz", "zstd": ".zst"}[codec])
    # Windows through `shipped_through` are all shipped; later ones may still be running.
    span = {"shipper_id": shipper_id, "start_time": legacy(shipped_through - 600_000),
            "end_time": legacy(shipped_through)}
    report = client.call("GET", "/audit", span)
    assert report["clean"], report["findings"]
    assert (report["records"], report["records_rejected"]) == (TOTAL - 1, 1)
    assert report["objects"] >= len(window["objects"])
    assert sorted(s3.list_objects(bucket, f"{fmt}/")) == sorted(
        o["key"] for d in details for o in d["objects"])
    # The CLI shows the count in its task table and in the audit's summary.
    env = {**os.environ, "CLS_SHIPPER_SECRET_ID": client.secret_id,
           "CLS_SHIPPER_SECRET_KEY": client.secret_key, "COLUMNS": "250"}
    for command, expected in (("tasks", rf"│ {TOTAL - 1} +│ 1 +│"), ("audit", r"\b1 rejected")):
        shown = subprocess.run(
            [sys.executable, "-m", "cls_shipper", command, "--shipper-id", shipper_id,
             "--endpoint", client.base_url], env=env, capture_output=True, text=True).stdout
        assert re.search(expected, shown), shown
    # The audit checks the rejects object like any other: gone, it is reported missing.
    s3.client().delete_object(Bucket=bucket, Key=rejects[0]["key"])
    report = client.call("GET", "/audit", span)
    assert [(f["kind"], f["key"]) for f in report["findings"]] == [
        ("missing", rejects[0]["key"])]

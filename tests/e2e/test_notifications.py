"""Notifications end to end: a real server shipping to a moto S3, a real webhook receiver in
the test process. A missing bucket fails a window and blocks the shipper; creating it
unblocks the shipper and ships the failed windows; the lag passes its threshold and comes
back under; the receiver is down for a while, and every event arrives once it is up, signed,
none lost and none twice."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from cls_shipper.store.schema import notifications
from tests.e2e.test_shipping import ENGINE_ENV, new_bucket, new_topic, upload
from tests.helpers.s3server import S3TestServer
from tests.helpers.server import LegacyClient, ServerProcess
from tests.helpers.shipping import tasks_of, wait_shipped
from tests.helpers.webhook import Receiver, documented_verifier

SECRET = "whsec-test-0123456789"


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    hook = Receiver()
    hook.up()
    yield hook
    hook.down()


def of_type(events: list[dict[str, Any]], kind: str, shipper_id: str) -> list[dict[str, Any]]:
    return [e for e in events if e["type"] == kind and e["shipper_id"] == shipper_id]


def pending_events(server: ServerProcess) -> int:
    engine = create_engine(server.db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(notifications)).scalar_one())
    finally:
        engine.dispose()


def test_failed_blocked_recovered_and_lag_events_arrive_signed_once(
        tmp_path: Path, s3_server: S3TestServer, receiver: Receiver) -> None:
    server = ServerProcess(
        tmp_path, args=["--min-interval", "1", "--workers", "1",
                        "--object-store", s3_server.sink_url],
        env={**s3_server.env, **ENGINE_ENV, "CLS_SHIPPER_NOTIFY_URL": receiver.url,
             "CLS_SHIPPER_NOTIFY_SECRET": SECRET, "CLS_SHIPPER_NOTIFY_LAG_SECONDS": "4",
             "CLS_SHIPPER_NOTIFY_BACKOFF_CAP_SECONDS": "1"})
    client = LegacyClient(server.start().base_url)
    try:
        topic, bucket = new_topic(client), new_bucket(s3_server)
        shipper_id = client.call("POST", "/shipper", json={
            "topic_id": topic, "bucket": bucket, "prefix": "n/", "shipper_name": "notified",
            "interval": 1, "compress": {"format": "gzip"}})["shipper_id"]
        s3_server.client().delete_bucket(Bucket=bucket)
        upload(server, topic, 0, 50)

        # The bucket is missing: the window fails, the shipper blocks, then it lags.
        events = receiver.wait_for(
            lambda evs: bool(of_type(evs, "task.failed", shipper_id)
                             and of_type(evs, "shipper.blocked", shipper_id)
                             and of_type(evs, "shipper.lag_exceeded", shipper_id)),
            "task.failed, shipper.blocked and shipper.lag_exceeded")
        failed = of_type(events, "task.failed", shipper_id)[0]
        assert failed["error"]["code"] == 10001 and "does not exist" in failed["error"]["message"]
        assert failed["window"]["end_ms"] > failed["window"]["start_ms"]
        assert failed["task_id"] and "destination" in failed["action"]
        assert failed["shipper_name"] == "notified" and failed["topic_id"] == topic
        blocked = of_type(events, "shipper.blocked", shipper_id)
        assert len(blocked) == 1  # one per block, not one per refused window
        assert blocked[0]["destination"] == {"bucket": bucket, "prefix": "n/"}
        assert blocked[0]["error"]["code"] == 10001

        # The receiver goes down; meanwhile the bucket is created and everything ships.
        receiver.down()
        s3_server.create_bucket(bucket)
        wait_shipped(client, shipper_id, time.time() * 1000)
        failed_ids = {t["task_id"] for t in tasks_of(client, shipper_id)
                      if any(e["task_id"] == t["task_id"]
                             for e in of_type(receiver.events(), "task.failed", shipper_id))}
        deadline = time.monotonic() + 60
        while "not delivered" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "not delivered" in server.log()  # attempts failed while it was down
        receiver.up()

        # Delivered late: the unblock, each failed window's recovery, the lag back under.
        events = receiver.wait_for(
            lambda evs: bool(of_type(evs, "shipper.unblocked", shipper_id)
                             and {e["task_id"] for e in of_type(evs, "task.recovered",
                                                                shipper_id)} >= failed_ids
                             and of_type(evs, "shipper.lag_recovered", shipper_id)),
            "shipper.unblocked, task.recovered and shipper.lag_recovered")
        unblocked = of_type(events, "shipper.unblocked", shipper_id)[0]
        assert unblocked["unblocked_by"] == "probe" and unblocked["windows_queued"] >= 1
        assert failed_ids and all(
            e["records"] >= 0 for e in of_type(events, "task.recovered", shipper_id))

        # None lost (the outbox is empty), none twice, each signed with the secret.
        deadline = time.monotonic() + 30
        while pending_events(server) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert pending_events(server) == 0
        status = subprocess.run([sys.executable, "-m", "cls_shipper", "status", "--json",
                                 "--data-dir", str(tmp_path)], capture_output=True, check=True)
        assert json.loads(status.stdout)["notifications"] == {"pending": 0, "given_up": 0,
                                                              "dropped": 0}
        deliveries = list(receiver.deliveries)
        ids = [d.event["event_id"] for d in deliveries]
        assert len(ids) == len(set(ids)), ids
        verify = documented_verifier()
        for delivery in deliveries:
            headers = {k.lower(): v for k, v in delivery.headers.items()}
            assert headers["x-cls-shipper-event-id"] == delivery.event["event_id"]
            assert headers["x-cls-shipper-event"] == delivery.event["type"]
            assert verify(SECRET, headers["x-cls-shipper-signature"], delivery.body)
            assert not verify("not-the-secret", headers["x-cls-shipper-signature"],
                              delivery.body)
            assert not verify(SECRET, headers["x-cls-shipper-signature"],
                              delivery.body + b" ")
        late = [d for d in deliveries
                if int({k.lower(): v for k, v in d.headers.items()}
                       ["x-cls-shipper-delivery-attempt"]) > 1]
        assert late, "no event was retried while the receiver was down"
    finally:
        server.stop()


def test_the_documented_verifier_refuses_an_old_signature() -> None:
    from cls_shipper.shipping.notifier import signature
    verify = documented_verifier()
    body = b'{"event_id": "evt_1", "type": "task.failed"}'
    now = int(time.time())
    assert verify(SECRET, signature(SECRET, now, body), body)
    assert not verify(SECRET, signature(SECRET, now - 3600, body), body)  # a replay
    assert not verify(uuid.uuid4().hex, signature(SECRET, now, body), body)
    assert not verify(SECRET, "garbage", body)

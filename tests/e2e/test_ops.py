"""The operations endpoints of real server processes: every role listens, /readyz says when a
node cannot work and why, SIGTERM still stops a node cleanly, --ops-port moves the endpoints
off the API's port, and /metrics counts what happened with labels no client can choose."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path

import httpx
from sqlalchemy import create_engine, select, text

from cls_shipper.auth import qsign
from cls_shipper.store.schema import nodes
from tests.e2e.test_ingest import lz4_body, make_group, make_list, upload, upload_ok
from tests.helpers.metrics import names, ready_status, scrape, value, wait_until
from tests.helpers.server import SECRET_ID, SECRET_KEY, LegacyClient, ServerProcess, free_port


def answers_ready(proc: ServerProcess) -> bool:
    try:
        return httpx.get(proc.base_url + "/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def worker_node(data_dir: Path, workers: int = 1) -> ServerProcess:
    return ServerProcess(data_dir, args=["--role", "worker", "--workers", str(workers)],
                         ready=answers_ready)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_worker_node_answers_readyz_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    node = worker_node(tmp_path).start()
    try:
        health = httpx.get(node.base_url + "/healthz", timeout=5)
        assert (health.status_code, health.json()) == (200, {"status": "ok"})
        assert ready_status(node.base_url) == (200, {"ready": True, "reasons": []})
        samples = scrape(node.base_url)
        assert value(samples, "cls_shipper_node_ready") == 1
        assert value(samples, "cls_shipper_node_info", role="worker") == 1
        assert value(samples, "cls_shipper_engine_worker_processes", state="alive") == 1
        # Its worker process claims (finding nothing), counted through the node's metrics.
        wait_until("a claim in the metrics", lambda: (value(
            scrape(node.base_url), "cls_shipper_engine_claim_seconds_count") or 0) >= 1)
        # Only the operations endpoints: no API on a worker node.
        assert httpx.get(node.base_url + "/logsets", timeout=5).status_code == 404
        assert node.proc is not None
        node.proc.send_signal(signal.SIGTERM)
        assert node.proc.wait(60) == 0
        assert "stopped cleanly" in node.log()
        assert not listening(node.port)
    finally:
        node.stop()


def test_a_dead_worker_process_makes_its_node_unready(tmp_path: Path) -> None:
    node = worker_node(tmp_path).start()
    try:
        engine = create_engine(node.db_url)
        with engine.connect() as conn:
            pid = conn.execute(select(nodes.c.pid).where(
                nodes.c.parent_id.is_not(None))).scalar_one()
        engine.dispose()
        os.kill(pid, signal.SIGKILL)
        wait_until("/readyz to answer 503", lambda: ready_status(node.base_url)[0] == 503)
        status, body = ready_status(node.base_url)
        assert status == 503 and body["ready"] is False
        assert any("worker process worker-0" in reason and "exited" in reason
                   for reason in body["reasons"]), body
        samples = scrape(node.base_url)
        assert value(samples, "cls_shipper_node_ready") == 0
        assert value(samples, "cls_shipper_engine_worker_processes", state="exited") == 1
        assert node.proc is not None
        node.proc.terminate()
        assert node.proc.wait(60) == 0
    finally:
        node.stop()


def test_ops_port_moves_the_endpoints_off_the_api_port(tmp_path: Path) -> None:
    ops_port = free_port()
    ops_url = f"http://127.0.0.1:{ops_port}"
    node = ServerProcess(tmp_path, args=["--workers", "0", "--ops-port", str(ops_port)]).start()
    try:
        wait_until("the ops listener", lambda: answers_ready_at(ops_url))
        # The API port: the APIs, and no operations endpoint.
        for path in ("/healthz", "/readyz", "/metrics"):
            assert httpx.get(node.base_url + path, timeout=5).status_code == 404, path
        client = LegacyClient(node.base_url)
        client.call("GET", "/logsets")
        # The ops port: the operations endpoints, and no API.
        assert httpx.get(ops_url + "/healthz", timeout=5).status_code == 200
        assert httpx.get(ops_url + "/logsets", timeout=5).status_code == 404
        samples = scrape(ops_url)
        assert value(samples, "cls_shipper_http_requests_total", surface="legacy",
                     route="GET /logsets", status="200") == 1
        assert value(samples, "cls_shipper_node_info", role="all") == 1
        assert value(samples, "cls_shipper_engine_leader") == 1  # SQLite: it schedules
    finally:
        node.stop()


def answers_ready_at(base_url: str) -> bool:
    try:
        return httpx.get(base_url + "/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def test_metrics_count_uploads_with_bounded_labels_and_readyz_sees_the_schema(
        tmp_path: Path) -> None:
    node = ServerProcess(tmp_path, args=["--workers", "0"]).start()
    try:
        client = LegacyClient(node.base_url)
        logset = client.call("POST", "/logset", json={"logset_name": "ops", "period": 7})
        topic = client.call("POST", "/topic", json={"logset_id": logset["logset_id"],
                                                    "topic_name": "t"})["topic_id"]
        message = make_list(make_group([{"n": str(i)} for i in range(3)]))
        upload_ok(client, topic, message)
        upload_ok(client, topic, message)
        # What clients choose must never become a label: a made-up topic, a made-up action,
        # a made-up path.
        made_up = f"made-up-{uuid.uuid4().hex}"
        assert upload(client, made_up, lz4_body(message)).status_code == 404
        assert upload(client, topic, b"not lz4").status_code == 400
        httpx.post(node.base_url + "/", headers={"X-TC-Action": made_up}, timeout=5)
        httpx.get(node.base_url + f"/{made_up}", timeout=5)
        httpx.get(node.base_url + f"/console/{made_up}", timeout=5)
        # A signed upload whose client leaves mid-body.
        host = f"127.0.0.1:{node.port}"
        auth = qsign.sign(SECRET_ID, SECRET_KEY, "POST", "/structuredlog", {"topic_id": topic},
                          {"Host": host, "Content-Type": "application/x-protobuf"},
                          int(time.time()) - 60)
        with socket.create_connection(("127.0.0.1", node.port)) as sock:
            sock.sendall(f"POST /structuredlog?topic_id={topic} HTTP/1.1\r\nHost: {host}\r\n"
                         f"Content-Type: application/x-protobuf\r\nAuthorization: {auth}\r\n"
                         f"Content-Length: 1000\r\n\r\npartial".encode())
        wait_until("the disconnect counted", lambda: value(
            scrape(node.base_url), "cls_shipper_http_client_disconnects_total") == 1)
        samples = scrape(node.base_url)
        assert value(samples, "cls_shipper_topic_ingested_records_total", topic_id=topic) == 6
        assert value(samples, "cls_shipper_topic_head_offset", topic_id=topic) == 6
        assert (value(samples, "cls_shipper_topic_ingested_bytes_total", topic_id=topic)
                == 2 * len(lz4_body(message)))
        assert value(samples, "cls_shipper_topic_retained_bytes", topic_id=topic) == (
            2 * len(lz4_body(message)))
        assert value(samples, "cls_shipper_topic_upload_refusals_total", topic_id="_unknown",
                     code="TopicNotExist") == 1
        assert value(samples, "cls_shipper_topic_upload_refusals_total", topic_id=topic,
                     code="InvalidContent") is not None
        assert value(samples, "cls_shipper_http_requests_total", surface="legacy",
                     route="POST /structuredlog", status="200") == 2
        assert value(samples, "cls_shipper_http_requests_total", surface="v3",
                     route="_unknown", status="200") == 1
        assert value(samples, "cls_shipper_http_requests_total", surface="_unmatched",
                     route="_unmatched", status="404") == 1
        assert value(samples, "cls_shipper_http_requests_total", surface="console",
                     route="_unmatched", status="404") == 1
        assert (value(samples, "cls_shipper_store_commit_batch_uploads_count") or 0) >= 2
        labels = {v for _, label_set in samples for _, v in label_set}
        assert not any(made_up in label for label in labels)
        assert {"cls_shipper_http_request_duration_seconds_bucket",
                "cls_shipper_store_commit_seconds_bucket"} <= names(samples)

        # A schema this version does not know (an older node migrated it back, a restore):
        # not ready, saying why; ready again once it is current.
        engine = create_engine(node.db_url)
        with engine.begin() as conn:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            conn.execute(text("UPDATE alembic_version SET version_num = 'older'"))
        try:
            wait_until("/readyz to answer 503", lambda: ready_status(node.base_url)[0] == 503)
            body = ready_status(node.base_url)[1]
            assert any("schema" in reason for reason in body["reasons"]), body
        finally:
            with engine.begin() as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": current})
            engine.dispose()
        wait_until("/readyz to answer 200", lambda: ready_status(node.base_url)[0] == 200)
    finally:
        node.stop()


def test_metrics_can_be_switched_off(tmp_path: Path) -> None:
    node = ServerProcess(tmp_path, args=["--workers", "0", "--no-metrics"]).start()
    try:
        resp = httpx.get(node.base_url + "/metrics", timeout=5)
        assert resp.status_code == 404
        assert "off" in resp.json()["error"]
        assert ready_status(node.base_url)[0] == 200
    finally:
        node.stop()

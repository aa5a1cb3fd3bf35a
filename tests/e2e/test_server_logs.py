"""The server's log as a machine reads it: `--log-format json --access-log` on a real
server, requests through both APIs, a shipping window that fails, and its standard error
parsed line by line."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.test_ingest import make_group, make_list, upload, upload_ok
from tests.helpers.server import SECRET_KEY, LegacyClient, ServerProcess
from tests.helpers.v3 import signed_post

RFC3339_UTC = "%Y-%m-%dT%H:%M:%S"


@pytest.fixture(scope="module")
def json_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    # Shippers are created before their bucket exists: the failing window's bucket is a file.
    proc = ServerProcess(tmp_path_factory.mktemp("logs"),
                         args=["--min-interval", "1", "--log-format", "json", "--access-log",
                               "--no-check-destination"])
    proc.start()
    yield proc
    proc.stop()


def _lines(server: ServerProcess) -> list[dict[str, Any]]:
    """Every line of the server's output, each of which must be one JSON object."""
    parsed = []
    for line in server.log().splitlines():
        doc = orjson.loads(line)  # fails the test on any line that is not JSON
        assert isinstance(doc, dict), line
        parsed.append(doc)
    return parsed


def _wait_for_line(server: ServerProcess, match: Any, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [doc for doc in _lines(server) if match(doc)]
        if found:
            return found[0]
        time.sleep(0.2)
    raise AssertionError(f"no such line in the server's log:\n{server.log()[-4000:]}")


def _access(server: ServerProcess, request_id: str) -> dict[str, Any]:
    return _wait_for_line(server, lambda d: d["logger"] == "cls_shipper.access"
                          and d.get("request_id") == request_id, timeout=10)


def test_every_line_is_json_with_request_ids_and_no_secret(json_server: ServerProcess) -> None:
    client = LegacyClient(json_server.base_url)
    logset = client.call("POST", "/logset", json={"logset_name": f"l-{uuid.uuid4().hex[:8]}",
                                                  "period": 7})["logset_id"]
    topic = client.call("POST", "/topic", json={"logset_id": logset,
                                                "topic_name": "app"})["topic_id"]

    ok = upload(client, topic, _body())
    assert ok.status_code == 200
    line = _access(json_server, ok.headers["x-cls-requestid"])
    assert (line["method"], line["route"], line["status"]) == ("POST", "/structuredlog", 200)
    assert line["bytes"] == 0 and line["duration_ms"] >= 0 and line["client"] == "127.0.0.1"
    assert line["level"] == "info" and line["node"]
    time.strptime(line["time"][:19], RFC3339_UTC)
    assert line["time"].endswith("Z")

    bad = upload(client, topic, b"not lz4 at all")
    assert bad.status_code == 400
    line = _access(json_server, bad.headers["x-cls-requestid"])
    assert (line["route"], line["status"]) == ("/structuredlog", 400)
    assert line["bytes"] == len(bad.content)

    v3 = signed_post(json_server, "DescribeLogsets", b"{}")
    request_id = v3.json()["Response"]["RequestId"]
    line = _access(json_server, request_id)
    assert (line["route"], line["action"], line["status"]) == ("/", "DescribeLogsets", 200)

    # A signature in the query string is never written: the access line has the route only.
    probe = client.raw("GET", "/nothing", {"q-signature": "f00dfeed" * 5}, sign=False)
    line = _access(json_server, probe.headers["x-cls-requestid"])
    assert line["route"] == "/nothing" and line["status"] == 404

    # A line logged by the service while it serves a request carries that request's id.
    created = client.raw("POST", "/shipper", body=orjson.dumps({
        "topic_id": topic, "bucket": "logs-bucket", "prefix": "p/", "shipper_name": "s",
        "interval": 1, "partition": "%Y/", "compress": {"format": "none"},
        "content": {"format": "json"}}))
    assert created.status_code == 200, created.text
    shipper = created.json()["shipper_id"]
    inside = _wait_for_line(json_server, lambda d: d["logger"] != "cls_shipper.access"
                            and shipper in d["message"] and "created" in d["message"])
    assert inside["request_id"] == created.headers["x-cls-requestid"]

    text = json_server.log()
    assert SECRET_KEY not in text
    assert "f00dfeed" not in text
    for marker in ("q-sign-algorithm", "q-signature", "TC3-HMAC-SHA256", "Signature="):
        assert marker not in text, marker


def test_a_failing_window_is_logged_with_its_shipper_and_task(
        json_server: ServerProcess) -> None:
    client = LegacyClient(json_server.base_url)
    logset = client.call("POST", "/logset", json={"logset_name": f"f-{uuid.uuid4().hex[:8]}",
                                                  "period": 7})["logset_id"]
    topic = client.call("POST", "/topic", json={"logset_id": logset,
                                                "topic_name": "app"})["topic_id"]
    # The bucket's place in the local store is a file: every write into it fails.
    buckets = json_server.data_dir / "buckets"
    buckets.mkdir(exist_ok=True)
    (buckets / "blocked-bucket").write_text("not a directory")
    shipper = client.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": "blocked-bucket", "prefix": "p/", "shipper_name": "f",
        "interval": 1, "partition": "%Y/", "compress": {"format": "none"},
        "content": {"format": "json"}})["shipper_id"]
    upload_ok(client, topic, make_list(make_group([{"n": "1"}], time0=int(time.time()))))

    line = _wait_for_line(json_server, lambda d: d.get("shipper_id") == shipper
                          and d["level"] in ("warning", "error"))
    assert line["logger"] == "cls_shipper.worker"
    assert line["task_id"] and line["task_id"] in line["message"]
    assert line["topic_id"] == topic
    assert line["node"].endswith("/w0")  # written by the worker process
    tasks = client.call("GET", "/task", {"shipper_id": shipper, "task_id": line["task_id"]})
    assert tasks["task_id"] == line["task_id"]
    _lines(json_server)  # and still every line is JSON


def _body() -> bytes:
    from tests.e2e.test_ingest import lz4_body

    return lz4_body(make_list(make_group([{"msg": "hello"}], time0=int(time.time()))))


def test_text_format_names_the_request(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path, args=["--access-log"])
    server.start()
    try:
        resp = LegacyClient(server.base_url).raw("GET", "/logsets")
        request_id = resp.headers["x-cls-requestid"]
        deadline = time.monotonic() + 10
        while request_id not in server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        server.stop()
    [line] = [ln for ln in server.log().splitlines() if request_id in ln]
    assert " INFO cls_shipper.access [" in line and "GET /logsets 200" in line
    assert f"request_id={request_id}" in line

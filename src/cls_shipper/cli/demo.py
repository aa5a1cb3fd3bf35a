"""The demo behind `cls-shipper serve --demo`: a topic receiving generated nginx-style logs
through the real upload endpoint, and a shipper with a short interval writing objects."""

from __future__ import annotations

import logging
import random
import sys
import threading
import time

import lz4.block
from rich.console import Console

from cls_shipper.cli.client import ClsClient
from cls_shipper.errors import ClientError
from cls_shipper.ingest.cls_pb import LogGroupList
from cls_shipper.settings import Settings

log = logging.getLogger("cls_shipper.cli.demo")
DEMO_INTERVAL = 10
PATHS = ["/", "/index.html", "/api/orders", "/api/users/42", "/static/app.js", "/login"]
AGENTS = ["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", "Go-http-client/1.1"]


def nginx_group_list(count: int, rng: random.Random) -> bytes:
    groups = LogGroupList()
    group = groups.logGroupList.add()
    group.source = "10.0.0.7"
    group.filename = "/var/log/nginx/access.log"
    group.hostname = "web-1"
    tag = group.logTags.add()
    tag.key, tag.value = "env", "demo"
    now_us = int(time.time() * 1_000_000)
    for _ in range(count):
        entry = group.logs.add()
        entry.time = now_us
        for key, value in (
            ("remote_addr", f"192.168.{rng.randrange(256)}.{rng.randrange(256)}"),
            ("method", rng.choice(["GET", "GET", "GET", "POST"])),
            ("path", rng.choice(PATHS)),
            ("status", rng.choice(["200", "200", "200", "304", "404", "500"])),
            ("body_bytes_sent", str(rng.randrange(100, 50_000))),
            ("request_time", f"{rng.random():.3f}"),
            ("http_user_agent", rng.choice(AGENTS)),
        ):
            content = entry.contents.add()
            content.key, content.value = key, value
    return bytes(groups.SerializeToString())


def _setup(client: ClsClient) -> tuple[str, str]:
    logsets = client.call("GET", "/logsets")["logsets"]
    logset = next((ls["logset_id"] for ls in logsets if ls["logset_name"] == "demo"), None)
    if logset is None:
        logset = client.call("POST", "/logset", json={"logset_name": "demo", "period": 7})[
            "logset_id"]
    topics = client.call("GET", "/topics", {"logset_id": logset})["topics"]
    topic = next((t["topic_id"] for t in topics if t["topic_name"] == "nginx"), None)
    if topic is None:
        topic = client.call("POST", "/topic", json={"logset_id": logset, "topic_name": "nginx"})[
            "topic_id"]
    shippers = client.call("GET", "/shippers", {"topic_id": topic})["shippers"]
    shipper = next((s["shipper_id"] for s in shippers if s["shipper_name"] == "demo"), None)
    if shipper is None:
        shipper = client.call("POST", "/shipper", json={
            "topic_id": topic, "bucket": "demo-bucket", "prefix": "nginx/",
            "shipper_name": "demo", "interval": DEMO_INTERVAL, "partition": "%Y/%m/%d/%H%M/",
            "compress": {"format": "gzip"}, "content": {"format": "json"}})["shipper_id"]
    return topic, shipper


def run(settings: Settings, secret_id: str, secret_key: str, stop: threading.Event) -> None:
    scheme = "https" if settings.ssl_certfile else "http"
    endpoint = f"{scheme}://{settings.host if settings.host != '0.0.0.0' else '127.0.0.1'}:" \
               f"{settings.port}"
    # Over TLS the demo talks to its own process on loopback, under whatever name the
    # certificate carries: there is nothing to verify. (A server requiring client
    # certificates refuses it: the demo then says it cannot reach the server.)
    client = ClsClient(endpoint, secret_id, secret_key, verify=not settings.ssl_certfile)
    for _ in range(100):
        try:
            topic, shipper = _setup(client)
            break
        except (ClientError, OSError) as exc:
            log.debug("demo waiting for the server: %s", exc)
            stop.wait(0.2)
    else:
        log.error("demo could not reach the server at %s", endpoint)
        return
    # The command as it was started (after `make run`: .venv/bin/cls-shipper).
    command = sys.argv[0] if sys.argv[0].endswith("cls-shipper") else "cls-shipper"
    options = f"--shipper-id {shipper} --data-dir {settings.data_dir} --endpoint {endpoint}"
    Console(stderr=True).print(
        f"\n[bold green]Demo running[/bold green]: topic {topic} receives nginx logs; shipper "
        f"{shipper} ships every {DEMO_INTERVAL} s to "
        f"{settings.object_store_url}/demo-bucket/nginx/...\n"
        f"List its tasks:\n  {command} tasks {options}\n"
        f"Check the bucket against the ledger:\n  {command} audit {options}\n"
        f"Look at the objects:\n  find {settings.data_dir / 'buckets' / 'demo-bucket'} "
        f"-type f | head\n", soft_wrap=True)
    rng = random.Random(7)
    headers = {"Content-Type": "application/x-protobuf", "x-cls-compress-type": "lz4"}
    while not stop.is_set():
        body = lz4.block.compress(nginx_group_list(200, rng))[4:]
        try:
            client.request("POST", "/structuredlog", {"topic_id": topic}, body, headers)
        except (ClientError, OSError) as exc:
            log.warning("demo upload failed: %s", exc)
        stop.wait(0.5)
    client.close()

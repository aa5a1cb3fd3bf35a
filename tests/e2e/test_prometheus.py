"""A real Prometheus scrapes a deployment: an API node, a scheduler node and a worker node
(separate processes on one PostgreSQL database) shipping to an S3-compatible server.

While no worker runs, windows wait and the shipper's lag grows; once the worker ships them,
Prometheus's shipped-records counter equals the ledger's records and the lag falls. The
alert rules load and evaluate in that Prometheus, and every metric the dashboard and the
rules name is one the deployment really exports."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, func, select

from cls_shipper.store.schema import tasks
from tests.conftest import postgres_base
from tests.e2e.test_ingest import make_group, make_list, upload, upload_ok
from tests.e2e.test_scaleout import node, start_all
from tests.e2e.test_shipping import new_bucket, new_topic
from tests.helpers.metrics import wait_until
from tests.helpers.s3server import S3TestServer
from tests.helpers.server import (
    REPO,
    LegacyClient,
    ServerProcess,
    create_postgres_database,
    drop_postgres_databases,
    free_port,
)
from tests.helpers.shipping import wait_shipped
from tests.helpers.tools import require_tool

ALERTS = REPO / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "cls-shipper.json"
JOB = "cls-shipper"  # the job name the alert rules expect


class Prometheus:
    """Debian's prometheus binary with its own config, storage and port."""

    def __init__(self, workdir: Path, targets: list[str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "prometheus.yml"
        config.write_text(json.dumps({  # JSON is YAML
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(ALERTS)],
            "scrape_configs": [{"job_name": JOB, "scrape_interval": "1s",
                                "static_configs": [{"targets": targets}]}]}))
        self.log = workdir / "prometheus.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [require_tool("prometheus", "prometheus"), f"--config.file={config}",
                 f"--storage.tsdb.path={workdir / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT)
        wait_until("Prometheus to be ready", self._ready)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log.read_text()}")
        try:
            return httpx.get(self.url + "/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def api(self, path: str, **params: str) -> Any:
        resp = httpx.get(self.url + "/api/v1/" + path, params=params, timeout=10)
        body = resp.json()
        assert body["status"] == "success", body
        return body["data"]

    def scalar(self, query: str) -> float | None:
        """The value of a query that yields at most one series."""
        result = self.api("query", query=query)["result"]
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture()
def database_url() -> Iterator[str]:
    base = postgres_base()
    names: list[str] = []
    url = create_postgres_database(base, names)
    try:
        yield url
    finally:
        drop_postgres_databases(base, names)


def named_metrics() -> set[str]:
    """Every cls_shipper metric the dashboard's queries and the alert rules name."""
    exprs = [t["expr"] for p in json.loads(DASHBOARD.read_text())["panels"]
             for t in p.get("targets", [])]
    assert len(exprs) > 20, "the dashboard lost its queries"
    named = set(re.findall(r"\bcls_shipper_[a-z0-9_]+", "\n".join(exprs)))
    rules = [r["expr"] for g in yaml.safe_load(ALERTS.read_text())["groups"]
             for r in g["rules"]]
    named |= set(re.findall(r"\bcls_shipper_[a-z0-9_]+", "\n".join(rules)))
    return named


def test_prometheus_scrapes_a_deployment_and_sees_it_ship(
        tmp_path: Path, database_url: str, s3_server: S3TestServer) -> None:
    require_tool("prometheus", "prometheus")
    api, scheduler = (node(tmp_path, database_url, s3_server, "api"),
                      node(tmp_path, database_url, s3_server, "scheduler"))
    worker = node(tmp_path, database_url, s3_server, "worker", workers=1)
    nodes: list[ServerProcess] = [api, scheduler, worker]
    prometheus: Prometheus | None = None
    try:
        start_all([api, scheduler])
        prometheus = Prometheus(tmp_path / "prometheus",
                                [f"127.0.0.1:{n.port}" for n in nodes])
        client = LegacyClient(api.base_url)
        topic, bucket = new_topic(client), new_bucket(s3_server)
        shipper = client.call("POST", "/shipper", json={
            "topic_id": topic, "bucket": bucket, "prefix": "p/", "shipper_name": "metrics",
            "interval": 2, "compress": {"format": "gzip"}})["shipper_id"]
        for first in range(0, 300, 100):
            upload_ok(client, topic, make_list(make_group(
                [{"seq": str(i)} for i in range(first, first + 100)])))
        uploaded_ms = time.time() * 1000
        assert upload(client, topic, b"not lz4").status_code == 400  # one refusal
        lag = f'max(cls_shipper_shipper_lag_seconds{{shipper_id="{shipper}"}})'

        # No worker yet: the windows wait, and the lag grows past several windows.
        wait_until("windows waiting, seen by Prometheus", lambda: (prometheus.scalar(
            f'max(cls_shipper_shipper_windows{{shipper_id="{shipper}", status="wait"}})')
            or 0) >= 3)
        wait_until("the lag to grow", lambda: (prometheus.scalar(lag) or 0) >= 8)
        backlog_lag = prometheus.scalar(
            f'max(max_over_time(cls_shipper_shipper_lag_seconds{{shipper_id="{shipper}"}}[1m]))')
        assert backlog_lag is not None

        start_all([worker])
        wait_shipped(client, shipper, uploaded_ms)
        engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://"))
        with engine.connect() as conn:
            in_ledger = conn.execute(select(func.sum(tasks.c.records))
                                     .where(tasks.c.shipper_id == shipper)).scalar_one()
        engine.dispose()
        assert in_ledger == 300
        shipped = f'sum(cls_shipper_shipper_shipped_records_total{{shipper_id="{shipper}"}})'
        wait_until("Prometheus's shipped records to reach the ledger's",
                   lambda: prometheus.scalar(shipped) == in_ledger)
        assert prometheus.scalar(
            f'sum(cls_shipper_shipper_read_records_total{{shipper_id="{shipper}"}})') == 300
        assert prometheus.scalar(
            f'sum(cls_shipper_topic_ingested_records_total{{topic_id="{topic}"}})') == 300
        assert prometheus.scalar(
            f'max(cls_shipper_topic_head_offset{{topic_id="{topic}"}})') == 300
        # Once the backlog shipped, the lag is back to about one window.
        wait_until("the lag to fall", lambda: (prometheus.scalar(lag) or backlog_lag)
                   < backlog_lag / 2)
        assert prometheus.scalar(
            f'max(cls_shipper_shipper_windows{{shipper_id="{shipper}", status="failed"}})') == 0
        # Empty windows keep shipping, so the successes only grow: at least the windows
        # that held the records.
        successes = prometheus.scalar(f'sum(cls_shipper_shipper_attempts_total'
                                      f'{{shipper_id="{shipper}", outcome="success"}})')
        assert successes is not None and successes >= 2
        # Every node is ready, and one of them leads the scheduler.
        wait_until("three ready nodes", lambda: prometheus.scalar(
            f'sum(cls_shipper_node_ready{{job="{JOB}"}})') == 3)
        assert prometheus.scalar("sum(cls_shipper_engine_leader)") == 1

        # The rules load and evaluate; every name in the dashboard and the rules exists.
        groups = prometheus.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert len(rules) == 6 and all(r["health"] == "ok" for r in rules), rules
        exported = set(prometheus.api("label/__name__/values"))
        missing = named_metrics() - exported
        assert not missing, f"named but never exported: {sorted(missing)}"
    finally:
        if prometheus is not None:
            prometheus.close()
        for proc in nodes:
            proc.stop()

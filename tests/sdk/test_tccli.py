"""`tccli cls ... --endpoint http://host:port`, the official command line, against a server:
shipper create and describe, its tasks and a retry, as docs/api-v3.md shows them."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.ledger_tasks import cut_and_fail_one
from tests.helpers.sdk_env import sdk_python
from tests.helpers.server import SECRET_ID, SECRET_KEY, ServerProcess
from tests.helpers.v3 import v3_json


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Without workers, so that a failed task stays failed until it is retried."""
    proc = ServerProcess(tmp_path_factory.mktemp("tccli"),
                         args=["--min-interval", "1", "--workers", "0"]).start()
    yield proc
    proc.stop()


def tccli(server: ServerProcess, home: Path, action: str, *args: str) -> tuple[int, str]:
    tool = sdk_python().parent / "tccli"
    done = subprocess.run(
        [str(tool), "cls", action, "--secretId", SECRET_ID, "--secretKey", SECRET_KEY,
         "--region", "ap-guangzhou", "--endpoint", server.base_url, *args],
        capture_output=True, text=True, timeout=120,
        env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    return done.returncode, done.stdout + done.stderr


def answer(server: ServerProcess, home: Path, action: str, *args: str) -> Any:
    code, out = tccli(server, home, action, *args)
    assert code == 0, out
    return json.loads(out)


def test_tccli_shipper_create_describe_tasks_retry(server: ServerProcess, tmp_path: Path) -> None:
    logset = v3_json(server, "CreateLogset", {"LogsetName": f"tc-{uuid.uuid4().hex[:8]}"})
    topic = v3_json(server, "CreateTopic", {"LogsetId": logset["LogsetId"], "TopicName": "t"})
    created = answer(server, tmp_path, "CreateShipper", "--TopicId", topic["TopicId"],
                     "--Bucket", "tccli-1250000000", "--Prefix", "app/", "--ShipperName", "tc",
                     "--Interval", "1", "--Compress", '{"Format": "gzip"}',
                     "--Content", '{"Format": "json", "Json": {"EnableTag": true}}')
    shipper = created["ShipperId"]
    described = answer(server, tmp_path, "DescribeShippers", "--Filters",
                       json.dumps([{"Key": "shipperId", "Values": [shipper]}]))
    [info] = described["Shippers"]
    assert (info["ShipperName"], info["Compress"], info["Content"]["Json"]["EnableTag"]) == \
        ("tc", {"Format": "gzip"}, True)

    failed = cut_and_fail_one(server, shipper)
    now = int(time.time())
    tasks = answer(server, tmp_path, "DescribeShipperTasks", "--ShipperId", shipper,
                   "--StartTime", str((now - 3600) * 1000), "--EndTime", str((now + 60) * 1000))
    statuses = {t["TaskId"]: t["Status"] for t in tasks["Tasks"]}
    assert statuses[failed] == "failed" and len(statuses) >= 2

    assert "RequestId" in answer(server, tmp_path, "RetryShipperTask", "--ShipperId", shipper,
                                 "--TaskId", failed)
    # Queued again: no longer failed, so a second retry is refused with the documented code.
    code, out = tccli(server, tmp_path, "RetryShipperTask", "--ShipperId", shipper,
                      "--TaskId", failed)
    assert code != 0 and "FailedOperation.ShipperTaskNotToRetry" in out, out

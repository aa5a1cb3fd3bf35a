"""The control-plane CLI (`logsets`, `topics`, `shippers`, `tasks`, `retry`, `--version`,
`--tz`) against a running server, and its one-line failures for a missing or wrong endpoint
or key."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from typer.testing import CliRunner, Result

from cls_shipper.cli import app
from tests.helpers.ledger_tasks import cut_and_fail_one
from tests.helpers.server import SECRET_ID, SECRET_KEY, LegacyClient, ServerProcess, free_port
from tests.helpers.shipping import tasks_of

ENV = {"CLS_SHIPPER_SECRET_ID": SECRET_ID, "CLS_SHIPPER_SECRET_KEY": SECRET_KEY,
       "CLS_SHIPPER_TIMEZONE": ""}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Without workers, so that the tasks stay as the test leaves them."""
    proc = ServerProcess(tmp_path_factory.mktemp("cli"),
                         args=["--min-interval", "1", "--workers", "0"]).start()
    yield proc
    proc.stop()


def cli(server: ServerProcess, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, [*args, "--endpoint", server.base_url],
                              env={**ENV, **(env or {})})


def ok(server: ServerProcess, *args: str) -> str:
    result = cli(server, *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def as_json(server: ServerProcess, *args: str) -> Any:
    return orjson.loads(ok(server, *args, "--json"))


def one_line_error(result: Result, *words: str) -> None:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    for word in words:
        assert word in lines[0], lines[0]


def test_logsets_topics_and_shippers_round_trip(server: ServerProcess) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    logset = ok(server, "logsets", "create", "--name", name, "--tag", "team=web").strip()
    [listed] = as_json(server, "logsets", "list", "--name", name)
    assert listed["LogsetId"] == logset and listed["Tags"] == [{"Key": "team", "Value": "web"}]
    assert logset in ok(server, "logsets", "list", "--name", name)  # the table: full ids
    ok(server, "logsets", "modify", logset, "--name", name + "-b")
    assert as_json(server, "logsets", "show", logset)["LogsetName"] == name + "-b"

    topic = ok(server, "topics", "create", "--logset-id", logset, "--name", "app",
               "--partitions", "2", "--no-auto-split", "--max-split-partitions", "6",
               "--storage-type", "cold", "--period", "14", "--describes", "the app",
               "--web-tracking", "--anonymous-operation", "trackLog", "--source-from",
               "--billing-mode", "1", "--encryption", "1", "--kms-region", "ap-guangzhou",
               "--kms-key-id", "k1", "--tag", "a=b").strip()
    shown = as_json(server, "topics", "show", topic)
    assert {k: shown[k] for k in ("PartitionCount", "AutoSplit", "MaxSplitPartitions",
                                  "StorageType", "Period", "Describes", "IsWebTracking",
                                  "IsSourceFrom", "BillingMode", "KeyId")} == {
        "PartitionCount": 2, "AutoSplit": False, "MaxSplitPartitions": 6,
        "StorageType": "cold", "Period": 14, "Describes": "the app", "IsWebTracking": True,
        "IsSourceFrom": True, "BillingMode": 1, "KeyId": "k1"}
    assert shown["Extends"]["AnonymousAccess"]["Operations"] == ["trackLog"]
    ok(server, "topics", "modify", topic, "--close", "--storage-type", "hot", "--period", "3",
       "--params", '{"HotPeriod": 0}')
    [modified] = as_json(server, "topics", "list", "--logset-id", logset)
    assert (modified["Status"], modified["StorageType"], modified["Period"]) == (False, "hot", 3)

    shipper = ok(server, "shippers", "create", "--topic-id", topic, "--bucket",
                 "cli-1250000000", "--prefix", "app/", "--name", "to-s3", "--interval", "60",
                 "--compress", "gzip", "--format", "csv", "--params",
                 '{"Content": {"Format": "csv", "Csv": {"PrintKey": true, "Keys": ["a"], '
                 '"Delimiter": ",", "EscapeChar": "\\"", "NonExistingField": ""}}}').strip()
    [listed_shipper] = as_json(server, "shippers", "list", "--topic-id", topic)
    assert listed_shipper["ShipperId"] == shipper
    assert listed_shipper["Content"]["Csv"]["Keys"] == ["a"]
    ok(server, "shippers", "modify", shipper, "--disable", "--interval", "120")
    shown = as_json(server, "shippers", "show", shipper)
    assert (shown["Status"], shown["Interval"]) == (False, 120)
    assert "off" in ok(server, "shippers", "list", "--topic-id", topic)

    # The topic still has a shipper.
    one_line_error(cli(server, "topics", "delete", topic), "OperationDenied", "shippers")
    ok(server, "shippers", "delete", shipper)
    ok(server, "topics", "delete", topic)
    ok(server, "logsets", "delete", logset)
    one_line_error(cli(server, "logsets", "show", logset), logset, "does not exist")
    one_line_error(cli(server, "shippers", "show", shipper), "does not exist")


def test_tasks_retry_and_time_zones(server: ServerProcess, client: LegacyClient,
                                    topic: str) -> None:
    shipper = client.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": "cli-1250000001", "prefix": "t/",
        "shipper_name": "tasks", "interval": 1})["shipper_id"]
    failed = cut_and_fail_one(server, shipper)
    api = tasks_of(client, shipper)

    listed = as_json(server, "tasks", "--shipper-id", shipper)
    ids = [t["task_id"] for t in listed]
    assert ids[:len(api)] == [t["task_id"] for t in api]  # full ids, all rows
    assert listed[0]["range_start"] == api[0]["range_start"]  # the server's zone by default
    table = ok(server, "tasks", "--shipper-id", shipper)
    assert failed in table and "Asia/Shanghai" in table
    # What each task shipped and rejected, in the same request as the list.
    header = next(line for line in table.splitlines() if "task_id" in line)
    assert re.findall(r"\w+", header) == ["task_id", "range_start", "range_end", "status",
                                          "records", "rejected", "objects", "message"]
    row = next(line for line in table.splitlines() if failed in line)
    assert re.search(r"│ failed +│ 0 +│ 0 +│ 0 +│ bucket 'x' does not exist", row), row
    detail = client.call("GET", "/task", {"shipper_id": shipper, "task_id": failed})
    [shown] = [t for t in listed if t["task_id"] == failed]
    assert (shown["records"], shown["records_rejected"], shown["object_count"],
            shown["attempts"]) == (detail["records"], detail["records_rejected"],
                                   len(detail["objects"]), 1)
    assert [t["task_id"] for t in as_json(server, "tasks", "--shipper-id", shipper,
                                          "--status", "failed")] == [failed]

    in_utc = as_json(server, "tasks", "--shipper-id", shipper, "--tz", "UTC")
    start = datetime.strptime(api[0]["range_start"], "%Y-%m-%d %H:%M:%S").replace(
        tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(ZoneInfo("UTC"))
    assert in_utc[0]["range_start"] == start.strftime("%Y-%m-%d %H:%M:%S")

    wide = cli(server, "tasks", "--shipper-id", shipper, "--hours", "100", "--json")
    assert wide.exit_code == 0 and "last 72 hours" in wide.stderr
    # The scheduler keeps cutting windows meanwhile: every task listed before is there.
    assert {t["task_id"] for t in api} <= {t["task_id"] for t in orjson.loads(wide.stdout)}

    waiting = next(t["task_id"] for t in api if t["status"] != "failed")
    one_line_error(cli(server, "retry", "--shipper-id", shipper, "--task-id", waiting),
                   "TaskReadOnly")
    assert "queued again" in ok(server, "retry", "--shipper-id", shipper, "--task-id", failed)
    detail = client.call("GET", "/task", {"shipper_id": shipper, "task_id": failed})
    assert detail["status"] == "wait"
    assert "0 failed task(s)" in ok(server, "retry", "--shipper-id", shipper)

    one_line_error(cli(server, "tasks", "--shipper-id", shipper, "--tz", "Mars/Base"),
                   "Mars/Base")
    one_line_error(cli(server, "tasks", "--shipper-id", shipper, "--status", "done"), "done")


def test_version() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout.startswith("cls-shipper ")


@pytest.mark.parametrize("command", [["logsets", "list"], ["topics", "list"],
                                     ["shippers", "list"], ["tasks", "--shipper-id", "x"],
                                     ["retry", "--shipper-id", "x"]])
def test_endpoint_and_key_failures_are_one_line(server: ServerProcess, tmp_path: Path,
                                                command: list[str]) -> None:
    runner = CliRunner()

    def run(endpoint: str, env: dict[str, str]) -> Result:
        return runner.invoke(app, [*command, "--endpoint", endpoint], env=env)

    down = f"http://127.0.0.1:{free_port()}"
    one_line_error(run(down, ENV), "ConnectionFailed", down)
    one_line_error(run("127.0.0.1:9400", ENV), "http://")  # no scheme
    one_line_error(run("", ENV), "endpoint")
    wrong_key = {**ENV, "CLS_SHIPPER_SECRET_KEY": "not-the-key"}
    one_line_error(run(server.base_url, wrong_key), "SignatureFailure")
    unknown_id = {**ENV, "CLS_SHIPPER_SECRET_ID": "AKIDnobody"}
    one_line_error(run(server.base_url, unknown_id), "SecretIdNotFound")
    no_key = {"CLS_SHIPPER_SECRET_ID": "", "CLS_SHIPPER_SECRET_KEY": "",
              "CLS_SHIPPER_DATA_DIR": str(tmp_path)}
    one_line_error(run(server.base_url, no_key), "credentials.toml")

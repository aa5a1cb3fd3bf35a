"""`cls-shipper upload` and `cls-shipper logs tail` against the running server."""

from __future__ import annotations

from pathlib import Path

import orjson
from typer.testing import CliRunner

from cls_shipper.cli import app
from tests.e2e.test_ingest import read_all
from tests.helpers.server import SECRET_ID, SECRET_KEY, LegacyClient, ServerProcess

ENV = {"CLS_SHIPPER_SECRET_ID": SECRET_ID, "CLS_SHIPPER_SECRET_KEY": SECRET_KEY}


def test_upload_files_then_tail(client: LegacyClient, topic: str, server: ServerProcess,
                                tmp_path: Path) -> None:
    plain = tmp_path / "app.log"
    plain.write_text("first line\n\nsecond line\n" + "".join(f"n{i}\n" for i in range(25)))
    structured = tmp_path / "events.jsonl"
    structured.write_text('{"level": "info", "n": 1}\n{"level": "warn", "ok": true}\nnot json\n')
    runner = CliRunner()
    result = runner.invoke(app, ["upload", "--topic-id", topic, "--endpoint", server.base_url,
                                 "--batch-size", "10", str(plain), str(structured)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "30 logs accepted into topic" in result.output
    records, _ = read_all(client, topic)
    contents = [dict(r[5]) for r in records]
    assert contents[:2] == [{"__CONTENT__": "first line"}, {"__CONTENT__": "second line"}]
    assert contents[-3:] == [{"level": "info", "n": "1"}, {"level": "warn", "ok": "true"},
                             {"__CONTENT__": "not json"}]
    assert records[0][1] == str(plain.resolve()) and records[0][2]  # filename, hostname

    result = runner.invoke(app, ["logs", "tail", "--topic-id", topic, "--endpoint",
                                 server.base_url, "--from-start", "--no-follow"], env=ENV)
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [line["contents"] for line in lines] == contents
    assert lines[0]["filename"] == str(plain.resolve())

    # A refused upload says so and fails.
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_reserved": "x"}\n')
    result = runner.invoke(app, ["upload", "--topic-id", topic, "--endpoint", server.base_url,
                                 str(bad)], env=ENV)
    assert result.exit_code == 1 and "InvalidContent" in result.output

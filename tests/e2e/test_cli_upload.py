"""`cls-shipper upload` and `cls-shipper logs tail` against the running server."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import orjson
import pytest
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
    # One upload in flight: the batches land in file order, which the checks below read.
    result = runner.invoke(app, ["upload", "--topic-id", topic, "--endpoint", server.base_url,
                                 "--batch-size", "10", "--parallel", "1", str(plain),
                                 str(structured)], env=ENV)
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


def test_parallel_upload_of_files_and_stdin_stores_each_line_once(
        client: LegacyClient, topic: str, server: ServerProcess, tmp_path: Path) -> None:
    """Several uploads in flight, JSON objects and raw lines mixed, and standard input: every
    line is stored exactly once, with its fields."""
    events = tmp_path / "events.jsonl"
    with events.open("w") as fh:
        for i in range(5000):
            fh.write(f'{{"seq": "{i}", "status": {200 + i % 3}, "msg": "caf\\u00e9 \\"{i}\\""}}\n'
                     if i % 7 else f"plain {i}\r\n")
    stdin_lines = "".join(f"stdin {i}\n" for i in range(300))
    result = CliRunner().invoke(app, ["upload", "--topic-id", topic, "--endpoint",
                                      server.base_url, "--batch-size", "100", "--parallel", "4",
                                      str(events), "-"], env=ENV, input=stdin_lines)
    assert result.exit_code == 0, result.output
    assert "5300 logs accepted into topic" in result.output
    records, _ = read_all(client, topic)
    contents = [dict(r[5]) for r in records]
    seen = Counter(c.get("seq") or c["__CONTENT__"] for c in contents)
    expected = [str(i) if i % 7 else f"plain {i}" for i in range(5000)]
    expected += [f"stdin {i}" for i in range(300)]
    assert seen == Counter(expected)
    by_seq = {c["seq"]: c for c in contents if "seq" in c}
    assert by_seq["1"] == {"seq": "1", "status": "201", "msg": 'café "1"'}
    assert {r[1] for r in records} == {str(events.resolve()), "<stdin>"}


class _Flaky(BaseHTTPRequestHandler):
    """Answers the first uploads 503 and 429, then relays to the real server."""
    target = ""
    refusals: ClassVar[list[int]] = [503, 429, 502]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Flaky.refusals:
            status = _Flaky.refusals.pop(0)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {k: v for k, v in self.headers.items() if k.lower() != "content-length"}
        resp = httpx.post(self.target + self.path, content=body, headers=headers)
        self.send_response(resp.status_code)
        self.send_header("Content-Length", str(len(resp.content)))
        self.end_headers()
        self.wfile.write(resp.content)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def flaky(server: ServerProcess) -> Iterator[str]:
    _Flaky.target = server.base_url
    _Flaky.refusals = [503, 429, 502]
    relay = ThreadingHTTPServer(("127.0.0.1", 0), _Flaky)
    thread = threading.Thread(target=relay.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{relay.server_address[1]}"
    relay.shutdown()
    relay.server_close()


def test_busy_server_answers_are_retried(client: LegacyClient, topic: str,
                                         server: ServerProcess, flaky: str,
                                         tmp_path: Path) -> None:
    app_log = tmp_path / "app.log"
    app_log.write_text("".join(f"line {i}\n" for i in range(50)))
    result = CliRunner().invoke(app, ["upload", "--topic-id", topic, "--endpoint", flaky,
                                      "--batch-size", "10", str(app_log)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "50 logs accepted" in result.output and not _Flaky.refusals
    records, _ = read_all(client, topic)
    assert sorted(dict(r[5])["__CONTENT__"] for r in records) == sorted(
        f"line {i}" for i in range(50))

"""HTTPS: a throwaway CA, a server started with its certificate, and every client an
operator points at it (the legacy SDK, the API 3.0 SDK, tccli, the cls-shipper CLI), each
trusting the CA the way docs/operations.md#tls says; client certificates; and the refusals
at start."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from typer.testing import CliRunner

from cls_shipper.cli import app
from tests.helpers.sdk_env import VENV, run_sdk_script, sdk_python
from tests.helpers.server import SECRET_ID, SECRET_KEY, LegacyClient, ServerProcess
from tests.helpers.tls import TlsFiles, make_tls_files

ENV = {"CLS_SHIPPER_SECRET_ID": SECRET_ID, "CLS_SHIPPER_SECRET_KEY": SECRET_KEY}

LEGACY_PUT = """
from tencentcloud.log.logclient import LogClient
from tencentcloud.log.cls_pb2 import LogGroupList
from tencentcloud.log.logexception import LogException
client = LogClient(ARGS["endpoint"], ARGS["secret_id"], ARGS["secret_key"])
lgl = LogGroupList()
log = lgl.logGroupList.add().logs.add()
log.time = 1
content = log.contents.add()
content.key, content.value = "msg", "over tls"
try:
    client.put_log_raw(ARGS["topic"], lgl)
    print(json.dumps({"ok": True}))
except Exception as e:
    print(json.dumps({"error": repr(e)}))
"""

V3_CALL = """
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.cls.v20201016 import cls_client, models
cred = credential.Credential(ARGS["secret_id"], ARGS["secret_key"])
http = HttpProfile(endpoint=ARGS["endpoint"], protocol="https",
                   certification=ARGS["ca"])
client = cls_client.ClsClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))
req = models.DescribeShippersRequest()
req.from_json_string(json.dumps({"Filters": [{"Key": "topicId", "Values": [ARGS["topic"]]}]}))
try:
    print(client.DescribeShippers(req).to_json_string())
except Exception as e:
    print(json.dumps({"error": repr(e)}))
"""


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_server(tmp_path_factory: pytest.TempPathFactory,
                 tls: TlsFiles) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path_factory.mktemp("https"), tls=tls.context(),
                         args=["--min-interval", "1", "--ssl-certfile", str(tls.cert),
                               "--ssl-keyfile", str(tls.key)])
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def topic_and_shipper(https_server: ServerProcess, tls: TlsFiles) -> tuple[str, str]:
    client = LegacyClient(https_server.base_url)
    client.http = httpx.Client(base_url=https_server.base_url, verify=tls.context())
    logset = client.call("POST", "/logset", json={"logset_name": f"t-{uuid.uuid4().hex[:8]}",
                                                  "period": 7})["logset_id"]
    topic = client.call("POST", "/topic", json={"logset_id": logset,
                                                "topic_name": "app"})["topic_id"]
    shipper = client.call("POST", "/shipper", json={
        "topic_id": topic, "bucket": "tls-bucket", "prefix": "p/", "shipper_name": "tls",
        "interval": 1, "partition": "%Y/", "compress": {"format": "none"},
        "content": {"format": "json"}})["shipper_id"]
    return str(topic), str(shipper)


def test_plain_http_clients_and_unknown_cas_are_refused(https_server: ServerProcess,
                                                        tls: TlsFiles) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(https_server.base_url + "/logsets")  # the public CAs only
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{https_server.port}/logsets")
    assert httpx.get(https_server.base_url + "/logsets",
                     verify=tls.context()).status_code == 400  # unsigned, but served


def test_legacy_sdk_over_https(https_server: ServerProcess, tls: TlsFiles,
                               topic_and_shipper: tuple[str, str]) -> None:
    topic, _ = topic_and_shipper
    args = {"endpoint": https_server.base_url, "secret_id": SECRET_ID,
            "secret_key": SECRET_KEY, "topic": topic}
    # requests (under LogClient) trusts REQUESTS_CA_BUNDLE; without it, the CA is unknown.
    assert run_sdk_script(LEGACY_PUT, args,
                          env={"REQUESTS_CA_BUNDLE": str(tls.ca)}) == {"ok": True}
    refused = run_sdk_script(LEGACY_PUT, args)
    assert "CERTIFICATE_VERIFY_FAILED" in refused["error"]


def test_api3_sdk_over_https(https_server: ServerProcess, tls: TlsFiles,
                             topic_and_shipper: tuple[str, str]) -> None:
    topic, shipper = topic_and_shipper
    args = {"endpoint": f"127.0.0.1:{https_server.port}", "secret_id": SECRET_ID,
            "secret_key": SECRET_KEY, "topic": topic, "ca": str(tls.ca)}
    got = run_sdk_script(V3_CALL, args)
    assert [s["ShipperId"] for s in got["Shippers"]] == [shipper]
    # The SDK verifies against its own bundle (certifi) unless HttpProfile.certification
    # names the CA: REQUESTS_CA_BUNDLE does not reach it.
    refused = run_sdk_script(V3_CALL, {**args, "ca": None},
                             env={"REQUESTS_CA_BUNDLE": str(tls.ca)})
    assert "CERTIFICATE_VERIFY_FAILED" in refused["error"]


def _certifi_with(ca: Path, directory: Path) -> Path:
    """A copy of the SDK environment's certifi package whose bundle also holds `ca`: what
    appending the CA to that environment's bundle does, without changing the shared one."""
    sdk_python()
    [site] = list(VENV.glob("lib/python3*/site-packages"))
    overlay = directory / "certifi-overlay"
    shutil.rmtree(overlay, ignore_errors=True)
    shutil.copytree(site / "certifi", overlay / "certifi")
    with (overlay / "certifi" / "cacert.pem").open("ab") as bundle:
        bundle.write(b"\n" + ca.read_bytes())
    return overlay


def test_tccli_over_https(https_server: ServerProcess, tls: TlsFiles, tmp_path: Path,
                          topic_and_shipper: tuple[str, str]) -> None:
    topic, shipper = topic_and_shipper
    cmd = [str(VENV / "bin" / "tccli"), "cls", "DescribeShippers", "--region", "ap-guangzhou",
           "--endpoint", https_server.base_url,
           "--Filters", orjson.dumps([{"Key": "topicId", "Values": [topic]}]).decode()]
    env = {**os.environ, "TENCENTCLOUD_SECRET_ID": SECRET_ID,
           "TENCENTCLOUD_SECRET_KEY": SECRET_KEY, "HOME": str(tmp_path)}
    env.pop("PYTHONPATH", None)
    refused = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert refused.returncode != 0
    assert "CERTIFICATE_VERIFY_FAILED" in refused.stdout + refused.stderr
    env["PYTHONPATH"] = str(_certifi_with(tls.ca, tmp_path))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [s["ShipperId"] for s in orjson.loads(done.stdout)["Shippers"]] == [shipper]


def test_cli_over_https(https_server: ServerProcess, tls: TlsFiles, tmp_path: Path,
                        topic_and_shipper: tuple[str, str]) -> None:
    topic, shipper = topic_and_shipper
    lines = tmp_path / "app.log"
    lines.write_text("one\ntwo\n")
    runner = CliRunner()
    upload = ["upload", "--topic-id", topic, "--endpoint", https_server.base_url, str(lines)]
    result = runner.invoke(app, [*upload, "--ca-file", str(tls.ca)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "2 logs accepted" in result.output
    # SSL_CERT_FILE is the CA when --ca-file is not given.
    result = runner.invoke(app, ["tasks", "--shipper-id", shipper, "--endpoint",
                                 https_server.base_url],
                           env={**ENV, "SSL_CERT_FILE": str(tls.ca)})
    assert result.exit_code == 0, result.output
    assert "task_id" in result.output
    # Without the CA: one line saying why, no trace.
    result = runner.invoke(app, upload, env={**ENV, "SSL_CERT_FILE": ""})
    assert result.exit_code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in result.output
    assert "Traceback" not in result.output


def test_client_certificates(tmp_path: Path, tls: TlsFiles) -> None:
    server = ServerProcess(tmp_path, tls=tls.context(client_cert=True),
                           args=["--ssl-certfile", str(tls.cert), "--ssl-keyfile",
                                 str(tls.key), "--ssl-ca-certs", str(tls.ca)])
    server.start()
    try:
        with pytest.raises(httpx.TransportError):
            httpx.get(server.base_url + "/logsets", verify=tls.context())
        served = httpx.get(server.base_url + "/logsets", verify=tls.context(client_cert=True))
        assert served.status_code == 400 and served.headers["x-cls-requestid"]
        runner = CliRunner()
        command = ["retry", "--shipper-id", "nope", "--endpoint", server.base_url,
                   "--ca-file", str(tls.ca)]
        refused = runner.invoke(app, command, env=ENV)
        assert refused.exit_code == 1 and "cannot talk to" in refused.output
        answered = runner.invoke(app, [*command, "--client-cert", str(tls.client)], env=ENV)
        assert answered.exit_code == 1 and "ShipperNotExist" in answered.output
    finally:
        server.stop()


def _refused_start(tmp_path: Path, *tls_args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "cls_shipper", "serve", "--data-dir", str(tmp_path / "d"),
         "--port", "0", *tls_args], capture_output=True, text=True, timeout=60,
        env={**os.environ, **ENV})
    assert done.returncode != 0
    output = (done.stdout + done.stderr).strip()
    assert "Traceback" not in output
    lines = output.splitlines()
    assert len(lines) == 1, output
    return lines[0]


def test_start_refused_on_a_missing_file_or_a_key_that_does_not_match(
        tmp_path: Path, tls: TlsFiles) -> None:
    missing = tmp_path / "nowhere.pem"
    line = _refused_start(tmp_path, "--ssl-certfile", str(missing), "--ssl-keyfile",
                          str(tls.key))
    assert "cannot start" in line and str(missing) in line and "No such file" in line
    line = _refused_start(tmp_path, "--ssl-certfile", str(tls.cert), "--ssl-keyfile",
                          str(tls.other_key))
    assert "does not match" in line and str(tls.other_key) in line
    line = _refused_start(tmp_path, "--ssl-certfile", str(tls.cert), "--ssl-keyfile",
                          str(tls.key), "--ssl-ca-certs", str(missing),
                          "--log-format", "json")
    assert orjson.loads(line)["level"] == "critical" and str(missing) in line

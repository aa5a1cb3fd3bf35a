"""Test support: run the real server as a subprocess and talk to it with signed requests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from cls_shipper.auth import qsign

SECRET_ID = "AKIDtestsuite0000000000000000000"
SECRET_KEY = "testsuitesecretkey00000000000000"
REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    data_dir: Path
    port: int = field(default_factory=free_port)
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        env = {
            **os.environ,
            "CLS_SHIPPER_SECRET_ID": SECRET_ID,
            "CLS_SHIPPER_SECRET_KEY": SECRET_KEY,
            "CLS_SHIPPER_QUOTA_LOGSETS": "1000",
            "CLS_SHIPPER_QUOTA_TOPICS": "1000",
            "CLS_SHIPPER_QUOTA_SHIPPERS": "1000",
            **self.env,
        }
        self.log_path = self.data_dir / f"server-{self.port}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        cmd = [sys.executable, "-m", "cls_shipper", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--data-dir", str(self.data_dir), *self.args]
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            try:
                httpx.get(self.base_url + "/logsets", timeout=1.0)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path else ""

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, as in a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


class ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(f"{status} {body}")
        self.status = status
        self.code = body.get("errorcode")
        self.body = body


class LegacyClient:
    """Signs like the official Python SDK (all params, content-type and host headers)."""

    def __init__(self, base_url: str, secret_id: str = SECRET_ID,
                 secret_key: str = SECRET_KEY) -> None:
        self.base_url = base_url
        self.host = base_url.split("://", 1)[1]
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.http = httpx.Client(base_url=base_url, timeout=30.0)

    def raw(self, method: str, path: str, params: Mapping[str, str] | None = None,
            body: bytes | None = None, headers: Mapping[str, str] | None = None,
            sign: bool = True, sign_time: int | None = None) -> httpx.Response:
        params = dict(params or {})
        all_headers = {"Host": self.host, **(headers or {})}
        if body is not None and "Content-Type" not in all_headers:
            all_headers["Content-Type"] = "application/json"
        if sign:
            start = int(time.time()) - 60 if sign_time is None else sign_time
            all_headers["Authorization"] = qsign.sign(
                self.secret_id, self.secret_key, method, path, params, all_headers, start)
        url = path + ("?" + urlencode(params) if params else "")
        return self.http.request(method, url, content=body, headers=all_headers)

    def call(self, method: str, path: str, params: Mapping[str, str] | None = None,
             json: Any = None) -> Any:
        body = orjson.dumps(json) if json is not None else None
        resp = self.raw(method, path, params, body)
        if resp.status_code != 200:
            raise ApiError(resp.status_code, resp.json())
        return resp.json() if resp.content else None

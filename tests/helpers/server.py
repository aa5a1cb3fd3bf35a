"""Test support: run the real server as a subprocess and talk to it with signed requests."""

from __future__ import annotations

import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import SQLAlchemyError

from cls_shipper.auth import qsign

SECRET_ID = "AKIDtestsuite0000000000000000000"
SECRET_KEY = "testsuitesecretkey00000000000000"
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Backend:
    """The database servers started by tests use: `sqlite` (a file in the data dir) or
    `postgresql` (a fresh database per server on `postgres_base`). conftest's `backend`
    fixture sets it; a ServerProcess reads it when it starts."""

    name: str = "sqlite"
    postgres_base: str | None = None
    created: list[str] = field(default_factory=list)

    def new_database_url(self) -> str | None:
        if self.name == "sqlite":
            return None
        assert self.postgres_base is not None
        return create_postgres_database(self.postgres_base, self.created)

    def drop_all(self) -> None:
        if self.postgres_base and self.created:
            drop_postgres_databases(self.postgres_base, self.created)
            self.created.clear()


BACKEND = Backend()
# Servers started so far (dataclasses are unhashable: references by identity, in a list).
_started: list[weakref.ref[ServerProcess]] = []


def _admin(url: str) -> Any:
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                         isolation_level="AUTOCOMMIT")


def create_postgres_database(base: str, created: list[str] | None = None) -> str:
    """A fresh, empty database on the server of `base`; its URL."""
    name = f"cls_shipper_test_{uuid.uuid4().hex[:10]}"
    admin = _admin(base)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    if created is not None:
        created.append(name)
    return base.rsplit("/", 1)[0] + "/" + name


def drop_postgres_databases(base: str, names: list[str]) -> None:
    admin = _admin(base)
    try:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def switch_backend(name: str) -> None:
    """Make `name` the backend of servers from now on, and restart the running servers
    that use the other one (same port and data dir, a fresh database), so module-scoped
    server fixtures serve the tests of either backend."""
    if BACKEND.name == name:
        return
    BACKEND.name = name
    for ref in list(_started):
        server = ref()
        if (server is not None and server.running and server.database_url is None
                and server.backend != name):
            server.stop()
            server.start()


def node_registered(database_url: str, pid: int, workers: int = 0) -> bool:
    """Readiness of a node without HTTP: its row, and one per worker process, are in the
    node registry."""
    from cls_shipper.store.schema import nodes  # the registry the server heartbeats into

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            node = conn.execute(select(nodes.c.node_id).where(nodes.c.pid == pid)).scalar()
            if node is None:
                return False
            children = conn.execute(select(nodes.c.node_id)
                                    .where(nodes.c.parent_id == node)).all()
            return len(children) >= workers
    except SQLAlchemyError:
        return False  # not migrated yet
    finally:
        engine.dispose()


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
    # An explicit database; None: the current BACKEND's (a fresh PostgreSQL database per
    # server, kept across restarts of this server while the backend stays the same).
    database_url: str | None = None
    # Readiness of a node without HTTP (worker, scheduler roles); None: HTTP answers.
    ready: Callable[[ServerProcess], bool] | None = None
    backend: str = ""
    # A server started with TLS: how its readiness check verifies it (and authenticates,
    # when client certificates are required); base_url is then https.
    tls: ssl.SSLContext | None = None
    _auto_url: str | None = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        """The database this server uses."""
        url = self.database_url or self._auto_url
        return url or f"sqlite:///{self.data_dir / 'cls-shipper.db'}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _http_ready(self) -> bool:
        try:
            httpx.get(self.base_url + "/logsets", timeout=1.0, verify=self.tls or True)
            return True
        except httpx.TransportError:
            return False

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
        if self.database_url is None and self.backend != BACKEND.name:
            self.backend = BACKEND.name
            self._auto_url = BACKEND.new_database_url()
        db_args = ["--database-url", self.db_url] if not self.db_url.startswith("sqlite") else []
        cmd = [sys.executable, "-m", "cls_shipper", "serve", "--host", "127.0.0.1",
               "--port", str(self.port), "--data-dir", str(self.data_dir), *db_args, *self.args]
        self.proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        if not any(ref() is self for ref in _started):
            _started.append(weakref.ref(self))
        ready = self.ready or ServerProcess._http_ready
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()}")
            if ready(self):
                return self
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

"""A real S3 endpoint for tests: `moto_server` as a subprocess behind a small TCP relay.

The relay owns the public port. `stop()` closes it (connection refused, in-flight requests
cut) and `start()` reopens it on the same port, while moto keeps its buckets and objects,
as a real store does across an outage. `hang()` accepts connections and never answers
(timeouts). `fail_with(503)` answers every request with an S3 error (throttling / 5xx),
which moto itself cannot be made to do."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import boto3
import pytest

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
MOTO_SERVER = Path(sys.executable).parent / "moto_server"

Mode = Literal["up", "down", "hang", "error"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Relay:
    """Forwards 127.0.0.1:<port> to the backend; the fault switch lives here."""

    def __init__(self, port: int, backend_port: int) -> None:
        self.port, self.backend_port = port, backend_port
        self.mode: Mode = "down"
        self.error_status = 503
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()

    def up(self, mode: Mode = "up") -> None:
        with self._lock:
            self.mode = mode
            if self._listener is not None:
                return
            listener = socket.socket()
            # Rebinding the same port right after stop(): TIME_WAIT must not block it.
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(64)
            self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def down(self) -> None:
        with self._lock:
            self.mode = "down"
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, set()
        if listener is not None:
            # shutdown() wakes the thread blocked in accept(); close() alone leaves the
            # kernel socket listening until that accept returns.
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)
            listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def set_mode(self, mode: Mode) -> None:
        """Switch an open relay; connections already relayed keep going, new ones obey."""
        if mode == "down":
            self.down()
            return
        previous = self.mode
        self.up(mode)
        if previous in ("hang", "error") or (mode != "up" and previous != mode):
            # Cut pooled keep-alive and hanging connections so the next request of every
            # client meets the new mode.
            with self._lock:
                conns, self._conns = self._conns, set()
            for conn in conns:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._conns.update(socks)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # listener closed by down()
            mode = self.mode
            self._track(client)
            if mode == "hang":
                threading.Thread(target=self._drain, args=(client,), daemon=True).start()
            elif mode == "error":
                threading.Thread(target=self._error, args=(client,), daemon=True).start()
            else:
                try:
                    backend = socket.create_connection(("127.0.0.1", self.backend_port))
                except OSError:
                    client.close()
                    continue
                self._track(backend)
                for src, dst in ((client, backend), (backend, client)):
                    threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(1 << 16):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _drain(conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while conn.recv(1 << 16):
                pass

    def _error(self, conn: socket.socket) -> None:
        code = "SlowDown" if self.error_status == 503 else "InternalError"
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>Injected by the test relay</Message></Error>").encode()
        head = (f"HTTP/1.1 {self.error_status} Injected\r\nContent-Type: application/xml\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        with contextlib.suppress(OSError):
            # Read the request (and any upload body) until the client pauses, so it sees
            # the error response rather than a reset while still sending.
            conn.settimeout(0.3)
            with contextlib.suppress(TimeoutError):
                while conn.recv(1 << 16):
                    pass
            conn.settimeout(5)
            conn.sendall(head + body)
            conn.shutdown(socket.SHUT_RDWR)
        conn.close()


class S3TestServer:
    """moto_server on a private port, published through the relay on `port`."""

    def __init__(self, workdir: Path, *, auth: bool = False) -> None:
        self.workdir = workdir
        self.auth = auth
        self.port = _free_port()
        self.backend_port = _free_port()
        self.access_key, self.secret_key = ACCESS_KEY, SECRET_KEY
        self.proc: subprocess.Popen[bytes] | None = None
        self._relay = _Relay(self.port, self.backend_port)
        self.log_path = workdir / f"moto-{self.backend_port}.log"

    # -- addresses ------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sink_url(self) -> str:
        """For open_sink / --object-store: no inner retries, short timeouts, so fault tests
        see the failure quickly and the task ledger does the retrying."""
        return (f"s3+http://127.0.0.1:{self.port}/?region={REGION}&addressing=path"
                "&retries=0&connect_timeout=2&timeout=20")

    @property
    def env(self) -> dict[str, str]:
        """AWS_* variables for a cls-shipper subprocess (or open_sink's `environ`)."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
        }

    # -- lifecycle ------------------------------------------------------------------------

    def launch(self, timeout: float = 30.0) -> S3TestServer:
        if not MOTO_SERVER.exists():
            raise RuntimeError(f"{MOTO_SERVER} not found; install moto[server]")
        self.workdir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.proc = subprocess.Popen(
            [str(MOTO_SERVER), "-H", "127.0.0.1", "-p", str(self.backend_port)],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto_server exited early:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.backend_port}/",
                                            timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"moto_server did not answer in {timeout}s:\n"
                                       f"{self.log()}") from None
                time.sleep(0.1)
        self._relay.up()
        if self.auth:
            self._enable_auth()
        return self

    def _enable_auth(self) -> None:
        """Create a user allowed everything, then make moto check every signature and
        policy from here on (moto accepts anything until told otherwise)."""
        iam = self.client("iam")
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
        request = urllib.request.Request(f"http://127.0.0.1:{self.backend_port}"
                                         "/moto-api/reset-auth", data=b"0", method="POST",
                                         # form encoding would hide the body from moto
                                         headers={"Content-Type": "text/plain"})
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()

    def create_user(self, name: str, policy: dict[str, Any] | None = None) -> tuple[str, str]:
        """A user (with an inline policy, if given) and its key pair; auth servers only."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        if policy is not None:
            iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def stop(self) -> None:
        """Take the endpoint down: connection refused, open connections cut; data kept."""
        self._relay.down()

    def start(self) -> None:
        """Bring the endpoint back on the same port."""
        self._relay.set_mode("up")

    def hang(self) -> None:
        """Accept connections but never answer: clients time out."""
        self._relay.set_mode("hang")

    def fail_with(self, status: int = 503) -> None:
        """Answer every request with `status` (503 SlowDown or 500 InternalError)."""
        self._relay.error_status = status
        self._relay.set_mode("error")

    @contextlib.contextmanager
    def down(self) -> Iterator[None]:
        self.stop()
        try:
            yield
        finally:
            self.start()

    def close(self) -> None:
        self._relay.down()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- helpers, straight to moto (not through the relay, so they work while it is down) --

    def client(self, service: str = "s3", **overrides: Any) -> Any:
        args: dict[str, Any] = {
            "endpoint_url": f"http://127.0.0.1:{self.backend_port}",
            "region_name": REGION,
            "aws_access_key_id": self.access_key,
            "aws_secret_access_key": self.secret_key,
        }
        args.update(overrides)
        return boto3.client(service, **args)

    def create_bucket(self, name: str) -> None:
        s3 = self.client()
        with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
            s3.create_bucket(Bucket=name)

    def list_objects(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                        Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]

    def get_object(self, bucket: str, key: str) -> bytes:
        body: bytes = self.client().get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def head_object(self, bucket: str, key: str) -> dict[str, Any]:
        head: dict[str, Any] = self.client().head_object(Bucket=bucket, Key=key)
        return head

    def list_uploads(self, bucket: str) -> list[str]:
        """Keys with a multipart upload still pending (started, neither completed nor
        aborted)."""
        uploads = self.client().list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        return [upload["Key"] for upload in uploads]


def _start(workdir: Path, *, auth: bool) -> S3TestServer:
    last: Exception | None = None
    for _ in range(3):  # a free port can be taken between probing and binding
        server = S3TestServer(workdir, auth=auth)
        try:
            return server.launch()
        except (RuntimeError, OSError) as exc:
            server.close()
            last = exc
    message = f"cannot start moto_server: {last}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3TestServer]:
    """A moto S3 endpoint for the session (no signature checks). Tests using stop(),
    hang() or fail_with() must restore it with start() (e.g. `with s3_server.down():`)."""
    server = _start(tmp_path_factory.mktemp("s3"), auth=False)
    yield server
    server.close()


@pytest.fixture(scope="session")
def s3_auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3TestServer]:
    """A second moto endpoint that checks signatures, access keys and IAM policies."""
    server = _start(tmp_path_factory.mktemp("s3auth"), auth=True)
    yield server
    server.close()

"""A small signed client for the legacy API, used by the CLI and the demo. It signs exactly
like the official Python SDK, so what works here works there."""

from __future__ import annotations

import http.client
import threading
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import orjson

from cls_shipper.auth import qsign
from cls_shipper.errors import ClientError

if TYPE_CHECKING:  # imported when a client is made: `upload` never needs it (~0.15 CPU-s)
    import httpx


def find_credentials(secret_id: str | None, secret_key: str | None,
                     data_dir: Path | None) -> tuple[str, str]:
    """Credentials from arguments/environment, else `<data-dir>/credentials.toml`."""
    if secret_id and secret_key:
        return secret_id, secret_key
    path = (data_dir or Path("./data")) / "credentials.toml"
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
        return str(data["secret_id"]), str(data["secret_key"])
    except (OSError, KeyError, tomllib.TOMLDecodeError) as exc:
        raise ClientError(0, "MissingCredentials",
                          f"set CLS_SHIPPER_SECRET_ID/CLS_SHIPPER_SECRET_KEY or give --data-dir "
                          f"with a credentials.toml ({exc})") from None


def _error(status: int, body: bytes) -> ClientError:
    try:
        err = orjson.loads(body)
        return ClientError(status, err["errorcode"], err["errormessage"])
    except (ValueError, KeyError, TypeError):
        return ClientError(status, "HTTPError", body[:200].decode(errors="replace"))


class ClsClient:
    def __init__(self, endpoint: str, secret_id: str, secret_key: str,
                 timeout: float = 30.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self.secret_id, self.secret_key = secret_id, secret_key
        import httpx

        self.http = httpx.Client(base_url=self.endpoint, timeout=timeout)

    def request(self, method: str, path: str, params: Mapping[str, str] | None = None,
                body: bytes | None = None, headers: Mapping[str, str] | None = None
                ) -> httpx.Response:
        params = dict(params or {})
        all_headers = {"Host": self.host, **(headers or {})}
        all_headers["Authorization"] = qsign.sign(self.secret_id, self.secret_key, method, path,
                                                  params, all_headers, int(time.time()) - 60)
        url = path + ("?" + urlencode(params) if params else "")
        resp = self.http.request(method, url, content=body, headers=all_headers)
        if resp.status_code != 200:
            raise _error(resp.status_code, resp.content)
        return resp

    def call(self, method: str, path: str, params: Mapping[str, str] | None = None,
             json: Any = None) -> Any:
        body = orjson.dumps(json) if json is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        resp = self.request(method, path, params, body, headers)
        return orjson.loads(resp.content) if resp.content else None

    def close(self) -> None:
        self.http.close()


class Uploader:
    """Signed POSTs for the uploader, over keep-alive HTTP/1.1 connections of the standard
    library, one per thread: a request costs a fraction of the CPU it costs through httpx,
    and the uploader sends one per batch, hundreds per file. Safe to share between threads.
    Raises ClientError: the server's refusal, or status 0 when it cannot be reached."""

    def __init__(self, endpoint: str, secret_id: str, secret_key: str,
                 timeout: float = 30.0) -> None:
        parts = urlsplit(endpoint.rstrip("/"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ClientError(0, "BadEndpoint", f"not an http(s) URL: {endpoint!r}")
        self.https = parts.scheme == "https"
        self.host, self.port = parts.hostname, parts.port
        self.netloc, self.base = parts.netloc, parts.path
        self.secret_id, self.secret_key = secret_id, secret_key
        self.timeout = timeout
        self._local = threading.local()
        self._open: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            kind = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            conn = self._local.conn = kind(self.host, self.port, timeout=self.timeout)
            with self._lock:
                self._open.append(conn)
        return conn

    def post(self, path: str, params: Mapping[str, str], body: bytes,
             headers: Mapping[str, str]) -> None:
        all_headers = {"Host": self.netloc, **headers}
        all_headers["Authorization"] = qsign.sign(self.secret_id, self.secret_key, "POST",
                                                  path, params, all_headers,
                                                  int(time.time()) - 60)
        conn = self._connection()
        try:
            conn.request("POST", self.base + path + "?" + urlencode(params), body, all_headers)
            resp = conn.getresponse()
            answer = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # reconnects on the next request
            raise ClientError(0, "Unreachable", str(exc) or type(exc).__name__) from None
        if resp.status != 200:
            raise _error(resp.status, answer)

    def close(self) -> None:
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()

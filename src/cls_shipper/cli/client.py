"""A small signed client for both APIs, used by the CLI and the demo: q-sign for the legacy
REST API, TC3 for API 3.0 actions, exactly like the official SDKs, so what works here works
there. Every failure, the network's included, is a ClientError the commands print in a line."""

from __future__ import annotations

import http.client
import os
import ssl
import threading
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import orjson

from cls_shipper.auth import qsign, tc3
from cls_shipper.errors import ClientError

if TYPE_CHECKING:  # imported when a client is made: `upload` never needs it (~0.15 CPU-s)
    import httpx

V3_VERSION = "2020-10-16"


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


def tls_context(ca_file: Path | None = None,
                client_cert: Path | None = None) -> ssl.SSLContext | bool:
    """How an https endpoint is verified: against `ca_file` when given, else SSL_CERT_FILE
    (or SSL_CERT_DIR) when set, else the public CAs; `client_cert` (PEM: the certificate
    and its key) is presented to a server that asks for one. Raises ClientError for a file
    that cannot be loaded."""
    if ca_file is None and client_cert is None:
        return True  # httpx honours SSL_CERT_FILE and SSL_CERT_DIR itself
    try:
        if ca_file is not None:
            context = ssl.create_default_context(cafile=str(ca_file))
        elif os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
            context = ssl.create_default_context(cafile=os.environ.get("SSL_CERT_FILE"),
                                                 capath=os.environ.get("SSL_CERT_DIR"))
        else:
            import certifi  # httpx's own default bundle

            context = ssl.create_default_context(cafile=certifi.where())
        if client_cert is not None:
            context.load_cert_chain(str(client_cert))
    except (OSError, ssl.SSLError) as exc:
        raise ClientError(0, "TLSConfig", f"cannot load {client_cert or ca_file}: "
                          f"{getattr(exc, 'strerror', None) or exc}") from None
    return context


def check_endpoint(endpoint: str) -> str:
    """`endpoint` without a trailing slash, or a ClientError saying what is wrong with it."""
    parts = urlsplit(endpoint.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
        raise ClientError(0, "InvalidEndpoint",
                          f"the endpoint must look like http://127.0.0.1:9400, not {endpoint!r} "
                          "(--endpoint or CLS_SHIPPER_ENDPOINT)")
    return f"{parts.scheme}://{parts.netloc}"


class ClsClient:
    def __init__(self, endpoint: str, secret_id: str, secret_key: str,
                 timeout: float = 30.0, verify: ssl.SSLContext | bool = True) -> None:
        self.endpoint = check_endpoint(endpoint)
        self.host = urlsplit(self.endpoint).netloc
        self.secret_id, self.secret_key = secret_id, secret_key
        import httpx

        self.http = httpx.Client(base_url=self.endpoint, timeout=timeout, verify=verify)

    def _send(self, method: str, url: str, body: bytes | None,
              headers: Mapping[str, str]) -> httpx.Response:
        import httpx

        try:
            return self.http.request(method, url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            # Unreachable, or TLS refused (an unknown CA, a client certificate required):
            # the reason in one line, never a trace.
            raise ClientError(0, "ConnectionFailed",
                              f"cannot talk to {self.endpoint}: {exc or type(exc).__name__} "
                              "(is the server running? --endpoint or CLS_SHIPPER_ENDPOINT; "
                              "for https: --ca-file)") from None

    def request(self, method: str, path: str, params: Mapping[str, str] | None = None,
                body: bytes | None = None, headers: Mapping[str, str] | None = None
                ) -> httpx.Response:
        params = dict(params or {})
        all_headers = {"Host": self.host, **(headers or {})}
        all_headers["Authorization"] = qsign.sign(self.secret_id, self.secret_key, method, path,
                                                  params, all_headers, int(time.time()) - 60)
        url = path + ("?" + urlencode(params) if params else "")
        resp = self._send(method, url, body, all_headers)
        if resp.status_code != 200:
            try:
                err = resp.json()
                raise ClientError(resp.status_code, err["errorcode"], err["errormessage"])
            except (ValueError, KeyError, TypeError):
                raise ClientError(resp.status_code, "HTTPError",
                                  f"{self.endpoint} answered {resp.status_code}: "
                                  f"{resp.text[:200]!r} (is it a cls-shipper server?)") from None
        return resp

    def call(self, method: str, path: str, params: Mapping[str, str] | None = None,
             json: Any = None) -> Any:
        body = orjson.dumps(json) if json is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        resp = self.request(method, path, params, body, headers)
        return orjson.loads(resp.content) if resp.content else None

    def action(self, name: str, params: Mapping[str, Any]) -> dict[str, Any]:
        """One API 3.0 action; its Response without RequestId, or ClientError(200, Code)."""
        body = orjson.dumps(dict(params))
        stamp = int(time.time())
        content_type = "application/json"
        headers = {
            "Host": self.host, "Content-Type": content_type, "X-TC-Action": name,
            "X-TC-Version": V3_VERSION, "X-TC-Timestamp": str(stamp),
            "Authorization": tc3.sign(self.secret_id, self.secret_key, "POST", self.host,
                                      content_type, body, stamp),
        }
        resp = self._send("POST", "/", body, headers)
        try:
            answer = orjson.loads(resp.content)["Response"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            raise ClientError(resp.status_code, "HTTPError",
                              f"{self.endpoint} answered {resp.status_code}: "
                              f"{resp.text[:200]!r} (is it a cls-shipper server?)") from None
        if "Error" in answer:
            raise ClientError(resp.status_code, answer["Error"]["Code"],
                              answer["Error"]["Message"])
        answer.pop("RequestId", None)
        return dict(answer)

    def close(self) -> None:
        self.http.close()


class Uploader:
    """Signed POSTs for the uploader, over keep-alive HTTP/1.1 connections of the standard
    library, one per thread: a request costs a fraction of the CPU it costs through httpx,
    and the uploader sends one per batch, hundreds per file. Safe to share between threads.
    Raises ClientError: the server's refusal, or status 0 when it cannot be reached."""

    def __init__(self, endpoint: str, secret_id: str, secret_key: str,
                 verify: ssl.SSLContext | bool = True, timeout: float = 30.0) -> None:
        self.endpoint = check_endpoint(endpoint)
        parts = urlsplit(self.endpoint)
        self.netloc, self.host, self.port = parts.netloc, parts.hostname or "", parts.port
        self.context: ssl.SSLContext | None = None
        if parts.scheme == "https":
            # True: the public CAs or SSL_CERT_FILE/SSL_CERT_DIR, as httpx verifies
            self.context = verify if isinstance(verify, ssl.SSLContext) else (
                ssl.create_default_context() if verify else ssl._create_unverified_context())
        self.secret_id, self.secret_key = secret_id, secret_key
        self.timeout = timeout
        self._local = threading.local()
        self._open: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def _connection(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self.context is not None:
                conn = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout,
                                                   context=self.context)
            else:
                conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            self._local.conn = conn
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
            conn.request("POST", path + "?" + urlencode(params), body, all_headers)
            resp = conn.getresponse()
            answer = resp.read()
        except ssl.SSLCertVerificationError as exc:  # permanent: not worth a retry
            conn.close()
            raise ClientError(0, "TLSRefused", f"cannot talk to {self.endpoint}: {exc} (for "
                              "https: --ca-file)") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()  # reconnects on the next request
            raise ClientError(0, "ConnectionFailed",
                              f"cannot talk to {self.endpoint}: {exc or type(exc).__name__} "
                              "(is the server running? --endpoint or CLS_SHIPPER_ENDPOINT; "
                              "for https: --ca-file)") from None
        if resp.status != 200:
            try:
                err = orjson.loads(answer)
                raise ClientError(resp.status, err["errorcode"], err["errormessage"])
            except (ValueError, KeyError, TypeError):
                raise ClientError(resp.status, "HTTPError",
                                  f"{self.endpoint} answered {resp.status}: "
                                  f"{answer[:200].decode(errors='replace')!r} "
                                  "(is it a cls-shipper server?)") from None

    def close(self) -> None:
        with self._lock:
            for conn in self._open:
                conn.close()
            self._open.clear()

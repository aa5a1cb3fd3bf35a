"""A small signed client for the legacy API, used by the CLI and the demo. It signs exactly
like the official Python SDK, so what works here works there."""

from __future__ import annotations

import os
import ssl
import time
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import orjson

from cls_shipper.auth import qsign
from cls_shipper.errors import ClientError


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


class ClsClient:
    def __init__(self, endpoint: str, secret_id: str, secret_key: str,
                 timeout: float = 30.0, verify: ssl.SSLContext | bool = True) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.host = urlsplit(self.endpoint).netloc
        self.secret_id, self.secret_key = secret_id, secret_key
        self.http = httpx.Client(base_url=self.endpoint, timeout=timeout, verify=verify)

    def request(self, method: str, path: str, params: Mapping[str, str] | None = None,
                body: bytes | None = None, headers: Mapping[str, str] | None = None
                ) -> httpx.Response:
        params = dict(params or {})
        all_headers = {"Host": self.host, **(headers or {})}
        all_headers["Authorization"] = qsign.sign(self.secret_id, self.secret_key, method, path,
                                                  params, all_headers, int(time.time()) - 60)
        url = path + ("?" + urlencode(params) if params else "")
        try:
            resp = self.http.request(method, url, content=body, headers=all_headers)
        except httpx.TransportError as exc:
            # Unreachable, or TLS refused (an unknown CA, a client certificate required):
            # the reason in one line, never a trace.
            raise ClientError(0, "ConnectionError",
                              f"cannot talk to {self.endpoint}: {exc or type(exc).__name__}"
                              ) from None
        if resp.status_code != 200:
            try:
                err = resp.json()
                raise ClientError(resp.status_code, err["errorcode"], err["errormessage"])
            except (ValueError, KeyError):
                raise ClientError(resp.status_code, "HTTPError", resp.text[:200]) from None
        return resp

    def call(self, method: str, path: str, params: Mapping[str, str] | None = None,
             json: Any = None) -> Any:
        body = orjson.dumps(json) if json is not None else None
        headers = {"Content-Type": "application/json"} if body is not None else {}
        resp = self.request(method, path, params, body, headers)
        return orjson.loads(resp.content) if resp.content else None

    def close(self) -> None:
        self.http.close()

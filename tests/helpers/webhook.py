"""A real webhook receiver in the test process: an HTTP server on a free port that records
every delivery (headers and exact body) and can be taken down and brought back on the same
port. Also the signature verifier of docs/operations.md, taken from the page itself so the
documented snippet is the one tested."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from tests.helpers.server import REPO, free_port


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        found: dict[str, Any] = orjson.loads(self.body)
        return found


class Receiver:
    def __init__(self) -> None:
        self.port = free_port()
        self.deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/cls"

    def up(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    receiver.deliveries.append(Delivery(dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                del format, args

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        """Connections are refused from now on, as when the receiver is stopped."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return [delivery.event for delivery in self.deliveries]

    def wait_for(self, check: Callable[[list[dict[str, Any]]], bool], what: str,
                 timeout: float = 90.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.events()
            if check(events):
                return events
            time.sleep(0.2)
        raise AssertionError(f"{what} not received in {timeout}s: "
                             f"{[e['type'] for e in self.events()]}")


def documented_verifier() -> Callable[..., bool]:
    """`verify` from the first Python block of the "Verifying a delivery" section of
    docs/operations.md."""
    page = (REPO / "docs" / "operations.md").read_text()
    section = page.split("### Verifying a delivery", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "no Python snippet under 'Verifying a delivery'"
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "docs/operations.md", "exec"), namespace)
    verify: Callable[..., bool] = namespace["verify"]
    return verify

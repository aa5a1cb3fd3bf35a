"""The HTTP server's limit on a request's head (request line and headers).

uvicorn's fast parser (httptools) has no such limit: it buffers a header until its end,
however long, so a request with a 100 KB header, or a head that never ends, costs memory
the size of whatever the client sends. This protocol answers 431 and closes the connection
once a head passes the limit, counted two ways: the request line and headers as the parser
hands them over (a head that arrives whole), and the bytes received while a head is still
incomplete (a head that keeps coming: the parser holds them until a header ends)."""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop parsing the request."""


def header_limited(max_header_bytes: int) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol refusing request heads above `max_header_bytes`."""

    class HeaderLimitedProtocol(HttpToolsProtocol):
        _head_bytes = 0  # of the current head, as parsed
        _pending_bytes = 0  # received while the current head is incomplete
        _in_head = True  # a connection starts waiting for a request's head
        _too_large = False

        def on_message_begin(self) -> None:
            self._head_bytes = self._pending_bytes = 0
            self._in_head = True
            super().on_message_begin()

        def _count(self, size: int) -> None:
            self._head_bytes += size
            if self._head_bytes > max_header_bytes:
                self._too_large = True
                raise _HeadTooLarge

        def on_url(self, url: bytes) -> None:
            self._count(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count(len(name) + len(value) + 4)  # ": " and CRLF
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            self._in_head = False
            super().on_headers_complete()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if not self._in_head or self.parser is None or self.transport.is_closing():
                return
            # A chunk that completed the head (and may carry the body's start) never
            # counts here; one that did not counts whole.
            self._pending_bytes += len(data)
            if self._pending_bytes > max_header_bytes:
                self._too_large = True
                self.send_400_response("")

        def send_400_response(self, msg: str) -> None:
            # uvicorn answers 400 to any failure of a parser callback, ours included.
            if not self._too_large:
                super().send_400_response(msg)
                return
            body = orjson.dumps({
                "errorcode": "InvalidParam",
                "errormessage": f"the request line and headers exceed {max_header_bytes} "
                                "bytes (MAX_HEADER_BYTES)"})
            self.transport.write(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
                b"content-type: application/json\r\n"
                b"content-length: " + str(len(body)).encode() + b"\r\n"
                b"connection: close\r\n\r\n" + body)
            self.transport.close()
            self._in_head = False

    return HeaderLimitedProtocol

"""The server's log: one handler on standard error for every logger (ours, uvicorn's,
alembic's), in text for people or JSON lines for machines, each line carrying the node and
what `logctx` says is being handled. The API process and every worker process call
`configure_logging` at start, so their lines share one format and one set of fields."""

from __future__ import annotations

import logging
import sys
import threading
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson

from cls_shipper import logctx
from cls_shipper.settings import Settings

# The per-request lines of `--access-log` (written by the API's middleware).
ACCESS_LOGGER = "cls_shipper.access"
# A message or a trace longer than this is cut: a client-controlled string (a path, a
# header) quoted in a message must not make one line unbounded.
MAX_FIELD_CHARS = 16 << 10
# Loggers whose own handlers would print a second, differently formatted copy of a line.
_ADOPTED = ("uvicorn", "uvicorn.error", "uvicorn.asgi")


def _cut(text: str) -> str:
    if len(text) <= MAX_FIELD_CHARS:
        return text
    return text[:MAX_FIELD_CHARS] + f"... [{len(text) - MAX_FIELD_CHARS} characters cut]"


def _utc(created: float) -> str:
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (RFC 3339, UTC), level, logger, message, node, the
    context fields that are set, and for an error its exception text (newlines escaped by
    JSON, so a trace never spans lines)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": _utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _cut(record.getMessage()),
            "node": logctx.node(),
            **logctx.current(),
        }
        access = getattr(record, "access", None)
        if isinstance(access, dict):
            doc.update(access)
        if record.exc_info:
            doc["exception"] = _cut(self.formatException(record.exc_info))
        elif record.exc_text:
            doc["exception"] = _cut(record.exc_text)
        if record.stack_info:
            doc["stack"] = _cut(self.formatStack(record.stack_info))
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time level logger [node field=value ...]: message`, a trace below an error."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(context)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(f"{k}={v}" for k, v in logctx.current().items())
        record.context = f"[{logctx.node() or '-'}{' ' + fields if fields else ''}]"
        record.msg, record.args = _cut(record.getMessage()), None
        return super().format(record)


def formatter_for(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(settings: Settings, node: str | None = None) -> None:
    """Route every logger of this process to standard error in the configured format.
    `node` names this process in each line (the node id; a worker process's own id)."""
    if node is not None:
        logctx.set_node(node)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter_for(settings.log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level.upper())
    for name in _ADOPTED:
        adopted = logging.getLogger(name)
        adopted.handlers.clear()
        adopted.propagate = True
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the demo's requests are noise
    # The access log is its own switch, whatever the level: on, every request is a line.
    logging.getLogger(ACCESS_LOGGER).setLevel(
        logging.INFO if settings.access_log else logging.CRITICAL + 10)
    logging.captureWarnings(True)
    # An error nobody caught is a line in the same format, not a bare trace on stderr.
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread_uncaught


def _log_uncaught(kind: type[BaseException], exc: BaseException,
                  tb: TracebackType | None) -> None:
    logging.getLogger("cls_shipper").critical("uncaught error", exc_info=(kind, exc, tb))


def _log_thread_uncaught(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or isinstance(args.exc_value, SystemExit):
        return
    logging.getLogger("cls_shipper").error(
        "uncaught error in thread %s", args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback))

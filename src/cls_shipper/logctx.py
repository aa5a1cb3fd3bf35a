"""What a log line is about: the node that wrote it, and the request or shipping task being
handled when it was written. The API's request handling and the shipping worker set these;
the log formatters read them, so every line carries them without each call naming them."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

# The fields a line can carry, in the order the formatters show them.
FIELDS = ("request_id", "shipper_id", "task_id", "topic_id")

_vars: dict[str, contextvars.ContextVar[str | None]] = {
    name: contextvars.ContextVar(f"cls_shipper_{name}", default=None) for name in FIELDS}
# One per process, set once at start: a plain global, as every thread shares it.
_node: list[str | None] = [None]


def set_node(node_id: str) -> None:
    _node[0] = node_id


def node() -> str | None:
    return _node[0]


def set_field(name: str, value: str) -> contextvars.Token[str | None]:
    """Set one field for the rest of the current context (an ASGI request's task): the
    request id, set once per request and never reset, as the context ends with it."""
    return _vars[name].set(value)


@contextmanager
def bound(**fields: str | None) -> Iterator[None]:
    """The fields given, for the lines logged inside the block (by this thread, or by tasks
    and threads given a copy of its context)."""
    tokens = [(_vars[name], _vars[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current() -> dict[str, str]:
    """The fields set here, without the unset ones."""
    return {name: value for name, var in _vars.items() if (value := var.get()) is not None}

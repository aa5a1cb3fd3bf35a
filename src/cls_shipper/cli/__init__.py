"""The `cls-shipper` command line: the server, keys, and client tools."""

from __future__ import annotations

import sys
from typing import Any

import typer

from cls_shipper.cli import logs

HELP = "cls-shipper: ship CLS topics to object storage."


def _client_app() -> typer.Typer:
    """`upload` and `logs` alone: they start without importing the server (about a
    CPU-second of imports, as much as uploading 150 MB costs)."""
    client = typer.Typer(no_args_is_help=True, add_completion=False, help=HELP)
    client.command("upload")(logs.upload)
    client.add_typer(logs.app, name="logs")
    return client


def _full_app() -> typer.Typer:
    from cls_shipper.cli import keys, serve, sign, status, tasks

    full = typer.Typer(no_args_is_help=True, add_completion=False, help=HELP)
    full.command("serve")(serve.serve)
    full.add_typer(keys.app, name="keys")
    full.command("tasks")(tasks.tasks)
    full.command("audit")(tasks.audit)
    full.command("retry")(tasks.retry)
    full.command("status")(status.status)
    full.command("sign")(sign.sign)
    full.command("upload")(logs.upload)
    full.add_typer(logs.app, name="logs")
    return full


def __getattr__(name: str) -> Any:
    if name == "app":  # every command, built on first use (tests, embedding)
        return _full_app()
    raise AttributeError(name)


def main() -> None:
    if sys.argv[1:2] in (["upload"], ["logs"]):
        _client_app()()
    else:
        _full_app()()

"""The `cls-shipper` command line: the server, keys, the control plane and client tools."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from cls_shipper.cli import logs

HELP = "cls-shipper: ship CLS topics to object storage."


def _version(shown: bool) -> None:
    if shown:
        from importlib.metadata import PackageNotFoundError, version  # ~40 ms: only here

        try:
            print(f"cls-shipper {version('cls-shipper')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            print("cls-shipper (not installed)")
        raise typer.Exit()


def _main(_: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False) -> None:
    """cls-shipper: ship CLS topics to object storage."""


def _client_app() -> typer.Typer:
    """`upload` and `logs` alone: they start without importing the server (about a
    CPU-second of imports, as much as uploading 150 MB costs)."""
    client = typer.Typer(no_args_is_help=True, add_completion=False, help=HELP)
    client.callback()(_main)
    client.command("upload")(logs.upload)
    client.add_typer(logs.app, name="logs")
    return client


def _full_app() -> typer.Typer:
    from cls_shipper.cli import keys, logsets, serve, shippers, sign, status, tasks, topics

    full = typer.Typer(no_args_is_help=True, add_completion=False, help=HELP)
    full.callback()(_main)
    full.command("serve")(serve.serve)
    full.add_typer(keys.app, name="keys")
    full.add_typer(logsets.app, name="logsets")
    full.add_typer(topics.app, name="topics")
    full.add_typer(shippers.app, name="shippers")
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

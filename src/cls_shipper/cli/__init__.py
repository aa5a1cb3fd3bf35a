"""The `cls-shipper` command line: the server, keys, the control plane and client tools."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Annotated

import typer

from cls_shipper.cli import keys, logs, logsets, serve, shippers, sign, status, tasks, topics

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="cls-shipper: ship CLS topics to object storage.")


def _version(shown: bool) -> None:
    if shown:
        try:
            print(f"cls-shipper {version('cls-shipper')}")
        except PackageNotFoundError:  # run from a source tree that was never installed
            print("cls-shipper (not installed)")
        raise typer.Exit()


@app.callback()
def _main(_: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False) -> None:
    """cls-shipper: ship CLS topics to object storage."""


app.command("serve")(serve.serve)
app.add_typer(keys.app, name="keys")
app.add_typer(logsets.app, name="logsets")
app.add_typer(topics.app, name="topics")
app.add_typer(shippers.app, name="shippers")
app.command("tasks")(tasks.tasks)
app.command("audit")(tasks.audit)
app.command("retry")(tasks.retry)
app.command("status")(status.status)
app.command("sign")(sign.sign)
app.command("upload")(logs.upload)
app.add_typer(logs.app, name="logs")


def main() -> None:
    app()

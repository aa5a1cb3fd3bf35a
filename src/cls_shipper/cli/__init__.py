"""The `cls-shipper` command line: the server, keys, and client tools."""

from __future__ import annotations

import typer

from cls_shipper.cli import keys, logs, serve, sign, status, tasks

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="cls-shipper: ship CLS topics to object storage.")
app.command("serve")(serve.serve)
app.add_typer(keys.app, name="keys")
app.command("tasks")(tasks.tasks)
app.command("audit")(tasks.audit)
app.command("retry")(tasks.retry)
app.command("status")(status.status)
app.command("sign")(sign.sign)
app.command("upload")(logs.upload)
app.add_typer(logs.app, name="logs")


def main() -> None:
    app()

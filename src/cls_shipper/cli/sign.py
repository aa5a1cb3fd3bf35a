"""`cls-shipper sign`: an Authorization value for curl and other plain HTTP clients."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from cls_shipper.auth import qsign
from cls_shipper.cli.common import CredentialsDir, credentials


def sign(
    method: Annotated[str, typer.Argument(help="GET, POST, PUT or DELETE.")],
    path: Annotated[str, typer.Argument(help="The request path, e.g. /tasks.")],
    params: Annotated[list[str] | None, typer.Argument(
        help="Query parameters as name=value (unencoded), all of them.")] = None,
    host: Annotated[str, typer.Option(help="The Host header the request will carry.")] =
    "127.0.0.1:9400",
    content_type: Annotated[str | None, typer.Option(
        help="The Content-Type the request will carry (signed when given).")] = None,
    expire: Annotated[int, typer.Option(help="Seconds the signature stays valid.")] = 300,
    data_dir: CredentialsDir = None,
) -> None:
    """Print a q-sign Authorization header value for one request."""
    pairs: dict[str, str] = {}
    for item in params or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"expected name=value, got {item!r}")
        pairs[name] = value
    secret_id, secret_key = credentials(data_dir)
    headers = {"host": host}
    if content_type:
        headers["content-type"] = content_type
    typer.echo(qsign.sign(secret_id, secret_key, method.upper(), path, pairs, headers,
                          int(time.time()) - 60, expire))

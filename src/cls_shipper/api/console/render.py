"""The console's HTML: one Jinja2 environment over the package's templates (autoescaped),
and the filters the templates format values with."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import HTMLResponse

from cls_shipper.timefmt import format_legacy

HERE = Path(__file__).parent
_env = Environment(loader=FileSystemLoader(HERE / "templates"),
                   autoescape=select_autoescape(["html"]), trim_blocks=True,
                   lstrip_blocks=True)


def size(value: int | None) -> str:
    """Bytes the way people read them."""
    if value is None:
        return ""
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def span(ms: int | None) -> str:
    """A duration, largest unit first."""
    if ms is None:
        return ""
    seconds = max(ms, 0) // 1000
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    if seconds < 172_800:
        return f"{seconds // 3600} h {seconds % 3600 // 60} min"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def json_script(value: Any) -> Markup:
    """JSON safe inside <script type="application/json">: no '<' can close the element."""
    return Markup(orjson.dumps(value).decode().replace("<", "\\u003c"))


_env.filters["size"] = size
_env.filters["span"] = span
_env.filters["json_script"] = json_script


def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
    """A whole page. `zone` formats times the way the legacy API writes them."""
    return HTMLResponse(fragment(request, template, **values), status_code=status)


def fragment(request: Request, template: str, **values: Any) -> str:
    zone: ZoneInfo = request.app.state.ctx.zone
    return _env.get_template(template).render(
        request=request, time=lambda ms: format_legacy(ms, zone), zone=str(zone), **values)

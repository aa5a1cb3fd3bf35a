"""The web console (issue 14): server-rendered pages over the service layer, mounted at
/console by the application. Sign-in, the overview, a shipper's timeline and tasks, a
task's runs and objects, the forms; vendored static files only, no build step."""

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from cls_shipper.api.console.pages import ROUTES


async def _to_overview(_: Request) -> Response:
    return RedirectResponse("/console/", status_code=308)


# The application does not redirect slashes; the console's bare path does.
CONSOLE_ROUTES: list[BaseRoute] = [Route("/console", _to_overview),
                                   Mount("/console", routes=ROUTES)]

__all__ = ["CONSOLE_ROUTES"]

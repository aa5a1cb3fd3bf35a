"""The browser side of console sessions: the cookie, the redirect to sign-in, and the CSRF
check every state-changing request passes. The rules are the service's (service/sessions)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from cls_shipper.api.http import context, run
from cls_shipper.service import sessions
from cls_shipper.service.sessions import Session

COOKIE = "cls_console"
# Before sign-in there is no session to hold a CSRF token: the sign-in form's token is
# checked against this cookie (double submit), so another site cannot sign a browser in.
PRE_COOKIE = "cls_console_pre"
PATH = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

Handler = Callable[[Request, Session], Awaitable[Response]]


def set_cookie(request: Request, response: Response, name: str, value: str,
               max_age: int | None) -> None:
    response.set_cookie(name, value, max_age=max_age, path=PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path=PATH, httponly=True, samesite="strict")


def pre_token(request: Request) -> str:
    """The sign-in form's token: the cookie's if the browser has one, else a new one."""
    return request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)


def pre_token_ok(request: Request, sent: str) -> bool:
    held = request.cookies.get(PRE_COOKIE, "")
    return bool(held) and bool(sent) and hmac.compare_digest(held.encode(), sent.encode())


async def current(request: Request) -> Session | None:
    token = request.cookies.get(COOKIE, "")
    if not token:
        return None
    return await run(sessions.current, context(request), token)


def _to_sign_in(request: Request) -> Response:
    if request.method == "GET" and not request.url.path.endswith(".json"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        response: Response = RedirectResponse(f"{PATH}/signin?next={quote(target, safe='')}",
                                              status_code=303)
    else:
        # A fetch cannot follow a redirect into a page: it is told where to send the user.
        response = JSONResponse({"error": "your session has ended; sign in again",
                                 "signin": f"{PATH}/signin"}, status_code=401)
    clear_cookie(response, COOKIE)
    return response


def signed_in(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """A console route for a signed-in user; on a state-changing method the request must
    carry the session's CSRF token (a form field or the X-CSRF-Token header), checked by
    the caller through `csrf_ok` once the form is read."""

    async def wrapped(request: Request) -> Response:
        session = await current(request)
        if session is None:
            return _to_sign_in(request)
        response = await handler(request, session)
        response.headers.setdefault("cache-control", "no-store")
        return response

    return wrapped


def csrf_refused() -> Response:
    return JSONResponse({"error": "this request carries no valid CSRF token; reload the page "
                                  "and try again"}, status_code=403)

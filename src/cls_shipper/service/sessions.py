"""Console sessions: sign in with an access key, then a server-side session.

The SecretKey is checked like a request's signature key (the key cache of `auth/keys.py`:
known and enabled), and never stored in the browser: the browser holds a random token, the
database only its SHA-256, so a session survives restarts and works on every API node. A
session ends when it expires, when its key is disabled (checked on every request, within
the key cache's 5 seconds), or on sign-out. Every state-changing request carries the
session's CSRF token."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, insert, select

from cls_shipper.auth.keys import MAX_SECRET_ID, MAX_SECRET_KEY
from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.service.context import Context
from cls_shipper.store.schema import console_sessions
from cls_shipper.timefmt import now_ms

# Sessions one key may hold at once; signing in beyond it ends that key's oldest session, so
# a script that signs in in a loop cannot grow the table without bound.
MAX_SESSIONS_PER_KEY = 20
_WRONG = "the SecretId or SecretKey is wrong, or the key is disabled"


@dataclass(frozen=True, slots=True)
class Session:
    secret_id: str
    csrf_token: str
    expires_ms: int


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def sign_in(ctx: Context, secret_id: str, secret_key: str) -> tuple[str, Session]:
    """A new session for an enabled key whose SecretKey matches: (the cookie's token, the
    session). Blocking (it may read the key from the database)."""
    if (not secret_id or not secret_key or len(secret_id) > MAX_SECRET_ID
            or len(secret_key) > MAX_SECRET_KEY):
        raise ServiceError(Kinds.SIGNATURE_FAILURE, _WRONG)
    expected = ctx.keys.lookup(secret_id)
    if expected is None or not hmac.compare_digest(expected.encode(), secret_key.encode()):
        raise ServiceError(Kinds.SIGNATURE_FAILURE, _WRONG)
    token = secrets.token_urlsafe(32)
    now = now_ms()
    session = Session(secret_id, secrets.token_urlsafe(32),
                      now + ctx.settings.console_session_seconds * 1000)
    with ctx.db.begin() as conn:
        # Pruned here, the one place the table grows.
        conn.execute(delete(console_sessions).where(console_sessions.c.expires_ms <= now))
        held = conn.execute(select(console_sessions.c.token_hash)
                            .where(console_sessions.c.secret_id == secret_id)
                            .order_by(console_sessions.c.created_ms.desc())
                            .offset(MAX_SESSIONS_PER_KEY - 1)).scalars().all()
        if held:
            conn.execute(delete(console_sessions)
                         .where(console_sessions.c.token_hash.in_(held)))
        conn.execute(insert(console_sessions).values(
            token_hash=_hash(token), secret_id=secret_id, csrf_token=session.csrf_token,
            created_ms=now, expires_ms=session.expires_ms))
    return token, session


def current(ctx: Context, token: str) -> Session | None:
    """The live session of a cookie's token: None when unknown, expired, or its key is
    disabled or gone."""
    if not token or len(token) > 128:
        return None
    with ctx.db.read() as conn:
        row = conn.execute(select(console_sessions).where(
            console_sessions.c.token_hash == _hash(token))).first()
    if row is None or row.expires_ms <= now_ms():
        return None
    if ctx.keys.lookup(row.secret_id) is None:
        return None
    return Session(row.secret_id, row.csrf_token, int(row.expires_ms))


def csrf_ok(session: Session, sent: str) -> bool:
    return bool(sent) and hmac.compare_digest(session.csrf_token.encode(), sent.encode())


def sign_out(ctx: Context, token: str) -> None:
    with ctx.db.begin() as conn:
        conn.execute(delete(console_sessions).where(
            console_sessions.c.token_hash == _hash(token)))

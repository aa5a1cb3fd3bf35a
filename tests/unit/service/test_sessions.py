"""Console sessions: a key's SecretKey signs in, the session lives in the database, and it
ends on expiry, on sign-out and when its key is disabled."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cls_shipper.auth.keys import KeyCache, create_key, set_enabled
from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.service import Context, sessions
from cls_shipper.settings import Settings
from cls_shipper.store import open_database
from cls_shipper.store.schema import console_sessions


def make_ctx(tmp_path: Path, seconds: int = 3600) -> Context:
    settings = Settings(data_dir=tmp_path, console_session_seconds=seconds)
    ctx = Context(open_database(settings.db_url), settings)
    ctx.keys = KeyCache(ctx.db, ttl=0.01)  # see a disabled key at once
    return ctx


def test_the_right_key_signs_in_and_a_wrong_one_does_not(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    key = create_key(ctx.db, "console")
    for secret_id, secret_key in ((key.secret_id, "wrong"), ("AKIDnobody", key.secret_key),
                                  (key.secret_id, "")):
        with pytest.raises(ServiceError) as refused:
            sessions.sign_in(ctx, secret_id, secret_key)
        assert refused.value.kind is Kinds.SIGNATURE_FAILURE
    token, session = sessions.sign_in(ctx, key.secret_id, key.secret_key)
    assert sessions.current(ctx, token) == session
    assert sessions.csrf_ok(session, session.csrf_token)
    assert not sessions.csrf_ok(session, "")
    assert not sessions.csrf_ok(session, session.csrf_token[:-1] + "x")
    with ctx.db.read() as conn:  # the database holds no usable cookie, nor the SecretKey
        stored = conn.execute(select(console_sessions)).one()
    assert token not in stored and key.secret_key not in stored


def test_a_session_ends_on_sign_out_expiry_and_a_disabled_key(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    key = create_key(ctx.db, "console")
    token, _ = sessions.sign_in(ctx, key.secret_id, key.secret_key)
    sessions.sign_out(ctx, token)
    assert sessions.current(ctx, token) is None

    token, _ = sessions.sign_in(ctx, key.secret_id, key.secret_key)
    set_enabled(ctx.db, key.secret_id, False)
    time.sleep(0.05)
    assert sessions.current(ctx, token) is None
    set_enabled(ctx.db, key.secret_id, True)

    short = make_ctx(tmp_path, seconds=1)
    token, _ = sessions.sign_in(short, key.secret_id, key.secret_key)
    assert sessions.current(short, token) is not None
    time.sleep(1.1)
    assert sessions.current(short, token) is None


def test_the_table_stays_bounded(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path)
    key = create_key(ctx.db, "console")
    tokens = [sessions.sign_in(ctx, key.secret_id, key.secret_key)[0]
              for _ in range(sessions.MAX_SESSIONS_PER_KEY + 5)]
    with ctx.db.read() as conn:
        held = conn.execute(select(func.count()).select_from(console_sessions)).scalar_one()
    assert held == sessions.MAX_SESSIONS_PER_KEY
    assert sessions.current(ctx, tokens[0]) is None  # the oldest went first
    assert sessions.current(ctx, tokens[-1]) is not None

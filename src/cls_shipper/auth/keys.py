"""Access keys: the root key from settings or generated on first start, plus managed keys."""

from __future__ import annotations

import secrets
import string
import threading
import time
from dataclasses import dataclass

from sqlalchemy import insert, select, update

from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.store import Database
from cls_shipper.store.schema import access_keys
from cls_shipper.timefmt import now_ms

_ALPHABET = string.ascii_letters + string.digits


@dataclass(frozen=True, slots=True)
class AccessKey:
    secret_id: str
    secret_key: str
    enabled: bool
    description: str
    created_ms: int


def _new_pair() -> tuple[str, str]:
    secret_id = "AKID" + "".join(secrets.choice(_ALPHABET) for _ in range(32))
    secret_key = "".join(secrets.choice(_ALPHABET) for _ in range(32))
    return secret_id, secret_key


def create_key(db: Database, description: str = "",
               pair: tuple[str, str] | None = None) -> AccessKey:
    secret_id, secret_key = pair or _new_pair()
    if not secret_id or not secret_key or len(secret_id) > 64 or len(secret_key) > 128:
        raise invalid("SecretId/SecretKey must be 1-64 / 1-128 characters")
    row = AccessKey(secret_id, secret_key, True, description, now_ms())
    with db.begin() as conn:
        existing = conn.execute(
            select(access_keys.c.secret_key).where(access_keys.c.secret_id == secret_id)
        ).first()
        if existing is None:
            conn.execute(insert(access_keys).values(
                secret_id=secret_id, secret_key=secret_key, enabled=True,
                description=description, created_ms=row.created_ms,
            ))
        else:
            conn.execute(update(access_keys).where(access_keys.c.secret_id == secret_id).values(
                secret_key=secret_key, enabled=True))
    return row


def list_keys(db: Database) -> list[AccessKey]:
    with db.read() as conn:
        rows = conn.execute(select(access_keys).order_by(access_keys.c.created_ms)).all()
    return [AccessKey(r.secret_id, r.secret_key, r.enabled, r.description, r.created_ms)
            for r in rows]


def set_enabled(db: Database, secret_id: str, enabled: bool) -> None:
    with db.begin() as conn:
        result = conn.execute(update(access_keys).where(access_keys.c.secret_id == secret_id)
                              .values(enabled=enabled))
    if result.rowcount == 0:
        raise ServiceError(Kinds.SECRET_ID_NOT_FOUND, f"no key {secret_id!r}")


def ensure_root_key(db: Database, secret_id: str | None,
                    secret_key: str | None) -> AccessKey | None:
    """Install the configured root key, or generate one when no key exists at all.
    Returns the key when one was generated (the caller prints how to use it)."""
    if secret_id and secret_key:
        create_key(db, "root (from settings)", (secret_id, secret_key))
        return None
    if list_keys(db):
        return None
    return create_key(db, "root (generated on first start)")


class KeyCache:
    """SecretId -> SecretKey with a short TTL, so signature checks skip the database while a
    disabled key stops working within `ttl` seconds."""

    def __init__(self, db: Database, ttl: float = 5.0) -> None:
        self._db = db
        self._ttl = ttl
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[str | None, float]] = {}

    def lookup(self, secret_id: str) -> str | None:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(secret_id)
        if hit is not None and hit[1] > now:
            return hit[0]
        with self._db.read() as conn:
            row = conn.execute(select(access_keys.c.secret_key, access_keys.c.enabled)
                               .where(access_keys.c.secret_id == secret_id)).first()
        value = row.secret_key if row is not None and row.enabled else None
        with self._lock:
            self._cache[secret_id] = (value, now + self._ttl)
        return value

"""Access keys: the root key from settings or generated on first start, plus managed keys."""

from __future__ import annotations

import secrets
import string
import threading
from dataclasses import dataclass

from cachetools import TTLCache
from sqlalchemy import insert, select, update

from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.store import Database
from cls_shipper.store.schema import access_keys
from cls_shipper.timefmt import now_ms

_ALPHABET = string.ascii_letters + string.digits
MAX_SECRET_ID = 64
MAX_SECRET_KEY = 128
# How long a server may answer from its cache after a key changed in the database: the bound
# for a change made anywhere else (the `keys` command writes the database directly). A change
# made through a KeyCache's own process applies there at once (`invalidate`).
KEY_CACHE_TTL_S = 5.0


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
               pair: tuple[str, str] | None = None, cache: KeyCache | None = None) -> AccessKey:
    secret_id, secret_key = pair or _new_pair()
    if (not secret_id or not secret_key or len(secret_id) > MAX_SECRET_ID
            or len(secret_key) > MAX_SECRET_KEY):
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
    if cache is not None:
        cache.invalidate(secret_id)
    return row


def list_keys(db: Database) -> list[AccessKey]:
    with db.read() as conn:
        rows = conn.execute(select(access_keys).order_by(access_keys.c.created_ms)).all()
    return [AccessKey(r.secret_id, r.secret_key, r.enabled, r.description, r.created_ms)
            for r in rows]


def set_enabled(db: Database, secret_id: str, enabled: bool,
                cache: KeyCache | None = None) -> None:
    with db.begin() as conn:
        result = conn.execute(update(access_keys).where(access_keys.c.secret_id == secret_id)
                              .values(enabled=enabled))
    if cache is not None:
        cache.invalidate(secret_id)
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
    disabled key stops working within `ttl` seconds.

    Both sides are bounded in size as well as in time: unknown SecretIds come from anyone who
    can reach the port, so they live in their own smaller cache (a flood of them evicts only
    other unknown ids, never the keys in use), and an id longer than any key's is answered
    without a lookup or an entry."""

    def __init__(self, db: Database, ttl: float = KEY_CACHE_TTL_S, max_keys: int = 10_000,
                 max_unknown: int = 1_000) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._known: TTLCache[str, str] = TTLCache(maxsize=max_keys, ttl=ttl)
        self._unknown: TTLCache[str, bool] = TTLCache(maxsize=max_unknown, ttl=ttl)

    def __len__(self) -> int:
        """Entries held (expired ones not yet evicted included): bounded by the sizes."""
        with self._lock:
            return len(self._known) + len(self._unknown)

    def invalidate(self, secret_id: str) -> None:
        """Forget what is cached about `secret_id`: the next request reads the database (a
        key enabled, disabled or replaced by this process applies here at once)."""
        with self._lock:
            self._known.pop(secret_id, None)
            self._unknown.pop(secret_id, None)

    def cached(self, secret_id: str) -> tuple[bool, str | None]:
        """(True, the SecretKey or None) when the answer is known without the database;
        (False, None) when only `lookup` can tell. Never blocks on I/O: the event loop asks
        this first and goes to a thread for `lookup` only on a miss."""
        if not secret_id or len(secret_id) > MAX_SECRET_ID:
            return True, None
        with self._lock:
            known = self._known.get(secret_id)
            if known is not None:
                return True, known
            if secret_id in self._unknown:
                return True, None
        return False, None

    def lookup(self, secret_id: str) -> str | None:
        """The SecretKey of an enabled key, from the cache or else the database (blocking:
        call it from a worker thread)."""
        found, secret = self.cached(secret_id)
        if found:
            return secret
        with self._db.read() as conn:
            row = conn.execute(select(access_keys.c.secret_key, access_keys.c.enabled)
                               .where(access_keys.c.secret_id == secret_id)).first()
        value: str | None = row.secret_key if row is not None and row.enabled else None
        with self._lock:
            if value is None:
                self._unknown[secret_id] = True
            else:
                self._known[secret_id] = value
        return value

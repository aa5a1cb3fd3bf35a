"""The key cache stays bounded whatever SecretIds clients send."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete

from cls_shipper.auth.keys import KeyCache, create_key, set_enabled
from cls_shipper.store import open_database
from cls_shipper.store.schema import access_keys


def test_unknown_ids_stay_within_the_bound_and_never_evict_a_known_key(
        tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'keys.db'}")
    key = create_key(db, "app")
    cache = KeyCache(db, ttl=3600, max_keys=10, max_unknown=100)
    assert cache.lookup(key.secret_id) == key.secret_key
    for i in range(2_000):
        assert cache.lookup(f"AKID{i:060d}") is None
    assert len(cache) <= 10 + 100
    with db.begin() as conn:  # the known key must now come from the cache, still there
        conn.execute(delete(access_keys))
    assert cache.lookup(key.secret_id) == key.secret_key
    db.dispose()


def test_an_id_longer_than_any_key_is_not_looked_up_nor_kept(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'keys.db'}")
    cache = KeyCache(db)
    for i in range(50):
        assert cache.lookup(f"{i}" + "A" * 100_000) is None
    assert cache.lookup("") is None
    assert len(cache) == 0
    db.dispose()


def test_known_keys_are_bounded_too(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'keys.db'}")
    keys = [create_key(db) for _ in range(30)]
    cache = KeyCache(db, ttl=3600, max_keys=5, max_unknown=5)
    assert all(cache.lookup(k.secret_id) == k.secret_key for k in keys)
    assert len(cache) <= 5
    db.dispose()


def test_without_a_ttl_a_disabled_key_stops_at_once(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'keys.db'}")
    key = create_key(db)
    cache = KeyCache(db, ttl=0)
    assert cache.lookup(key.secret_id) == key.secret_key
    set_enabled(db, key.secret_id, False)
    assert cache.lookup(key.secret_id) is None
    set_enabled(db, key.secret_id, True)
    assert cache.lookup(key.secret_id) == key.secret_key
    db.dispose()


def test_a_change_through_the_cache_applies_at_once(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'keys.db'}")
    # An hour-long cache: only invalidation can make the change visible within this test.
    cache = KeyCache(db, ttl=3600)
    key = create_key(db, "k", cache=cache)
    assert cache.lookup(key.secret_id) == key.secret_key
    set_enabled(db, key.secret_id, False, cache=cache)
    assert cache.lookup(key.secret_id) is None
    set_enabled(db, key.secret_id, True, cache=cache)
    assert cache.lookup(key.secret_id) == key.secret_key
    # A change made elsewhere (no cache given) waits for the entry to expire.
    set_enabled(db, key.secret_id, False)
    assert cache.lookup(key.secret_id) == key.secret_key
    db.dispose()

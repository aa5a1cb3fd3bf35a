"""The API plumbing against hostile input: key lookups off the event loop, the body budget,
Content-MD5, dotted names nested without end."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
from pathlib import Path

import pytest

from cls_shipper.api.http import BodyBudget, check_md5, secret_for
from cls_shipper.api.v3.params import MAX_DEPTH, unflatten
from cls_shipper.auth.keys import create_key
from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.service import Context
from cls_shipper.settings import Settings
from cls_shipper.store import open_database


@pytest.fixture()
def ctx(tmp_path: Path) -> Context:
    settings = Settings(data_dir=tmp_path)
    return Context(open_database(settings.db_url), settings)


def test_a_key_lookup_that_misses_the_cache_runs_off_the_event_loop(ctx: Context) -> None:
    key = create_key(ctx.db, "app")
    threads: list[threading.Thread] = []
    lookup = ctx.keys.lookup

    def recording(secret_id: str) -> str | None:
        threads.append(threading.current_thread())
        return lookup(secret_id)

    ctx.keys.lookup = recording  # type: ignore[method-assign]

    async def scenario() -> list[str | None]:
        loop_thread = threading.current_thread()
        found = [await secret_for(ctx, key.secret_id), await secret_for(ctx, "AKIDnobody"),
                 await secret_for(ctx, key.secret_id), await secret_for(ctx, "AKIDnobody")]
        assert all(t is not loop_thread for t in threads)
        return found

    assert asyncio.run(scenario()) == [key.secret_key, None, key.secret_key, None]
    # Two misses went to the database, in worker threads; both answers then came from the
    # cache (the unknown one from the negative cache) without a lookup.
    assert len(threads) == 2
    ctx.db.dispose()


def test_the_body_budget_refuses_beyond_its_bound_and_frees_on_release() -> None:
    budget = BodyBudget(100)
    budget.reserve(60)
    with pytest.raises(ServiceError) as err:
        budget.reserve(41)
    assert err.value.kind is Kinds.SPEED_QUOTA_EXCEED
    budget.reserve(40)
    budget.release(60)
    budget.reserve(60)
    assert budget.held == 100


def test_content_md5_in_hex_either_case_or_base64() -> None:
    body = b'{"logset_name": "a"}'
    digest = hashlib.md5(body).digest()
    for form in (digest.hex(), digest.hex().upper(), base64.b64encode(digest).decode()):
        check_md5(body, form)
    for wrong in (hashlib.md5(b"x").hexdigest(), "not an md5", "", "z" * 32, "!" * 24):
        with pytest.raises(ServiceError) as err:
            check_md5(body, wrong)
        assert err.value.kind is Kinds.INVALID_CONTENT


def test_dotted_names_nest_at_most_max_depth_levels() -> None:
    deep = ".".join(["a"] * MAX_DEPTH)
    assert unflatten([(deep, "1")])["a"]["a"]
    for levels in (MAX_DEPTH + 1, 3_000, 100_000):
        with pytest.raises(ServiceError) as err:
            unflatten([(".".join(["a"] * levels), "1")])
        assert err.value.kind is Kinds.WRONG_TYPE

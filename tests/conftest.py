"""Fixtures: a running server, a signing client, and PostgreSQL when available."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.support import LegacyClient, ServerProcess

pytest_plugins = ["tests.s3server"]
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the session: SQLite, local buckets, intervals down to 1 s."""
    proc = ServerProcess(tmp_path_factory.mktemp("server"), args=["--min-interval", "1"])
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture()
def client(server: ServerProcess) -> LegacyClient:
    return LegacyClient(server.base_url)


@pytest.fixture()
def topic(client: LegacyClient) -> str:
    """A fresh logset and topic; the topic id."""
    logset = client.call("POST", "/logset", json={"logset_name": f"ls-{uuid.uuid4().hex[:8]}",
                                                  "period": 7})["logset_id"]
    return str(client.call("POST", "/topic", json={"logset_id": logset,
                                                   "topic_name": "app"})["topic_id"])


def _admin_url(url: str) -> str:
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for the session (dropped afterwards)."""
    base = os.environ.get("CLS_SHIPPER_TEST_DATABASE_URL", DEFAULT_PG)
    try:
        admin = create_engine(_admin_url(base), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {base} is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {base}: {exc.orig}")
    name = f"cls_shipper_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = base.rsplit("/", 1)[0] + "/" + name
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Run a test on both backends."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    return str(request.getfixturevalue("postgres_url"))

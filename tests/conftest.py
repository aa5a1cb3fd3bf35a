"""Fixtures: a running server, a signing client, and PostgreSQL when available.

PostgreSQL: `CLS_SHIPPER_TEST_DATABASE_URL` (default postgresql://postgres@127.0.0.1:5432/test)
names a database on the server to use; tests create fresh databases next to it and drop
them at the end. Unreachable, PostgreSQL tests are skipped (they fail under CI=true).

The server-based modules in BACKEND_MODULES run twice, on SQLite and on PostgreSQL: the
session-scoped `backend` fixture switches the backend that ServerProcess starts servers on
(and restarts module-scoped servers when it changes)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from tests.helpers.server import BACKEND, LegacyClient, ServerProcess, switch_backend

pytest_plugins = ["tests.helpers.s3server"]
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
BACKENDS = ("sqlite", "postgresql")
# Modules whose servers run on both backends.
BACKEND_MODULES = {"test_legacy_api", "test_rejects", "test_shipping", "test_tasks_api"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.module.__name__.rsplit(".", 1)[-1] in BACKEND_MODULES:
        metafunc.parametrize("backend", BACKENDS, indirect=True, scope="session")


def postgres_base() -> str:
    """The PostgreSQL URL to test against; skips (or fails under CI) when unreachable."""
    base = os.environ.get("CLS_SHIPPER_TEST_DATABASE_URL", DEFAULT_PG)
    admin = create_engine(_admin_url(base), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text("select 1"))
    except OperationalError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {base} is required under CI=true: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {base}: {exc.orig}")
    finally:
        admin.dispose()
    return base


@pytest.fixture(scope="session", autouse=True)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    """The backend servers run on: a parameter in BACKEND_MODULES, else SQLite."""
    name = str(getattr(request, "param", "sqlite"))
    if name == "postgresql" and BACKEND.postgres_base is None:
        BACKEND.postgres_base = postgres_base()
    switch_backend(name)
    yield name


def pytest_sessionfinish(session: pytest.Session) -> None:
    BACKEND.drop_all()


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
    base = postgres_base()
    admin = create_engine(_admin_url(base), isolation_level="AUTOCOMMIT")
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

"""Opening the database: engine settings per dialect and Alembic migrations on start."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event, text
from sqlalchemy.pool import NullPool

MIGRATIONS = Path(__file__).with_name("migrations")

# PostgreSQL advisory locks of cls-shipper: the two-key form (namespace, lock), so they show
# up in pg_locks as classid/objid and cannot collide with another application's single keys.
LOCK_NAMESPACE = 0x434C53  # "CLS"
MIGRATION_LOCK = 1
SCHEDULER_LOCK = 2

# Every statement we issue is short (window reads go 32 chunks at a time, retention deletes
# in batches); one that runs longer is stuck behind something and should fail and be retried
# rather than pile up. A transaction left idle (a frozen process) must not hold topic row
# locks, which every upload of the topic waits on.
STATEMENT_TIMEOUT_MS = 60_000
IDLE_IN_TRANSACTION_TIMEOUT_MS = 60_000
# The server notices a vanished client (a dead host, not only a dead process) within
# about a minute, which ends its session and frees its advisory locks, e.g. the scheduler's.
TCP_KEEPALIVES = {"tcp_keepalives_idle": 20, "tcp_keepalives_interval": 5,
                  "tcp_keepalives_count": 4}


@dataclass(frozen=True, slots=True)
class PoolSize:
    """Connections one process keeps (pool_size) and may open beyond them (max_overflow)."""

    size: int
    overflow: int


# API: the threadpool that runs blocking service calls (40 threads in Starlette) plus the
# upload writer; most calls are sub-millisecond, so 10 + 20 burst is plenty.
API_POOL = PoolSize(10, 20)
# A worker process runs one task: its reads, the lease keeper, the node heartbeat.
WORKER_POOL = PoolSize(3, 2)
# The scheduler: its ticks, the heartbeat, and the connection holding the leader lock.
SCHEDULER_POOL = PoolSize(3, 2)


class Database:
    """An engine plus the transaction helpers every store module uses."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"

    @property
    def is_postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction. On SQLite it takes the write lock up front (BEGIN IMMEDIATE), so
        read-then-write sequences never fail with SQLITE_BUSY halfway through."""
        with self.engine.connect() as conn:
            if self.is_sqlite:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
            else:
                with conn.begin():
                    yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            yield conn

    def dispose(self) -> None:
        self.engine.dispose()

    def describe(self) -> str:
        """Which database this is, for messages: the SQLite file, or PostgreSQL's host and
        database name (never the user or password of its URL)."""
        url = self.engine.url
        if self.is_sqlite:
            return f"SQLite {url.database or ':memory:'}"
        where = f"{url.host or 'localhost'}{f':{url.port}' if url.port else ''}"
        return f"PostgreSQL database {url.database!r} on {where}"


# SQLite's result code for a full disk (or a database at its max_page_count).
SQLITE_FULL = 13
# PostgreSQL's SQLSTATE disk_full.
PG_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether a database error (SQLAlchemy's, or the driver's under it) says the disk is
    full."""
    orig = getattr(exc, "orig", None) or exc
    if getattr(orig, "sqlite_errorcode", None) == SQLITE_FULL:
        return True
    if getattr(orig, "sqlstate", None) == PG_DISK_FULL:
        return True
    text = str(orig)
    return "database or disk is full" in text or "could not extend file" in text


@contextmanager
def advisory_lock(db: Database, key: int) -> Iterator[None]:
    """Run a block in one process at a time across all nodes (PostgreSQL session advisory
    lock on a connection held for the block; SQLite has one process, nothing to do)."""
    if db.is_sqlite:
        yield
        return
    with db.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:ns, :key)"),
                     {"ns": LOCK_NAMESPACE, "key": key})
        conn.commit()
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"),
                         {"ns": LOCK_NAMESPACE, "key": key})
            conn.commit()


SQLITE_SUFFIXES = ("", "-wal", "-shm")


def _owner_only(path: str) -> None:
    """The database file and SQLite's -wal and -shm beside it: 0600, whoever created them
    and with whatever umask (the database holds every SecretKey)."""
    for suffix in SQLITE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError, PermissionError):
            os.chmod(path + suffix, 0o600)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # isolation_level=None: the driver must not open transactions behind our back, so that
    # `BEGIN IMMEDIATE` above is the transaction.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def postgres_options(**settings: int | str) -> str:
    """A libpq `options` string setting server parameters for every session."""
    return " ".join(f"-c {name}={value}" for name, value in settings.items())


def make_engine(url: str, pool: PoolSize = API_POOL,
                application_name: str = "cls-shipper") -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        engine = create_engine(url, poolclass=NullPool if path == ":memory:" else None,
                               connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        if path and path != ":memory:":
            # After the pragmas: switching to WAL is what creates the -wal and -shm files.
            event.listen(engine, "connect", lambda *_: _owner_only(path))
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    options = postgres_options(statement_timeout=STATEMENT_TIMEOUT_MS,
                               idle_in_transaction_session_timeout=IDLE_IN_TRANSACTION_TIMEOUT_MS,
                               **TCP_KEEPALIVES)
    return create_engine(
        url, pool_size=pool.size, max_overflow=pool.overflow,
        # A connection the server closed (restart, failover, idle kill) is replaced at
        # checkout instead of failing the request that drew it.
        pool_pre_ping=True, pool_recycle=1800, pool_timeout=30,
        connect_args={"options": options, "application_name": application_name[:63],
                      "connect_timeout": 10})


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent). On PostgreSQL several processes
    may start at once: a session advisory lock lets one of them migrate while the others
    wait, then find the schema at head and do nothing. (A session lock, not a transaction
    lock: migrations may commit part-way, e.g. to build an index CONCURRENTLY.)"""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as conn:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            # Building an index over every log chunk may take long: no statement timeout.
            conn.execute(text("SET statement_timeout = 0"))
            conn.execute(text("SELECT pg_advisory_lock(:ns, :key)"),
                         {"ns": LOCK_NAMESPACE, "key": MIGRATION_LOCK})
            conn.commit()
        try:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            conn.commit()
        finally:
            if postgres:
                conn.rollback()
                conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"),
                             {"ns": LOCK_NAMESPACE, "key": MIGRATION_LOCK})
                conn.execute(text("RESET statement_timeout"))
                conn.commit()


def open_database(url: str, *, run_migrations: bool = True, pool: PoolSize = API_POOL,
                  application_name: str = "cls-shipper") -> Database:
    engine = make_engine(url, pool, application_name)
    if run_migrations:
        migrate(engine)
    return Database(engine)


def schema_current(db: Database) -> bool:
    """Whether the database's schema is at this version's newest migration (a node started
    by an older version, or whose database was restored from an older backup, is not)."""
    with db.read() as conn:
        return set(MigrationContext.configure(conn).get_current_heads()) == _heads()


@functools.cache
def _heads() -> frozenset[str]:
    """The newest migrations this version ships (read from the scripts once)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())

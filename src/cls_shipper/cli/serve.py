"""`cls-shipper serve`: the server, with the API and (by role) the scheduler and workers."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import stat
import threading
import time
from collections.abc import Generator
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvicorn

from cls_shipper.api.app import create_app
from cls_shipper.auth import keys as key_store
from cls_shipper.cli import demo as demo_module
from cls_shipper.cli.client import find_credentials
from cls_shipper.cli.common import ConfigFile, DatabaseUrl, DataDir, settings_from
from cls_shipper.cli.http_limits import header_limited
from cls_shipper.cli.tls import tls_options
from cls_shipper.errors import SettingsError
from cls_shipper.logformat import configure_logging
from cls_shipper.service import Context
from cls_shipper.settings import Settings
from cls_shipper.shipping.nodes import node_id_of
from cls_shipper.shipping.runtime import Engine
from cls_shipper.store import open_database
from cls_shipper.store.database import (
    API_POOL,
    MIGRATION_LOCK,
    SCHEDULER_POOL,
    WORKER_POOL,
    PoolSize,
    advisory_lock,
)

CREDENTIALS_FILE = "credentials.toml"


log = logging.getLogger("cls_shipper.serve")


def write_credentials(data_dir: Path, secret_id: str, secret_key: str) -> Path:
    path = data_dir / CREDENTIALS_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Created 0600 (not chmodded after writing), so the key is never readable by others.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(f'secret_id = "{secret_id}"\nsecret_key = "{secret_key}"\n')
    path.chmod(0o600)  # a file left by an older version may be looser
    return path


def prepare_data_dir(data_dir: Path) -> None:
    """Create the data directory for this user only (it holds every secret key); warn about
    an existing one others can read, without changing what an operator chose."""
    if not data_dir.exists():
        data_dir.mkdir(mode=0o700, parents=True)
        return
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        log.warning("data directory %s has mode %04o: other users can reach the database "
                    "and its secret keys; run chmod 700 on it", data_dir.resolve(), mode)


def pool_for(role: str) -> PoolSize:
    """Connections by role: an API node serves many requests at once; a worker node's own
    process only heartbeats (its worker processes have their own pools); a scheduler ticks."""
    return {"worker": WORKER_POOL, "scheduler": SCHEDULER_POOL}.get(role, API_POOL)


def prepare(settings: Settings) -> Context:
    """Open and migrate the database and make sure a root key exists."""
    prepare_data_dir(settings.data_dir)
    db = open_database(settings.db_url, pool=pool_for(settings.role),
                       application_name=f"cls-shipper {settings.role}")
    ctx = Context(db, settings)
    if settings.role not in ("all", "api"):
        return ctx  # only API nodes check signatures
    # Several API nodes may start together on a fresh database: one at a time installs
    # (or generates) the root key, so none fails on a duplicate and at most one generates.
    with advisory_lock(db, MIGRATION_LOCK):
        generated = key_store.ensure_root_key(ctx.db, settings.secret_id, settings.secret_key)
    if generated is not None:
        path = write_credentials(settings.data_dir, generated.secret_id, generated.secret_key)
        # Standard error is the server's log: the SecretKey stays in the 0600 file. One line,
        # so that a JSON log stays one object per line.
        log.warning("generated a root access key, SecretId: %s; it is stored with its "
                    "SecretKey in the database and in %s (mode 0600), where the cls-shipper "
                    "CLI reads it (--data-dir); SDKs sign with the pair from that file",
                    generated.secret_id, path)
    return ctx


def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on.")] = None,
    data_dir: DataDir = None,
    timezone: Annotated[str | None, typer.Option(help="Zone of legacy time strings.")] = None,
    min_interval: Annotated[int | None, typer.Option(
        help="Lowest shipper interval in seconds (default 300: whole minutes 300-900).")] = None,
    database_url: DatabaseUrl = None,
    object_store: Annotated[str | None, typer.Option(
        help="file:///dir or s3://?endpoint=... (default: <data-dir>/buckets).")] = None,
    role: Annotated[str | None, typer.Option(help="all | api | worker | scheduler")] = None,
    workers: Annotated[int | None, typer.Option(help="Shipping worker processes.")] = None,
    grace_period: Annotated[float | None, typer.Option(
        help="Seconds running tasks and requests get to finish on SIGTERM/SIGINT (default "
             "30); then tasks are handed back to the queue.")] = None,
    check_destination: Annotated[bool | None, typer.Option(
        help="Write and delete a probe object in a shipper's bucket when it is created or "
             "its destination modified (default on).")] = None,
    log_format: Annotated[str | None, typer.Option(
        help="text (default) or json: one object per line.")] = None,
    access_log: Annotated[bool | None, typer.Option(
        help="Log one line per request (default off).")] = None,
    ssl_certfile: Annotated[Path | None, typer.Option(
        help="Serve HTTPS with this certificate (PEM; may hold the key too).")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(
        help="The certificate's private key (PEM, unencrypted).")] = None,
    ssl_ca_certs: Annotated[Path | None, typer.Option(
        help="Require client certificates signed by these CAs (PEM).")] = None,
    config: ConfigFile = None,
    demo: Annotated[bool, typer.Option(help="Also run the demo: generated nginx logs "
                                       "shipped every few seconds.")] = False,
) -> None:
    """Run the cls-shipper server."""
    if demo and min_interval is None:
        min_interval = demo_module.DEMO_INTERVAL
    settings = settings_from(config, host=host, port=port, data_dir=data_dir, timezone=timezone,
                             min_interval=min_interval, database_url=database_url,
                             object_store=object_store, role=role, workers=workers,
                             grace_period=grace_period, check_destination=check_destination,
                             log_format=log_format, access_log=access_log,
                             ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile,
                             ssl_ca_certs=ssl_ca_certs)
    node_id = node_id_of()
    configure_logging(settings, node=node_id)
    try:
        tls = tls_options(settings) if settings.role in ("all", "api") else {}
    except SettingsError as exc:
        log.critical("cannot start: %s", exc.message)
        raise typer.Exit(2) from None
    # Files the server creates are this user's only: SQLite creates its -wal and -shm files
    # (and the local buckets their objects) with the process umask.
    os.umask(0o077)
    ctx = prepare(settings)
    engine = Engine(settings, ctx.db, node_id=node_id)
    stopper = _Stopper(engine)
    signal.signal(signal.SIGTERM, stopper)
    signal.signal(signal.SIGINT, stopper)
    stop = threading.Event()  # the demo's
    engine.start()
    try:
        if settings.role in ("all", "api"):
            if demo:
                secret_id, secret_key = find_credentials(settings.secret_id, settings.secret_key,
                                                         settings.data_dir)
                threading.Thread(target=demo_module.run, daemon=True, name="demo",
                                 args=(settings, secret_id, secret_key, stop)).start()
            app = create_app(settings, ctx)
            server = _Server(uvicorn.Config(
                app, host=settings.host, port=settings.port,
                http=header_limited(settings.max_header_bytes), log_level=settings.log_level,
                # Our formatter for uvicorn's loggers; our access log (the middleware's) in
                # place of uvicorn's, which quotes query strings.
                log_config=None, access_log=False, **tls,
                timeout_graceful_shutdown=max(1, int(settings.grace_period))))
            stopper.server = server
            server.run()
        else:
            # A worker or scheduler node has no HTTP surface: run until told to stop. It is
            # ready once its row is in the node registry (`cls-shipper status` shows it).
            if engine.heartbeat is not None:
                engine.heartbeat.registered.wait(30)
            log.info("node %s ready (role %s)", engine.node_id, settings.role)
            # Polled rather than an Event.wait: the handler must not take a lock the main
            # thread might hold at that moment.
            while not stopper.signals:
                time.sleep(0.2)
    finally:
        stop.set()
        engine.stop()
    log.info("node %s stopped cleanly", engine.node_id)


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: after its shutdown it re-raises the SIGTERM
    it caught, which kills the process before the engine has stopped (workers orphaned, the
    node left in the registry). `serve` installs one handler for every role instead."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class _Stopper:
    """SIGTERM and SIGINT on every role. The first begins a clean stop: HTTP takes no new
    connections and finishes the requests in flight, the scheduler stops, worker processes
    claim nothing more and get the grace period for their tasks. A second one hurries it:
    HTTP drops what is left, workers hand their tasks back now."""

    # A signal this soon after the first is the same request delivered twice (a terminal or
    # `make` passes it to the whole process group, a supervisor to the process too), not a
    # person asking to hurry: hurrying drops requests in flight.
    SAME_REQUEST_S = 1.0

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.server: uvicorn.Server | None = None
        self.signals = 0
        self.first_at = 0.0

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if self.signals and time.monotonic() - self.first_at < self.SAME_REQUEST_S:
            return
        if not self.signals:
            self.first_at = time.monotonic()
        self.signals += 1
        log.info("%s: %s", signal.Signals(signum).name,
                 "stopping" if self.signals == 1 else "hurrying the stop")
        self.engine.request_stop()
        if self.server is not None:
            self.server.should_exit = True
            if self.signals > 1:
                self.server.force_exit = True

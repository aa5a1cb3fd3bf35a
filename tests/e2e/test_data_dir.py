"""The data directory holds every SecretKey: a real server keeps it to its own user."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.helpers.server import ServerProcess, free_port


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture()
def fresh_server(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    """A server on a data directory it creates itself, generating its root key, started
    with a permissive umask; yields the data dir and its output."""
    data_dir, out = tmp_path / "var" / "data", tmp_path / "server.out"
    env = {k: v for k, v in os.environ.items()
           if k not in ("CLS_SHIPPER_SECRET_ID", "CLS_SHIPPER_SECRET_KEY")}
    port = free_port()
    old = os.umask(0o022)
    try:
        with out.open("wb") as sink:
            proc = subprocess.Popen([sys.executable, "-m", "cls_shipper", "serve", "--port",
                                     str(port), "--data-dir", str(data_dir)],
                                    env=env, stdout=sink, stderr=subprocess.STDOUT)
    finally:
        os.umask(old)
    try:
        for _ in range(300):
            assert proc.poll() is None, out.read_text()
            try:
                # A request that writes nothing but reads the database (opens -wal, -shm).
                httpx.get(f"http://127.0.0.1:{port}/logsets", timeout=1.0)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield data_dir, out
    finally:
        proc.terminate()
        proc.wait(15)


def test_data_dir_and_every_file_in_it_are_owner_only(
        fresh_server: tuple[Path, Path]) -> None:
    data_dir, out = fresh_server
    assert _mode(data_dir) == 0o700
    names = {p.name for p in data_dir.iterdir()}
    assert {"cls-shipper.db", "cls-shipper.db-wal", "cls-shipper.db-shm",
            "credentials.toml"} <= names
    loose = {p.name: oct(_mode(p)) for p in data_dir.iterdir() if _mode(p) & 0o077}
    assert loose == {}
    # The generated SecretKey is in the 0600 file, never in the server's output (its log).
    secret_key = tomllib.loads((data_dir / "credentials.toml").read_text())["secret_key"]
    assert secret_key not in out.read_text()


def test_an_existing_file_left_loose_is_tightened(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data")
    server.start()
    server.stop()
    database = tmp_path / "data" / "cls-shipper.db"
    database.chmod(0o644)
    server.start()
    try:
        assert _mode(database) == 0o600
    finally:
        server.stop()


def test_a_loose_existing_data_dir_gets_one_warning(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir(mode=0o755)
    os.chmod(tmp_path / "data", 0o755)
    server = ServerProcess(tmp_path / "data")
    server.start()
    server.stop()
    warnings = [line for line in server.log().splitlines() if "has mode 0755" in line]
    assert len(warnings) == 1 and "chmod 700" in warnings[0]

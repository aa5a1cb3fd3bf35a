"""`cls-shipper keys` works on an existing server's database, never on a new empty one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cls_shipper.auth.keys import list_keys
from cls_shipper.store import open_database


def _keys(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cls_shipper", "keys", *args],
                          capture_output=True, text=True, timeout=60)


def test_keys_create_refuses_a_data_dir_without_a_database(tmp_path: Path) -> None:
    for command in (["create"], ["list"], ["disable", "AKIDx"]):
        done = _keys(*command, "--data-dir", str(tmp_path))
        assert done.returncode != 0, command
        assert "no database in" in done.stderr and "SecretKey" not in done.stdout
    assert list(tmp_path.iterdir()) == []


def test_keys_create_adds_to_the_existing_database(tmp_path: Path) -> None:
    db = open_database(f"sqlite:///{tmp_path / 'cls-shipper.db'}")
    done = _keys("create", "--data-dir", str(tmp_path))
    assert done.returncode == 0, done.stderr
    secret_id = done.stdout.split("SecretId:", 1)[1].split()[0]
    assert [k.secret_id for k in list_keys(db)] == [secret_id]
    db.dispose()

"""The package as an operator installs it: a wheel built with `python -m build` from the
sources, installed with its dependencies into a fresh virtualenv, runs `cls-shipper serve`
(migrating a new database from the migrations it carries), answers the API, and stops
cleanly on SIGTERM. Takes a minute or two (the build and the install fetch from the package
index): one test."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.helpers.server import REPO, free_port

pytestmark = [pytest.mark.slow, pytest.mark.package]


def _clean_env() -> dict[str, str]:
    """This environment without what points at the checkout or configures a server."""
    return {k: v for k, v in os.environ.items()
            if k != "PYTHONPATH" and not k.upper().startswith("CLS_SHIPPER_")}


def _run(cmd: list[str], **kwargs: object) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, env=_clean_env(),
                          timeout=900, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


def test_the_wheel_installs_and_serves(tmp_path: Path) -> None:
    # Sources only: no build of the checkout (its compiled extension, caches) may leak in.
    source = tmp_path / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns(
        "*.so", "__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    _run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path / "dist"),
          str(source)])
    [wheel] = (tmp_path / "dist").glob("cls_shipper-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    migrations = {Path(n).name for n in names if "/store/migrations/versions/" in n}
    shipped = {p.name for p in (REPO / "src/cls_shipper/store/migrations/versions").glob("*.py")}
    assert shipped <= migrations and "cls_shipper/store/migrations/env.py" in names

    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(venv / "bin" / "pip"), "install", "--disable-pip-version-check", "-q",
          str(wheel)])
    where = _run([str(venv / "bin" / "python"), "-c",
                  "import cls_shipper; print(cls_shipper.__file__)"]).strip()
    assert where.startswith(str(venv)), where  # the installed package, not the checkout

    port, data = free_port(), tmp_path / "data"
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen(
        [str(venv / "bin" / "cls-shipper"), "serve", "--host", "127.0.0.1", "--port",
         str(port), "--data-dir", str(data)],
        env=_clean_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        answer = None
        deadline = time.monotonic() + 60
        while answer is None and time.monotonic() < deadline:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/logsets", timeout=2)
            except httpx.TransportError:
                time.sleep(0.2)
        assert answer is not None, (tmp_path / "serve.log").read_text()
        # Unsigned: the legacy API's own error, as JSON.
        assert answer.status_code == 400
        assert answer.json()["errorcode"] == "MissingAuthorization", answer.text
        assert (data / "cls-shipper.db").exists() and (data / "credentials.toml").exists()
        server.send_signal(signal.SIGTERM)
        assert server.wait(60) == 0
        assert "stopped cleanly" in (tmp_path / "serve.log").read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(10)
        log.close()

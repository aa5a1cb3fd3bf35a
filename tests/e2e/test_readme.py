"""The README works as printed: its `sh`/`bash` blocks run, in order, in one fresh
directory, the first one (the server) in the background. Only what the README names as
placeholders is substituted: the port 9400 (a free port here, so that the test never meets
another server) and `$PWD` (the directory, which is the test's). `make` (the bootstrap:
`make test` would run this suite inside itself) is the one block left out; the `.venv` it
would create is the interpreter running the tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.helpers.server import REPO, free_port

BLOCK = re.compile(r"^```(?:sh|bash)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def readme_blocks() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [b for b in BLOCK.findall(text) if not b.lstrip().startswith("make ")]


def test_readme_blocks_are_found() -> None:
    blocks = readme_blocks()
    assert "cls-shipper serve" in blocks[0]  # the server comes first
    assert len(blocks) >= 4 and all("9400" in b for b in blocks[:2])


def test_readme_tour_runs_as_written(tmp_path: Path) -> None:
    port = str(free_port())
    blocks = [b.replace("9400", port) for b in readme_blocks()]
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLS_SHIPPER_")
           or k == "CLS_SHIPPER_SDK_VENV"}
    server = subprocess.Popen(["bash", "-e", "-c", blocks[0]], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stdout.read().decode()  # type: ignore[union-attr]
            try:
                httpx.get(f"http://127.0.0.1:{port}/openapi.json", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the README's server did not start"
                time.sleep(0.3)
        tour = subprocess.run(["bash", "-e", "-c", "\n".join(blocks[1:])], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=240)
        assert tour.returncode == 0, f"{tour.stdout}\n{tour.stderr}"
        out = tour.stdout
        assert re.search(r"logset \S+  topic \S+  shipper \S+", out), out
        assert '"path":"/login"' in out.replace(" ", "") and "a plain text line" in out, out
        assert "clean: the bucket holds exactly what the ledger says" in out, out
        assert "tour" in out.splitlines()  # `shippers show --json | field ShipperName`
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)

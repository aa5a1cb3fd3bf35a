"""The deploy files cannot go stale: the example config names every setting with its
default, and the systemd units start `cls-shipper serve` with options it knows, in units
systemd accepts."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer

from cls_shipper.cli import app
from cls_shipper.settings import ENV_PREFIX, Settings, load_settings
from tests.helpers.server import REPO

DEPLOY = REPO / "deploy"
CONFIG = DEPLOY / "config.example.toml"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
ROLES = {"api", "worker", "scheduler"}


def test_the_example_config_lists_every_setting_with_its_default(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in list(os.environ):
        if variable.upper().startswith(ENV_PREFIX):
            monkeypatch.delenv(variable)  # the file alone decides
    text = CONFIG.read_text()
    values = tomllib.loads(text)
    commented = set(re.findall(r"^# ([a-z_]+) = ", text, re.M))
    fields = Settings.model_fields
    assert set(values) | commented == set(fields), "names no setting or misses one"
    assert not set(values) & commented
    for name in commented:  # only what has no value to write: unset by default
        assert fields[name].default is None, f"{name} has a default; write it out"
    loaded = load_settings(CONFIG)
    for name in values:
        assert getattr(loaded, name) == fields[name].default, name
    for line in text.splitlines():  # a one-line comment on each setting
        if re.match(r"^#? ?[a-z_]+ = ", line):
            assert re.search(r"\s# \S", line.split("=", 1)[1]), f"no comment: {line}"


def _serve_options() -> set[str]:
    # Typer's command objects (its click, which newer versions vendor): read, not typed.
    command: Any = typer.main.get_command(app)
    serve = command.commands["serve"]
    return {opt for param in serve.params for opt in (*param.opts, *param.secondary_opts)}


def _exec_start(unit: Path) -> list[str]:
    lines = [line.split("=", 1)[1] for line in unit.read_text().splitlines()
             if line.startswith("ExecStart=")]
    assert len(lines) == 1, unit
    return shlex.split(lines[0])


def test_the_units_start_serve_with_options_it_knows() -> None:
    assert {unit.stem.removeprefix("cls-shipper-") for unit in UNITS} == ROLES
    known = _serve_options()
    help_text = subprocess.run([sys.executable, "-m", "cls_shipper", "serve", "--help"],
                               capture_output=True, text=True, check=True,
                               env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"}).stdout
    for unit in UNITS:
        argv = _exec_start(unit)
        assert argv[0].endswith("/cls-shipper") and argv[1] == "serve", argv
        flags = [arg.split("=", 1)[0] for arg in argv[2:] if arg.startswith("-")]
        assert flags and set(flags) <= known, (unit.name, set(flags) - known)
        for flag in flags:
            assert flag in help_text, flag
        role = argv[argv.index("--role") + 1]
        assert f"cls-shipper-{role}.service" == unit.name
        text = unit.read_text()
        for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "User=cls-shipper",
                          "StateDirectory=cls-shipper", "EnvironmentFile=",
                          "KillMode=mixed"):
            assert hardening in text, (unit.name, hardening)


@pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                    reason="systemd-analyze is not installed on this machine")
def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    # The units name the binary where the docs install it; verify needs one that exists.
    binary = Path(sys.executable).parent / "cls-shipper"
    for unit in UNITS:
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text().replace("/opt/cls-shipper/bin/cls-shipper",
                                                 str(binary)))
        done = subprocess.run(["systemd-analyze", "verify", str(copy)],
                              capture_output=True, text=True)
        # verify exits 0 on many problems (an unknown key is "ignoring"): any word fails.
        assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), (
            unit.name, done.stdout, done.stderr)

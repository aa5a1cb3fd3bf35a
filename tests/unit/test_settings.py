"""Settings: a mistyped name stops the start, naming the closest valid one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cls_shipper.errors import SettingsError
from cls_shipper.settings import Settings, load_settings


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    return path


def test_unknown_file_key_names_the_closest_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"'min_intervall'.*did you mean 'min_interval'"):
        load_settings(_toml(tmp_path, "min_intervall = 60\n"))


def test_unknown_file_key_without_a_close_name(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"'zzz'.*operations guide"):
        load_settings(_toml(tmp_path, "zzz = 1\n"))


def test_dashed_file_keys_still_work(tmp_path: Path) -> None:
    assert load_settings(_toml(tmp_path, "min-interval = 60\n")).min_interval == 60


def test_unknown_variable_names_the_closest_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLS_SHIPPER_MIN_INTERVALL", "60")
    with pytest.raises(SettingsError, match=r"CLS_SHIPPER_MIN_INTERVALL.*"
                                            r"did you mean CLS_SHIPPER_MIN_INTERVAL\?"):
        load_settings()


def test_lowercase_variable_is_checked_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("cls_shipper_lease_secs", "60")
    with pytest.raises(SettingsError, match="CLS_SHIPPER_LEASE_SECONDS"):
        load_settings()


def test_known_variables_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLS_SHIPPER_MIN_INTERVAL", "60")
    monkeypatch.setenv("CLS_SHIPPER_ENDPOINT", "http://127.0.0.1:9400")
    monkeypatch.setenv("CLS_SHIPPER_LOG_LEVEL", "DEBUG")
    settings = load_settings()
    assert (settings.min_interval, settings.log_level) == (60, "debug")


def test_bad_value_is_a_settings_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLS_SHIPPER_LOG_LEVEL", "verbose")
    with pytest.raises(SettingsError, match="log_level"):
        load_settings()


def test_every_setting_is_documented() -> None:
    table = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    missing = [name for name in Settings.model_fields if f"`{name.upper()}`" not in table
               and f"{name.upper()}`" not in table]
    assert missing == []


def test_serve_refuses_a_mistyped_setting(tmp_path: Path) -> None:
    config = _toml(tmp_path, "min_intervall = 60\n")
    done = subprocess.run([sys.executable, "-m", "cls_shipper", "serve", "--data-dir",
                           str(tmp_path / "data"), "--config", str(config)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "min_intervall" in done.stderr and "min_interval'?" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "data").exists()

"""Options shared by the commands that open the server's data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cls_shipper.config import Settings, load_settings

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory "
                                              "(database, keys, local buckets).")]
ConfigFile = Annotated[Path | None, typer.Option("--config", envvar="CLS_SHIPPER_CONFIG",
                                                 help="TOML settings file.")]
DatabaseUrl = Annotated[str | None, typer.Option("--database-url",
                                                 help="postgresql://... (default: SQLite in "
                                                 "the data dir).")]


def settings_from(config: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, **overrides)
    except (ValueError, OSError) as exc:
        raise typer.BadParameter(str(exc)) from None

"""Server settings: command-line options override `CLS_SHIPPER_*` variables, which override a
TOML file (`--config` or `CLS_SHIPPER_CONFIG`), which overrides the defaults below."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["all", "api", "worker", "scheduler"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLS_SHIPPER_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=9400, ge=0, le=65535)
    data_dir: Path = Path("./data")
    timezone: str = "Asia/Shanghai"
    # Lowest accepted shipper interval in seconds. At the spec's 300 only whole minutes from
    # 300 to 900 are accepted; below 300 any whole number of seconds from here up to 900 is.
    min_interval: int = Field(default=300, ge=1, le=900)
    secret_id: str | None = None
    secret_key: str | None = None
    database_url: str | None = None
    object_store: str | None = None
    role: Role = "all"
    workers: int = Field(default=1, ge=0, le=64)
    # Largest accepted request body (bytes) outside log upload.
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    # Largest accepted upload body (bytes, compressed as sent).
    max_upload_bytes: int = Field(default=16 << 20, ge=1024)
    # Allowed clock skew for signatures, seconds.
    clock_skew: int = Field(default=900, ge=0)
    scheduler_tick: float = Field(default=1.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    retry_base_seconds: float = Field(default=2.0, gt=0)
    log_level: str = "info"
    # Quotas (spec §2.4 defaults): logsets in all, topics per logset, shippers per topic.
    quota_logsets: int = Field(default=20, ge=1)
    quota_topics: int = Field(default=10, ge=1)
    quota_shippers: int = Field(default=10, ge=1)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def db_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'cls-shipper.db').resolve()}"

    @property
    def object_store_url(self) -> str:
        if self.object_store:
            return self.object_store
        return (self.data_dir / "buckets").resolve().as_uri()


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults < TOML file < environment < explicit overrides (None = unset)."""
    file_values: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as fh:
            raw = tomllib.load(fh)
        file_values = {k.replace("-", "_"): v for k, v in raw.items()}
    env_settings = Settings()
    merged = {**file_values}
    for name in Settings.model_fields:
        if name in env_settings.model_fields_set:
            merged[name] = getattr(env_settings, name)
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return Settings.model_validate({**merged})

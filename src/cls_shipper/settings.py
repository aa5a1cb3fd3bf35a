"""Server settings: command-line options override `CLS_SHIPPER_*` variables, which override a
TOML file (`--config` or `CLS_SHIPPER_CONFIG`), which overrides the defaults below."""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from cls_shipper.errors import SettingsError

Role = Literal["all", "api", "worker", "scheduler"]
# The levels both the logging module and uvicorn know.
LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LogFormat = Literal["text", "json"]
ENV_PREFIX = "CLS_SHIPPER_"
DATABASE_FILE = "cls-shipper.db"
# `CLS_SHIPPER_*` variables that are not server settings: the settings file itself, the
# client commands' endpoint and TLS files, and the test suite's own (they are exported in
# the shell that runs the tests and the servers it starts).
OTHER_VARIABLES = frozenset({"config", "endpoint", "ca_file", "client_cert", "sdk_venv",
                             "test_database_url"})


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(default=9400, ge=0, le=65535)
    data_dir: Path = Path("./data")
    timezone: str = "Asia/Shanghai"
    # Lowest accepted shipper interval in seconds. At the spec's 300 only whole minutes from
    # 300 to 900 are accepted; below 300 any whole number of seconds from here up to 900 is.
    min_interval: int = Field(default=300, ge=1, le=900)
    secret_id: str | None = None
    secret_key: str | None = Field(default=None, repr=False)
    database_url: str | None = None
    object_store: str | None = None
    role: Role = "all"
    workers: int = Field(default=1, ge=0, le=64)
    # Largest accepted request body (bytes) outside log upload.
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    # Largest accepted request line plus headers (bytes); larger heads get 431.
    max_header_bytes: int = Field(default=32 << 10, ge=4096)
    # Largest accepted upload body (bytes, compressed as sent).
    max_upload_bytes: int = Field(default=16 << 20, ge=1024)
    # Bytes of request bodies being read at once, all connections together; beyond it a
    # request is refused (SpeedQuotaExceed / RequestLimitExceeded) before its body is read.
    # At least max_upload_bytes, or the largest upload could never be read.
    max_body_buffer_bytes: int = Field(default=256 << 20, ge=1024)
    # Seconds a request body may take to arrive in full; a slower one is cut off (408).
    body_timeout: float = Field(default=60.0, gt=0)
    # Bytes of stored logs decompressed by reads (GET /log) at once, all reads together; a
    # read waits for room. A single chunk larger than this is still read, alone.
    max_read_buffer_bytes: int = Field(default=128 << 20, ge=1 << 20)
    # Allowed clock skew for signatures, seconds.
    clock_skew: int = Field(default=900, ge=0)
    # Longest accepted q-sign signature span (q-sign-time end - start), seconds: how long a
    # captured legacy signature can be replayed. The SDKs sign for a few minutes.
    max_signature_seconds: int = Field(default=3600, ge=60)
    scheduler_tick: float = Field(default=1.0, gt=0)
    lease_seconds: float = Field(default=30.0, gt=0)
    # Times a worker may die (lease expired) on one window before it is failed, and attempts
    # of a failure that is neither an outage nor the destination's refusal (a bug, a codec).
    max_attempts: int = Field(default=5, ge=1)
    # Outages are retried with capped exponential backoff and full jitter (a random delay up
    # to min(cap, base * 2^(attempt-1))) until the deadline, counted from the window's first
    # attempt. The cap also bounds the probes of a blocked shipper's destination.
    retry_base_seconds: float = Field(default=2.0, gt=0)
    retry_backoff_cap_seconds: float = Field(default=300.0, gt=0)
    retry_deadline_seconds: float = Field(default=86_400.0, gt=0)
    log_level: LogLevel = "info"
    # text for people, json for machines: one object per line (docs/operations.md#logs).
    log_format: LogFormat = "text"
    # One line per request (method, route, status, duration, bytes, request id, client).
    access_log: bool = False
    # HTTPS: the server's certificate (PEM; it may hold the key too) and its key. With
    # ssl_ca_certs every client must present a certificate signed by one of those CAs.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_ca_certs: Path | None = None
    # On SIGTERM/SIGINT: how long running tasks (and HTTP requests) get to finish, seconds;
    # past it tasks are handed back to the queue unfinished.
    grace_period: float = Field(default=30.0, ge=0)
    # Write and delete a probe object when a shipper is created or its destination changed;
    # off for creating shippers offline, before their buckets exist.
    check_destination: bool = True
    # Days past a topic's retention that records a consumer group has not committed are
    # kept for it (0: consumer groups never hold records past retention). The bound keeps a
    # group nobody reads any more from filling the disk; the scheduler logs what it removes
    # uncommitted, and `cls-shipper status` shows each group's lag.
    consumer_hold_days: float = Field(default=7.0, ge=0, le=3650)
    # Quotas (spec §2.4 defaults): logsets in all, topics per logset, shippers per topic.
    quota_logsets: int = Field(default=20, ge=1)
    quota_topics: int = Field(default=10, ge=1)
    quota_shippers: int = Field(default=10, ge=1)
    # How long a console sign-in lasts, seconds; then the browser is sent back to sign in.
    console_session_seconds: int = Field(default=8 * 3600, ge=1)
    # Notifications (docs/operations.md#notifications): a webhook receiving a JSON event when
    # a window fails or recovers, a shipper is blocked or unblocked, or its lag passes
    # `notify_lag_seconds` (0: no lag events). Unset: no events are kept. Read by the node
    # leading the scheduler, which delivers them.
    notify_url: str | None = None
    # The HMAC-SHA256 key of the signature header; unset, deliveries are unsigned.
    notify_secret: str | None = Field(default=None, repr=False)
    notify_lag_seconds: float = Field(default=3600.0, ge=0)
    # A delivery is retried with capped exponential backoff and full jitter until this long
    # after the event, then given up (logged, counted).
    notify_deadline_seconds: float = Field(default=86_400.0, gt=0)
    notify_backoff_cap_seconds: float = Field(default=300.0, gt=0)
    # One delivery's time limit (connect, send, the receiver's answer).
    notify_timeout_seconds: float = Field(default=10.0, gt=0)
    # Events waiting for delivery, at most; beyond it the oldest are dropped (logged, counted).
    notify_max_pending: int = Field(default=10_000, ge=1)

    @model_validator(mode="after")
    def _buffer_holds_an_upload(self) -> Settings:
        if self.max_body_buffer_bytes < self.max_upload_bytes:
            raise ValueError(f"max_body_buffer_bytes ({self.max_body_buffer_bytes}) must be at "
                             f"least max_upload_bytes ({self.max_upload_bytes})")
        return self

    @model_validator(mode="after")
    def _tls_needs_a_certificate(self) -> Settings:
        if self.ssl_certfile is None and (self.ssl_keyfile or self.ssl_ca_certs):
            raise ValueError("ssl_keyfile and ssl_ca_certs need ssl_certfile (the server's "
                             "certificate)")
        return self

    @field_validator("notify_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if not value:
            return None  # an empty value (`notify_url = ""`) switches notifications off
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_level(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

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
        return f"sqlite:///{(self.data_dir / DATABASE_FILE).resolve()}"

    @property
    def object_store_url(self) -> str:
        if self.object_store:
            return self.object_store
        return (self.data_dir / "buckets").resolve().as_uri()


def _closest(name: str, valid: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, sorted(valid), n=1)
    return close[0] if close else None


_SEE_ALL = "; every setting is listed in the operations guide (docs/operations.md#settings)"


def check_names(file_keys: Iterable[str], config_file: Path | None,
                environ: Mapping[str, str]) -> None:
    """Refuse a key of the settings file or a `CLS_SHIPPER_*` variable that names no
    setting: a typo would otherwise leave the default in force without a word."""
    fields = set(Settings.model_fields)
    for key in file_keys:
        name = key.replace("-", "_")
        if name not in fields:
            close = _closest(name, fields)
            raise SettingsError(f"unknown setting {key!r} in {config_file}"
                                + (f"; did you mean {close!r}?" if close else _SEE_ALL))
    for variable in sorted(environ):
        # pydantic-settings reads the variables case-insensitively, so the check does too.
        if not variable.upper().startswith(ENV_PREFIX):
            continue
        name = variable[len(ENV_PREFIX):].lower()
        if name not in fields and name not in OTHER_VARIABLES:
            close = _closest(name, fields | OTHER_VARIABLES)
            raise SettingsError(
                f"unknown variable {variable}"
                + (f"; did you mean {ENV_PREFIX}{close.upper()}?" if close else _SEE_ALL))


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from defaults < TOML file < environment < explicit overrides (None = unset).
    Raises SettingsError for an unknown name or an invalid value, OSError for an unreadable
    file."""
    file_values: dict[str, Any] = {}
    file_keys: list[str] = []
    if config_file is not None:
        try:
            with config_file.open("rb") as fh:
                raw = tomllib.load(fh)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{config_file} is not valid TOML: {exc}") from None
        file_keys = list(raw)
        file_values = {k.replace("-", "_"): v for k, v in raw.items()}
    check_names(file_keys, config_file, os.environ)
    try:
        env_settings = Settings()
        merged = {**file_values}
        for name in Settings.model_fields:
            if name in env_settings.model_fields_set:
                merged[name] = getattr(env_settings, name)
        merged.update({k: v for k, v in overrides.items() if v is not None})
        return Settings.model_validate(merged)
    except ValidationError as exc:
        raise SettingsError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    """One line per bad setting, naming it (pydantic's own text carries URLs and types)."""
    return "; ".join(f"{'.'.join(str(p) for p in error['loc']) or 'settings'}: {error['msg']}"
                     for error in exc.errors())

"""Type stub of the C extension (src/cls_shipper/_wire.c)."""

from collections.abc import Callable, Sequence
from typing import Any

class ScanError(ValueError):
    """args: (kind, message); kind is an ErrorKind legacy code ("InvalidContent", …)."""

class Unsupported(ValueError):
    """Input whose outcome the Python path decides."""

def configure(
    *,
    max_logs_per_group: int,
    max_value_bytes: int,
    max_group_value_bytes: int,
    allowed_underscore_keys: Sequence[str],
    time_ms_low: int,
    time_ms_high: int,
    log_time_min: int,
    log_time_max: int,
    tags: dict[str, int],
) -> None: ...
def scan_log_group_list(buf: Any, /) -> tuple[int, int]: ...
def encode_json_lines(
    buf: Any, client_ip: str, meta_fields: Sequence[str], enable_tag: bool, /
) -> tuple[bytes, list[int], list[int]]: ...
def encode_lines(
    buf: bytes,
    start: int,
    eof: bool,
    mode: int,
    logs_room: int,
    value_room: int,
    have_logs: bool,
    fallback: Callable[[bytes], dict[str, str] | None],
    /,
) -> tuple[bytes, int, int, int, bool]: ...

"""Type stub of the C extension (src/cls_shipper/_wire.c)."""

from collections.abc import Sequence
from typing import Any

class ScanError(ValueError):
    """args: (kind, message); kind is an ErrorKind legacy code ("InvalidContent", …)."""

class Unsupported(ValueError):
    """Input whose outcome the Python path decides."""

def scan_log_group_list(buf: Any, /) -> tuple[int, int]: ...
def encode_json_lines(
    buf: Any, client_ip: str, meta_fields: Sequence[str], enable_tag: bool, /
) -> tuple[bytes, list[int], list[int]]: ...

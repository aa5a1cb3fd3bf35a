"""The C extension `cls_shipper._wire`, configured from the schema: import it from here.

The extension repeats no limit of the CLS rules; it is handed them once, here, at import,
and refuses to walk anything before. Its protobuf tags stay compile-time constants (its
walks switch on them); configure() compares them with the schema's and raises if any
differs, so a schema change cannot leave the C walks reading another format."""

from __future__ import annotations

from cls_shipper.ingest import schema
from cls_shipper.timefmt import MS_HIGH, MS_LOW

__all__ = ["wire"]

try:
    from cls_shipper import _wire as wire
except ImportError:  # built without a compiler: the Python paths do the work
    wire = None  # type: ignore[assignment]
else:
    wire.configure(
        max_logs_per_group=schema.MAX_LOGS_PER_GROUP,
        max_value_bytes=schema.MAX_VALUE_BYTES,
        max_group_value_bytes=schema.MAX_GROUP_VALUE_BYTES,
        allowed_underscore_keys=sorted(schema.ALLOWED_UNDERSCORE_KEYS),
        time_ms_low=MS_LOW,
        time_ms_high=MS_HIGH,
        log_time_min=schema.LOG_TIME_MIN,
        log_time_max=schema.LOG_TIME_MAX,
        tags=schema.wire_tags(),
    )

"""A topic's API 3.0 options (CreateTopic/ModifyTopic, spec §7.10): their names, documented
defaults and rules. They are stored in the topic's `options` column under these snake_case
names, so any layer can read them (the consumption code reads `auto_split` and
`max_split_partitions` next to the `partition_count` column).

Which of them change what the server does is in docs/compatibility.md: `storage_type` bounds
the retention, the rest is kept and returned as given (no tiering, encryption at rest, billing
or anonymous upload happens here)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from cls_shipper.errors import invalid

STORAGE_TYPES = ("hot", "cold")
PERMANENT_DAYS = 3640  # "3640 means permanent" (spec §7.10)
MAX_PERIOD_DAYS = 3600
MIN_COLD_PERIOD_DAYS = 7
MIN_HOT_PERIOD_DAYS = 7
MAX_SPLIT_PARTITIONS = 50  # the documented default; the bound where the doc gives none
MAX_DESCRIBES = 1024
ANONYMOUS_OPERATIONS = ("trackLog", "realtimeProducer")
MAX_CONDITIONS = 10


@dataclass(frozen=True, slots=True)
class TopicOptions:
    auto_split: bool = True
    max_split_partitions: int = MAX_SPLIT_PARTITIONS
    storage_type: str = "hot"
    describes: str = ""
    hot_period: int = 0
    encryption: int = 0
    kms_region: str = ""
    kms_key_id: str = ""
    biz_type: int = 0
    is_web_tracking: bool = False
    # AnonymousInfo: {"operations": [...], "conditions": [{"attributes", "rule",
    # "condition_value"}]}, or None when never given.
    anonymous_access: dict[str, Any] | None = None
    is_source_from: bool = False
    billing_mode: int = 0

    def stored(self) -> dict[str, Any]:
        return asdict(self)


NAMES = frozenset(TopicOptions.__dataclass_fields__)


def from_stored(data: dict[str, Any] | None) -> TopicOptions:
    """The stored options; names this version does not know are ignored, missing ones take
    the defaults (a topic created before options existed stores {})."""
    return TopicOptions(**{k: v for k, v in (data or {}).items() if k in NAMES})


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false")
    return value


def _int(name: str, value: Any, allowed: range) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise invalid(f"{name} must be a whole number from {allowed.start} to {allowed.stop - 1}")
    return value


def _text(name: str, value: Any, limit: int) -> str:
    if not isinstance(value, str) or len(value) > limit:
        raise invalid(f"{name} must be a string of at most {limit} characters")
    return value


def _anonymous(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid("Extends.AnonymousAccess must be an object")
    operations = value.get("operations") or []
    if not isinstance(operations, list) or any(o not in ANONYMOUS_OPERATIONS for o in operations):
        raise invalid("Extends.AnonymousAccess.Operations: each one of "
                      + ", ".join(ANONYMOUS_OPERATIONS))
    conditions = value.get("conditions") or []
    if not isinstance(conditions, list) or len(conditions) > MAX_CONDITIONS:
        raise invalid(f"Extends.AnonymousAccess.Conditions: at most {MAX_CONDITIONS}")
    for c in conditions:
        if not isinstance(c, dict) or c.get("attributes") != "VpcID" \
                or c.get("rule") not in (1, 2) or not isinstance(c.get("condition_value"), str):
            raise invalid("Extends.AnonymousAccess.Conditions: Attributes is VpcID, Rule 1 "
                          "(equals) or 2 (differs), ConditionValue a string")
    return {"operations": list(operations),
            "conditions": [{"attributes": c["attributes"], "rule": c["rule"],
                            "condition_value": c["condition_value"]} for c in conditions]}


def check_period(period: Any, storage_type: str) -> int:
    """Retention in days: 1-3600 (7-3600 for cold storage), or 3640 for permanent."""
    low = MIN_COLD_PERIOD_DAYS if storage_type == "cold" else 1
    if isinstance(period, bool) or not isinstance(period, int) \
            or not (low <= period <= MAX_PERIOD_DAYS or period == PERMANENT_DAYS):
        raise invalid(f"Period must be a whole number of days from {low} to {MAX_PERIOD_DAYS} "
                      f"({storage_type} storage), or {PERMANENT_DAYS} to keep logs forever")
    return period


def apply(current: TopicOptions, changes: dict[str, Any], *, creating: bool) -> TopicOptions:
    """`current` with `changes` (option name -> value, None = unchanged), each checked on
    its own; `check_topic` then checks them together with the partition count and period."""
    checks: dict[str, Callable[[Any], Any]] = {
        "auto_split": lambda v: _bool("AutoSplit", v),
        "max_split_partitions": lambda v: _int("MaxSplitPartitions", v,
                                               range(1, MAX_SPLIT_PARTITIONS + 1)),
        "storage_type": lambda v: v if v in STORAGE_TYPES else _fail(
            "StorageType must be hot (standard) or cold (infrequent access)"),
        "describes": lambda v: _text("Describes", v, MAX_DESCRIBES),
        "hot_period": lambda v: _int("HotPeriod", v, range(0, MAX_PERIOD_DAYS + 1)),
        "encryption": lambda v: _int("Encryption", v, range(0, 2) if creating else range(1, 2)),
        "kms_region": lambda v: _text("CustomKmsInfo.KmsRegion", v, 64),
        "kms_key_id": lambda v: _text("CustomKmsInfo.KmsKeyId", v, 128),
        "biz_type": lambda v: _int("BizType", v, range(0, 2)),
        "is_web_tracking": lambda v: _bool("IsWebTracking", v),
        "anonymous_access": _anonymous,
        "is_source_from": lambda v: _bool("IsSourceFrom", v),
        "billing_mode": lambda v: _int("BillingMode", v, range(0, 2)),
    }
    values: dict[str, Any] = {}
    for name, value in changes.items():
        if value is None:
            continue
        if name not in checks:
            raise invalid(f"unknown topic option {name!r}")
        values[name] = checks[name](value)
    if not creating and "biz_type" in values and values["biz_type"] != current.biz_type:
        raise invalid("BizType cannot be changed once the topic exists")
    return replace(current, **values)


def _fail(message: str) -> Any:
    raise invalid(message)


def check_topic(options: TopicOptions, partition_count: int, period: int) -> None:
    """The rules between options, the partition count and the effective retention."""
    # `period` may be inherited from the logset (whose own bound is 1-3640): only the cold
    # minimum is checked here; a Period given for the topic went through check_period.
    if options.storage_type == "cold" and period < MIN_COLD_PERIOD_DAYS:
        raise invalid(f"a cold topic keeps logs at least {MIN_COLD_PERIOD_DAYS} days; give a "
                      f"Period of {MIN_COLD_PERIOD_DAYS} or more (it is {period})")
    if options.hot_period:
        if options.storage_type != "hot":
            raise invalid("HotPeriod applies to hot storage only; give 0 for a cold topic")
        if not MIN_HOT_PERIOD_DAYS <= options.hot_period < period:
            raise invalid(f"HotPeriod must be 0 or from {MIN_HOT_PERIOD_DAYS} days to less than "
                          f"Period ({period})")
    if partition_count > options.max_split_partitions:
        raise invalid(f"PartitionCount ({partition_count}) must not exceed MaxSplitPartitions "
                      f"({options.max_split_partitions})")
    if (options.kms_region or options.kms_key_id) and options.encryption != 1:
        raise invalid("CustomKmsInfo applies with Encryption 1 only")

"""The rules on a shipper's configuration: every field's check, the defaults where a create
request is silent (spec §4.1, §7.4, §9), and `validate`, which applies them all. The HTTP
surfaces turn request fields into a `ShipperConfig` and call these; errors are ServiceErrors
that both APIs render."""

from __future__ import annotations

import re
from typing import Any

from cls_shipper.errors import invalid
from cls_shipper.model.shipper import (
    COMPRESS_FORMATS,
    CONTENT_FORMATS,
    LEGACY_JSON,
    META_FIELDS,
    PARQUET_TYPES,
    STORAGE_TYPES,
    Api,
    ContentInfo,
    CsvInfo,
    FilterRule,
    JsonInfo,
    ParquetKey,
    ShipperConfig,
    check_combination,
)
from cls_shipper.timefmt import parse_utc_offset

# API 3.0 allows only these escape characters for CSV (spec §7.8).
V3_ESCAPE_CHARS = ("'", '"', "")
MAX_FILTER_RULES = 5
_PREFIX_RE = re.compile(r"[0-9A-Za-z\-_/]{0,256}")
# Whole values are checked with fullmatch: `$` also matches before a trailing newline.
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
# strftime directives that render the same on every platform.
_STRFTIME_OK = set("YmdHMSyjUWaAbBpIz%")


# ---- validation of each field; the adapters call these with values taken from requests ----


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_string(name: str, value: Any, *, limit: int = 255, empty: bool = False) -> str:
    if not isinstance(value, str) or len(value) > limit or (not empty and not value.strip()):
        what = "a string" if empty else "a non-empty string"
        raise invalid(f"{name} must be {what} of at most {limit} characters")
    return value


def check_bucket(value: Any) -> str:
    bucket = check_string("bucket", value, limit=63)
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        raise invalid("bucket must be a bucket name: 3-63 lowercase letters, digits, '.' or '-' "
                      "(e.g. test-1250000001)")
    return bucket


def check_prefix(value: Any) -> str:
    if not isinstance(value, str) or not _PREFIX_RE.fullmatch(value):
        raise invalid("prefix may hold only 0-9 A-Z a-z - _ / and at most 256 characters")
    return value


def check_interval(value: Any, min_interval: int) -> int:
    if not _is_int(value):
        raise invalid("interval must be a whole number of seconds")
    if min_interval >= 300:
        if not (300 <= value <= 900 and value % 60 == 0):
            raise invalid("interval must be whole minutes from 300 to 900 seconds")
    elif not min_interval <= value <= 900:
        raise invalid(f"interval must be from {min_interval} to 900 seconds")
    return int(value)


def check_max_size(value: Any, api: Api) -> int:
    low = 100 if api == "legacy" else 5
    if not _is_int(value) or not low <= value <= 256:
        raise invalid(f"max_size must be a whole number of MB from {low} to 256")
    return int(value)


def check_partition(value: Any) -> str:
    text = check_string("partition", value, limit=256, empty=True)
    if "\\" in text or "\x00" in text or any(seg in (".", "..") for seg in text.split("/")):
        raise invalid("partition must not contain '.' or '..' path segments, '\\' or NUL")
    i = 0
    while i < len(text):
        if text[i] == "%":
            if i + 1 >= len(text) or text[i + 1] not in _STRFTIME_OK:
                bad = text[i:i + 2]
                raise invalid(f"partition has an unsupported strftime directive {bad!r}")
            i += 2
        else:
            i += 1
    return text


def check_compress(value: Any) -> str:
    if value not in COMPRESS_FORMATS:
        raise invalid(f"compress format must be one of {', '.join(COMPRESS_FORMATS)}")
    return str(value)


def check_csv(keys: Any, delimiter: Any, escape_char: Any, non_existing_field: Any,
              print_key: Any) -> CsvInfo:
    if not isinstance(keys, list) or not keys or not all(
            isinstance(k, str) and k for k in keys):
        raise invalid("csv keys must be a non-empty list of non-empty strings")
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\r\n":
        raise invalid("csv delimiter must be a single character (not a line break)")
    if not isinstance(escape_char, str) or len(escape_char) > 1 or escape_char == delimiter:
        raise invalid("csv escape_char must be one character other than the delimiter, or empty")
    if not isinstance(non_existing_field, str):
        raise invalid("csv non_existing_field must be a string")
    if not isinstance(print_key, bool):
        raise invalid("csv print_key must be a boolean")
    return CsvInfo(list(keys), delimiter, escape_char, non_existing_field, print_key)


def check_json(enable_tag: Any, meta_fields: Any, json_type: Any) -> JsonInfo:
    if not isinstance(enable_tag, bool):
        raise invalid("Json.EnableTag must be a boolean")
    fields = meta_fields if meta_fields is not None else []
    if not isinstance(fields, list) or any(f not in META_FIELDS for f in fields):
        raise invalid(f"Json.MetaFields may hold only {', '.join(META_FIELDS)}")
    kind = 0 if json_type is None else json_type
    if kind not in (0, 1) or isinstance(kind, bool):
        raise invalid("Json.JsonType must be 0 or 1")
    return JsonInfo(enable_tag, list(dict.fromkeys(fields)), int(kind))


def check_parquet(keys: Any) -> list[ParquetKey]:
    if not isinstance(keys, list) or not keys:
        raise invalid("Parquet.ParquetKeyInfo must be a non-empty list")
    out: list[ParquetKey] = []
    for item in keys:
        if not isinstance(item, ParquetKey):
            raise invalid("Parquet.ParquetKeyInfo items must be objects")
        check_string("KeyName", item.key_name)
        if item.key_type not in PARQUET_TYPES:
            raise invalid(f"KeyType must be one of {', '.join(PARQUET_TYPES)}")
        if not isinstance(item.key_non_existing_field, str):
            raise invalid("KeyNonExistingField must be a string")
        out.append(item)
    if len({k.key_name for k in out}) != len(out):
        raise invalid("Parquet key names must be unique")
    return out


def check_content(content: ContentInfo, api: Api) -> ContentInfo:
    if content.format not in CONTENT_FORMATS:
        raise invalid(f"content format must be one of {', '.join(CONTENT_FORMATS)}")
    if content.format == "csv" and content.csv is None:
        raise invalid("csv content needs csv_info")
    if content.format == "parquet":
        if content.parquet is None:
            raise invalid("parquet content needs ParquetKeyInfo")
        check_parquet(content.parquet)
    if content.format == "json" and content.json is None:
        return ContentInfo("json", json=LEGACY_JSON)
    return ContentInfo(
        content.format,
        csv=content.csv if content.format == "csv" else None,
        json=content.json if content.format == "json" else None,
        parquet=content.parquet if content.format == "parquet" else None,
    )


def check_filter_rules(rules: Any) -> list[FilterRule]:
    if not isinstance(rules, list) or len(rules) > MAX_FILTER_RULES:
        raise invalid(f"filter_rules must be a list of at most {MAX_FILTER_RULES} rules")
    out = []
    for rule in rules:
        if not isinstance(rule, FilterRule):
            raise invalid("each filter rule must be an object with key, regex and value")
        check_string("filter rule key", rule.key)
        check_string("filter rule regex", rule.regex, limit=1024)
        if not isinstance(rule.value, str):
            raise invalid("filter rule value must be a string")
        try:
            re.compile(rule.regex)
        except re.error as exc:
            raise invalid(f"filter rule regex {rule.regex!r} does not compile: {exc}") from None
        out.append(rule)
    return out


def check_filename_mode(value: Any) -> int:
    if value not in (0, 1) or isinstance(value, bool):
        raise invalid("FilenameMode must be 0 or 1")
    return int(value)


def check_storage_type(value: Any) -> str:
    if value not in STORAGE_TYPES:
        raise invalid(f"StorageType must be one of {', '.join(STORAGE_TYPES)}")
    return str(value)


def check_time_zone(value: Any) -> str:
    if value in ("", None):
        return ""
    if not isinstance(value, str):
        raise invalid("TimeZone must be a string such as UTC+08:00")
    try:
        parse_utc_offset(value)
    except ValueError as exc:
        raise invalid(str(exc)) from None
    return value


def validate(config: ShipperConfig, api: Api, min_interval: int) -> ShipperConfig:
    """Every rule on every field, in one place. Returns the normalised config."""
    check_combination(config.content.format, config.compress)
    if api == "v3" and config.content.csv is not None \
            and config.content.csv.escape_char not in V3_ESCAPE_CHARS:
        raise invalid("EscapeChar must be ', \" or empty")
    return ShipperConfig(
        topic_id=check_string("topic_id", config.topic_id, limit=64),
        bucket=check_bucket(config.bucket),
        prefix=check_prefix(config.prefix),
        shipper_name=check_string("shipper_name", config.shipper_name),
        interval=check_interval(config.interval, min_interval),
        max_size=check_max_size(config.max_size, api),
        partition=check_partition(config.partition),
        compress=check_compress(config.compress),
        content=check_content(config.content, api),
        filter_rules=check_filter_rules(config.filter_rules),
        filename_mode=check_filename_mode(config.filename_mode),
        storage_type=check_storage_type(config.storage_type),
        role_arn=check_string("RoleArn", config.role_arn, limit=1024, empty=True),
        external_id=check_string("ExternalId", config.external_id, limit=1024, empty=True),
        time_zone=check_time_zone(config.time_zone),
        dsl_filter=check_dsl_filter(config.dsl_filter),
    )


def check_dsl_filter(value: Any) -> str:
    # The CLS processing DSL is not implemented; accepting it silently would ship logs the
    # user meant to drop, so a non-empty one is refused.
    if value in ("", None):
        return ""
    raise invalid("DSLFilter is not supported by cls-shipper; use FilterRules instead")


def defaults(api: Api) -> dict[str, Any]:
    """Values for fields a create request leaves out (spec §4.1, §7.4, §9)."""
    return {
        "interval": 300,
        "max_size": 100 if api == "legacy" else 256,
        "partition": "%Y/%m/%d/%H/",
        "compress": "gzip",
        "content": ContentInfo("json", json=LEGACY_JSON if api == "legacy" else
                               JsonInfo(enable_tag=False, meta_fields=[], json_type=0)),
        "filter_rules": [],
        "filename_mode": 0,
        "storage_type": "STANDARD",
        "role_arn": "",
        "external_id": "",
        "time_zone": "",
        "dsl_filter": "",
    }

"""Console forms: reading a posted form within limits, turning its fields into the
arguments of the service calls the APIs make, and placing a service error's message at the
field it concerns. No rule is checked here: values go to the service as typed, and its
message is shown."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request

from cls_shipper.api.http import read_body
from cls_shipper.errors import Kinds, ServiceError, invalid
from cls_shipper.model.shipper import (
    ContentInfo,
    CsvInfo,
    FilterRule,
    JsonInfo,
    ParquetKey,
    ShipperConfig,
)
from cls_shipper.service.shipper_rules import MAX_FILTER_RULES
from cls_shipper.timefmt import parse_legacy

# A form is small; anything bigger is not one of ours.
MAX_FORM_BYTES = 64 << 10
MAX_FIELDS = 200


class Form(dict[str, str]):
    """A posted form: the last value of each field, and every value of repeated ones."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        super().__init__(pairs)
        self.multi: dict[str, list[str]] = {}
        for name, value in pairs:
            self.multi.setdefault(name, []).append(value)

    def all(self, name: str) -> list[str]:
        return self.multi.get(name, [])


async def read_form(request: Request) -> Form:
    raw = await read_body(request, MAX_FORM_BYTES)
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS,
                          strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        raise invalid("the form could not be read") from None
    return Form(pairs)


@dataclass
class FormErrors:
    """A service error placed at its field (or at the form when it names none)."""

    fields: dict[str, str] = field(default_factory=dict)
    form: str = ""

    def __bool__(self) -> bool:
        return bool(self.fields or self.form)


# How service messages begin, and the form field each concerns. The longest match wins.
_FIELD_OF = {
    "logset_name": "logset_name", "logset ": "logset_name", "logset_id": "logset_id",
    "period": "period", "topic_name": "topic_name", "topic '": "topic_name",
    "partition_count": "partition_count", "path": "path", "wild_path": "wild_path",
    "log_type": "log_type", "extract_rule": "extract_rule", "collection": "collection",
    "topic_id": "topic_id", "bucket": "bucket", "no permission to write to bucket": "bucket",
    "cannot check bucket": "bucket", "prefix": "prefix", "shipper_name": "shipper_name",
    "topic already has a shipper": "shipper_name", "interval": "interval",
    "max_size": "max_size", "partition ": "partition", "partition must": "partition",
    "compress format": "compress", "content format": "content_format",
    "csv content": "csv_keys", "csv keys": "csv_keys", "csv delimiter": "csv_delimiter",
    "csv escape_char": "csv_escape_char", "EscapeChar": "csv_escape_char",
    "csv non_existing_field": "csv_non_existing_field", "Json.MetaFields": "json_meta_fields",
    "Json.JsonType": "json_type", "Json.EnableTag": "json_enable_tag",
    "parquet content": "parquet_keys", "Parquet": "parquet_keys", "KeyName": "parquet_keys",
    "KeyType": "parquet_keys", "KeyNonExistingField": "parquet_keys",
    "filter_rules": "filter_rules", "filter rule": "filter_rules",
    "each filter rule": "filter_rules", "FilenameMode": "filename_mode",
    "StorageType": "storage_type", "RoleArn": "role_arn", "ExternalId": "external_id",
    "TimeZone": "time_zone", "time zone": "time_zone", "DSLFilter": "dsl_filter",
    "StartTime": "start_time", "EndTime": "end_time",
    # API 3.0's topic options and the tags of logsets and topics (service/topic_options.py,
    # service/tags.py).
    "Period": "period", "a cold topic": "period", "PartitionCount": "partition_count",
    "AutoSplit": "auto_split", "MaxSplitPartitions": "max_split_partitions",
    "Describes": "describes", "HotPeriod": "hot_period", "Encryption": "encryption",
    "CustomKmsInfo.KmsRegion": "kms_region", "CustomKmsInfo.KmsKeyId": "kms_key_id",
    "CustomKmsInfo applies": "kms_key_id", "BizType": "biz_type",
    "IsWebTracking": "is_web_tracking", "Extends.AnonymousAccess.Operations":
    "anonymous_operations", "Extends.AnonymousAccess": "anonymous_conditions",
    "IsSourceFrom": "is_source_from", "BillingMode": "billing_mode", "Tags": "tags",
}


def place(error: ServiceError, fields: set[str]) -> FormErrors:
    """Where the form shows `error`: at the field its message begins with, if the form has
    that field, else above the form."""
    best = ""
    for start in _FIELD_OF:
        if error.message.startswith(start) and len(start) > len(best) \
                and _FIELD_OF[start] in fields:
            best = start
    if best:
        return FormErrors(fields={_FIELD_OF[best]: error.message})
    return FormErrors(form=error.message)


def as_int(value: str) -> Any:
    """An integer when the text is one; else the text, for the service's rule to refuse
    with its own message."""
    text = value.strip()
    if text.lstrip("-").isdigit() and len(text) < 19:
        return int(text)
    return text


def as_time(value: str, zone: Any, name: str) -> int:
    """A `datetime-local` value (or the legacy form) in the server's zone, as epoch ms; 0
    when empty."""
    text = value.strip().replace("T", " ")
    if not text:
        return 0
    if len(text) == 16:
        text += ":00"
    try:
        return parse_legacy(text, zone)
    except ValueError:
        raise ServiceError(Kinds.INVALID_PARAM,
                           f"{name} must be a date and time (YYYY-MM-DD HH:MM:SS)") from None


def lines(value: str) -> list[str]:
    return [line.strip() for line in value.replace(",", "\n").splitlines() if line.strip()]


def extract_rule(value: str) -> Any:
    if not value.strip():
        return {}
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"extract_rule must be a JSON object: {exc}") from None


def extract_rule_text(rule: dict[str, Any]) -> str:
    return orjson.dumps(rule).decode() if rule else ""


def tags(value: str) -> list[dict[str, str]]:
    """`key=value` lines as API 3.0 Tags (a line without `=` is a key with an empty
    value); the service judges them."""
    found = []
    for line in value.splitlines():
        if line.strip():
            key, _, text = line.partition("=")
            found.append({"Key": key.strip(), "Value": text.strip()})
    return found


def tags_text(value: list[dict[str, str]]) -> str:
    return "\n".join(f"{t.get('Key', '')}={t.get('Value', '')}" for t in value)


# How a VPC condition of anonymous access is written in the form: `= vpc-…` (Rule 1,
# equals) or `!= vpc-…` (Rule 2, differs).
_RULE_OF = {"=": 1, "!=": 2}


def _conditions(value: str) -> list[dict[str, Any]]:
    found = []
    for line in value.splitlines():
        if line.strip():
            sign, _, vpc = line.strip().partition(" ")
            found.append({"attributes": "VpcID", "rule": _RULE_OF.get(sign, 0),
                          "condition_value": vpc.strip()})
    return found


TOPIC_OPTION_DEFAULTS: dict[str, Any] = {
    "auto_split": True, "max_split_partitions": 50, "storage_type": "hot", "describes": "",
    "hot_period": 0, "encryption": 0, "kms_region": "", "kms_key_id": "", "biz_type": 0,
    "is_web_tracking": False, "is_source_from": False, "billing_mode": 0,
    "anonymous_operations": [], "anonymous_conditions": "", "tags": ""}
TOPIC_FLAGS = ("collection", "auto_split", "is_web_tracking", "is_source_from")


def topic_options(form: Form, current: dict[str, Any] | None) -> dict[str, Any]:
    """The API 3.0 topic options a topic form sets (service/topic_options.py names).
    Modifying, an option left as it is goes as None (unchanged): API 3.0's ModifyTopic
    takes no Encryption 0 nor BizType, so only a change is sent."""
    operations = form.all("anonymous_operations")
    conditions = form.get("anonymous_conditions", "")
    options: dict[str, Any] = {
        "auto_split": form.get("auto_split") == "on",
        "max_split_partitions": as_int(form.get("max_split_partitions", "")),
        "storage_type": form.get("storage_type", ""), "describes": form.get("describes", ""),
        "hot_period": as_int(form.get("hot_period", "0") or "0"),
        "encryption": as_int(form.get("encryption", "0")),
        "kms_region": form.get("kms_region", ""), "kms_key_id": form.get("kms_key_id", ""),
        "biz_type": as_int(form.get("biz_type", "0")),
        "is_web_tracking": form.get("is_web_tracking") == "on",
        "anonymous_access": {"operations": operations, "conditions": _conditions(conditions)}
        if operations or conditions.strip() else None,
        "is_source_from": form.get("is_source_from") == "on",
        "billing_mode": as_int(form.get("billing_mode", "0")),
    }
    if current is None:
        return options
    options.pop("biz_type")
    for name in ("encryption", "kms_region", "kms_key_id"):
        if options[name] == current[name]:
            options[name] = None
    if options["anonymous_access"] is None and (current["anonymous_operations"]
                                                or current["anonymous_conditions"]):
        # Every operation and condition removed: anonymous access ends.
        options["anonymous_access"] = {"operations": [], "conditions": []}
    return options


def topic_option_values(options: Any) -> dict[str, Any]:
    """A topic form's values from a topic's TopicOptions."""
    anonymous = options.anonymous_access or {}
    return {
        "auto_split": options.auto_split, "max_split_partitions": options.max_split_partitions,
        "storage_type": options.storage_type, "describes": options.describes,
        "hot_period": options.hot_period, "encryption": options.encryption,
        "kms_region": options.kms_region, "kms_key_id": options.kms_key_id,
        "biz_type": options.biz_type, "is_web_tracking": options.is_web_tracking,
        "is_source_from": options.is_source_from, "billing_mode": options.billing_mode,
        "anonymous_operations": list(anonymous.get("operations", [])),
        "anonymous_conditions": "\n".join(
            f"{'=' if c.get('rule') == 1 else '!='} {c.get('condition_value', '')}"
            for c in anonymous.get("conditions", [])),
    }


def topic_form_values(form: Form) -> dict[str, Any]:
    """What the user typed in a topic form, to show it again with an error."""
    values: dict[str, Any] = dict(form)
    for flag in TOPIC_FLAGS:
        values[flag] = form.get(flag) == "on"
    values["anonymous_operations"] = form.all("anonymous_operations")
    return values


def _content(form: Form) -> ContentInfo:
    kind = form.get("content_format", "json")
    if kind == "csv":
        return ContentInfo("csv", csv=CsvInfo(
            lines(form.get("csv_keys", "")), form.get("csv_delimiter", ""),
            form.get("csv_escape_char", ""), form.get("csv_non_existing_field", ""),
            form.get("csv_print_key") == "on"))
    if kind == "parquet":
        keys = []
        for line in form.get("parquet_keys", "").splitlines():
            if not line.strip():
                continue
            name, _, rest = line.strip().partition(" ")
            key_type, _, default = rest.strip().partition(" ")
            keys.append(ParquetKey(name, key_type, default))
        return ContentInfo("parquet", parquet=keys)
    return ContentInfo(kind, json=JsonInfo(form.get("json_enable_tag") == "on",
                                           form.all("json_meta_fields"),
                                           as_int(form.get("json_type", "0"))))


def _filter_rules(form: Form) -> list[FilterRule]:
    rules = []
    for i in range(1, MAX_FILTER_RULES + 1):
        key, regex, value = (form.get(f"filter_{part}_{i}", "") for part in
                             ("key", "regex", "value"))
        if key or regex or value:
            rules.append(FilterRule(key, regex, value))
    return rules


def shipper_config(form: Form, topic_id: str) -> ShipperConfig:
    """The config a shipper form describes (every option of API 3.0's CreateShipper)."""
    return ShipperConfig(
        topic_id=topic_id, bucket=form.get("bucket", "").strip(),
        prefix=form.get("prefix", ""), shipper_name=form.get("shipper_name", ""),
        interval=as_int(form.get("interval", "")), max_size=as_int(form.get("max_size", "")),
        partition=form.get("partition", ""), compress=form.get("compress", ""),
        content=_content(form), filter_rules=_filter_rules(form),
        filename_mode=as_int(form.get("filename_mode", "0")),
        storage_type=form.get("storage_type", ""), role_arn=form.get("role_arn", ""),
        external_id=form.get("external_id", ""), time_zone=form.get("time_zone", ""),
        dsl_filter=form.get("dsl_filter", ""))


def shipper_fields(config: ShipperConfig) -> dict[str, Any]:
    """A shipper form's values from a config (to edit it, or the defaults to create one)."""
    content = config.content
    values: dict[str, Any] = {
        "topic_id": config.topic_id, "bucket": config.bucket, "prefix": config.prefix,
        "shipper_name": config.shipper_name, "interval": config.interval,
        "max_size": config.max_size, "partition": config.partition,
        "compress": config.compress, "content_format": content.format,
        "filename_mode": config.filename_mode, "storage_type": config.storage_type,
        "role_arn": config.role_arn, "external_id": config.external_id,
        "time_zone": config.time_zone, "dsl_filter": config.dsl_filter,
        "json_enable_tag": content.json.enable_tag if content.json else False,
        "json_meta_fields": content.json.meta_fields if content.json else [],
        "json_type": content.json.json_type if content.json else 0,
        "csv_keys": "\n".join(content.csv.keys) if content.csv else "",
        "csv_delimiter": content.csv.delimiter if content.csv else ",",
        "csv_escape_char": content.csv.escape_char if content.csv else '"',
        "csv_non_existing_field": content.csv.non_existing_field if content.csv else "",
        "csv_print_key": content.csv.print_key if content.csv else False,
        "parquet_keys": "\n".join(f"{k.key_name} {k.key_type} {k.key_non_existing_field}"
                                  .rstrip() for k in content.parquet or []),
    }
    for i, rule in enumerate(config.filter_rules, start=1):
        values.update({f"filter_key_{i}": rule.key, f"filter_regex_{i}": rule.regex,
                       f"filter_value_{i}": rule.value})
    return values


def shipper_form_values(form: Form) -> dict[str, Any]:
    """What the user typed, to show the form again with an error."""
    values: dict[str, Any] = dict(form)
    values["json_enable_tag"] = form.get("json_enable_tag") == "on"
    values["csv_print_key"] = form.get("csv_print_key") == "on"
    values["json_meta_fields"] = form.all("json_meta_fields")
    return values

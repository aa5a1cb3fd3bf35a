"""The JSON bodies of the legacy API (spec §4, §5), as declarative models. A field typed
`Any` is one whose value only the service judges (its error names the rule); typed fields are
checked here, as the legacy API always has."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from cls_shipper.api.legacy.requests import Body, optional

# ---- logsets and topics ----


class NewLogset(Body):
    logset_name: Any
    period: Any


class LogsetChanges(Body):
    logset_id: str
    logset_name: Any = None
    period: Any = None


class NewTopic(Body):
    logset_id: str
    topic_name: Any
    partition_count: Any = 1
    path: Any = ""
    wild_path: Any = ""
    log_type: Any = "minimalist_log"
    extract_rule: Any = None
    collection: Any = True


class TopicChanges(Body):
    topic_id: str
    topic_name: Any = optional()
    path: Any = optional()
    wild_path: Any = optional()
    collection: Any = optional()
    log_type: Any = optional()
    extract_rule: Any = optional()


# ---- a shipper's config ----


class Compress(Body, title="compress object"):
    format: str


class CsvOptions(Body, title="csv_info object"):
    print_key: Any
    keys: Any
    delimiter: Any
    escape_char: Any
    non_existing_field: Any


class JsonOptions(Body, title="json_info object"):
    """Extension: the API 3.0 JsonInfo in snake_case."""

    enable_tag: Any = True
    meta_fields: Any = Field(default_factory=list)
    json_type: Any = 0


class ParquetColumn(Body, title="parquet_key_info item"):
    key_name: str
    key_type: str
    key_non_existing_field: str = ""


class ParquetOptions(Body, title="parquet_info object"):
    """Extension: the API 3.0 ParquetInfo in snake_case."""

    parquet_key_info: list[ParquetColumn]


class Content(Body, title="content object"):
    format: str
    csv_info: CsvOptions = optional()
    json_info: JsonOptions = optional()
    parquet_info: ParquetOptions = optional()


class Rule(Body, title="filter rule"):
    key: str
    regex: str
    value: str


class ShipperFields(Body):
    """What creating and modifying a shipper share; an absent field is left as it is."""

    bucket: Any = optional()
    prefix: Any = optional()
    shipper_name: Any = optional()
    interval: Any = optional()
    max_size: Any = optional()
    partition: Any = optional()
    compress: Compress = optional()
    content: Content = optional()
    filter_rules: list[Rule] = optional()
    custom_uin: Any = None  # accepted for compatibility; there is one account here


class NewShipper(ShipperFields):
    topic_id: str
    bucket: Any
    prefix: Any
    shipper_name: Any


class ShipperChanges(ShipperFields):
    shipper_id: str
    effective: bool = optional()


# ---- tasks ----


class TaskRetry(Body):
    shipper_id: str
    task_id: str
    reload_config: bool = False


class FailedTasksRetry(Body):
    shipper_id: str
    reload_config: bool = False


# ---- consumption ----


class PullLog(Body):
    """`POST /pull_log` as the SDK's `LogClient.pull_logs` sends it (CamelCase, as CLS
    names these fields)."""

    PartitionId: int
    StartOffset: int = -1
    StartTime: int = 0
    Size: int = Field(default=1 << 20)
    CompressType: str = "snappy"
    EndTime: int | None = None
    Query: str | None = None

"""The request parameters of each API 3.0 action, as documented (spec §7, §7.10) and as the
official `tencentcloud-sdk-python-cls` models name them. These models check presence, names
and JSON types only; every rule on values lives in the service layer.

A parameter the model does not know is refused (UnknownParameter), so a misspelt option never
passes silently; that includes documented CLS options cls-shipper does not implement.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cls_shipper.errors import Kinds, ServiceError
from cls_shipper.inputs import INT64_MAX, INT64_MIN

# Every integer parameter: what the databases hold. A JSON body is checked for this already
# (check_json); the GET form's text is not, and an int beyond it reached SQLite (OverflowError)
# or PostgreSQL ("bigint out of range") as an InternalError. A plain `int` is refused in these
# models by a test, so no parameter can be added without the bound.
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
# The deepest dotted name the GET form accepts (`Content.Parquet.ParquetKeyInfo.0.KeyName` is
# five); unflattening is recursive, so the depth is bounded before it.
MAX_DEPTH = 32


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Tag(Params):
    Key: str
    Value: str


class Filter(Params):
    Key: str
    Values: list[str]


class FilterRuleInfo(Params):
    Key: str
    Regex: str
    Value: str


class CompressInfo(Params):
    Format: str


class CsvInfo(Params):
    PrintKey: bool
    Keys: list[str]
    Delimiter: str
    EscapeChar: str
    NonExistingField: str


class JsonInfo(Params):
    EnableTag: bool
    MetaFields: list[str] | None = None
    JsonType: Int64 | None = None


class ParquetKeyInfo(Params):
    KeyName: str
    KeyType: str
    KeyNonExistingField: str = ""


class ParquetInfo(Params):
    ParquetKeyInfo: list[ParquetKeyInfo]


class ContentInfo(Params):
    Format: str
    Csv: CsvInfo | None = None
    Json: JsonInfo | None = None
    Parquet: ParquetInfo | None = None


# ---- logsets ----

class CreateLogset(Params):
    LogsetName: str
    Tags: list[Tag] | None = None
    LogsetId: str | None = None


class DescribeLogsets(Params):
    Filters: list[Filter] | None = None
    Offset: Int64 = 0
    Limit: Int64 = 20


class ModifyLogset(Params):
    LogsetId: str
    LogsetName: str | None = None
    Tags: list[Tag] | None = None


class DeleteLogset(Params):
    LogsetId: str


# ---- topics ----

class KmsInfo(Params):
    KmsRegion: str | None = None
    KmsKeyId: str | None = None


class Condition(Params):
    Attributes: str
    Rule: Int64
    ConditionValue: str


class Anonymous(Params):
    Operations: list[str] | None = None
    Conditions: list[Condition] | None = None


class TopicExtends(Params):
    AnonymousAccess: Anonymous | None = None


class TopicOptions(Params):
    """The options CreateTopic and ModifyTopic share."""

    PartitionCount: Int64 | None = None
    Tags: list[Tag] | None = None
    AutoSplit: bool | None = None
    MaxSplitPartitions: Int64 | None = None
    StorageType: str | None = None
    Period: Int64 | None = None
    Describes: str | None = None
    HotPeriod: Int64 | None = None
    Encryption: Int64 | None = None
    CustomKmsInfo: KmsInfo | None = None
    IsWebTracking: bool | None = None
    Extends: TopicExtends | None = None
    IsSourceFrom: bool | None = None
    BillingMode: Int64 | None = None


class CreateTopic(TopicOptions):
    LogsetId: str
    TopicName: str
    BizType: Int64 | None = None
    TopicId: str | None = None


class DescribeTopics(Params):
    Filters: list[Filter] | None = None
    Offset: Int64 = 0
    Limit: Int64 = 20
    PreciseSearch: Int64 = 0
    BizType: Int64 | None = None


class ModifyTopic(TopicOptions):
    TopicId: str
    TopicName: str | None = None
    Status: bool | None = None
    CancelTopicAsyncTaskID: str | None = None


class DeleteTopic(Params):
    TopicId: str


# ---- shippers and tasks ----

class ShipperOptions(Params):
    """The options CreateShipper and ModifyShipper share."""

    Interval: Int64 | None = None
    MaxSize: Int64 | None = None
    FilterRules: list[FilterRuleInfo] | None = None
    Partition: str | None = None
    Compress: CompressInfo | None = None
    Content: ContentInfo | None = None
    FilenameMode: Int64 | None = None
    StorageType: str | None = None
    RoleArn: str | None = None
    ExternalId: str | None = None
    TimeZone: str | None = None
    DSLFilter: str | None = None


class CreateShipper(ShipperOptions):
    TopicId: str
    Bucket: str
    Prefix: str
    ShipperName: str
    StartTime: Int64 | None = None  # Unix seconds
    EndTime: Int64 | None = None


class ModifyShipper(ShipperOptions):
    ShipperId: str
    Bucket: str | None = None
    Prefix: str | None = None
    ShipperName: str | None = None
    Status: bool | None = None
    # Documented as not modifiable; known here so the refusal says so (not UnknownParameter).
    TopicId: str | None = None
    StartTime: Int64 | None = None
    EndTime: Int64 | None = None


class DescribeShippers(Params):
    Filters: list[Filter] | None = None
    Offset: Int64 = 0
    Limit: Int64 = 20
    PreciseSearch: Int64 = 0


class DeleteShipper(Params):
    ShipperId: str


class DescribeShipperTasks(Params):
    ShipperId: str
    StartTime: Int64  # milliseconds
    EndTime: Int64


class RetryShipperTask(Params):
    ShipperId: str
    TaskId: str


class UploadLog(Params):
    """From the X-CLS-* headers, not the body (which is the protobuf LogGroupList)."""

    TopicId: str
    HashKey: str | None = None
    CompressType: str | None = None


M = TypeVar("M", bound=Params)


def parse(model: type[M], data: Any, *, strict: bool = False) -> M:
    """`data` as `model`, or the ServiceError the API 3.0 gateway would answer. `strict`
    refuses values of another JSON type instead of converting them."""
    if not isinstance(data, dict):
        raise ServiceError(Kinds.WRONG_TYPE, "the request body must be a JSON object")
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or "body"
        if first["type"] == "missing":
            raise ServiceError(Kinds.MISSING_PARAM,
                               f"the required parameter `{name}` is missing") from None
        if first["type"] == "extra_forbidden":
            raise ServiceError(Kinds.UNKNOWN_PARAM,
                               f"the parameter `{name}` is not recognized") from None
        raise ServiceError(Kinds.WRONG_TYPE, f"the parameter `{name}`: {first['msg']}") from None


def unflatten(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Query-string parameters as the SDK flattens them for GET (`Filters.0.Values.1=x`)
    back into a JSON-like object; objects whose keys are all indexes become lists."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.split(".", MAX_DEPTH)
        if len(parts) > MAX_DEPTH:
            raise ServiceError(Kinds.WRONG_TYPE, f"the parameter `{key[:100]}`... nests more "
                                                 f"than {MAX_DEPTH} levels")
        node = root
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ServiceError(Kinds.WRONG_TYPE, f"the parameter `{key}` clashes with another")
            node = child
        if parts[-1] in node:
            raise ServiceError(Kinds.WRONG_TYPE, f"the parameter `{key}` is given twice")
        node[parts[-1]] = value
    return _lists(root)  # type: ignore[no-any-return]


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    items = {k: _lists(v) for k, v in node.items()}
    if items and all(k.isascii() and k.isdigit() and len(k) <= 6 for k in items):
        indexes = sorted(int(k) for k in items)
        if indexes != list(range(len(indexes))):
            raise ServiceError(Kinds.WRONG_TYPE,
                               "list parameters must be numbered from 0 without gaps")
        return [items[str(i)] for i in indexes]
    return items

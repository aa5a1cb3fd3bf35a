"""A shipper's configuration, one model for both APIs: the legacy snake_case fields and the
API 3.0 CamelCase ones are translated into this by the adapters, validated once by
`service.shipper_rules`, stored as JSON on the shipper and snapshotted onto every task.

Also the catalogue of what exists: content formats, codecs, and which pairs of them can be
written (`check_combination`), which the service checks on input and the encoder on output."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from cls_shipper.errors import invalid

Api = Literal["legacy", "v3"]
COMPRESS_FORMATS = ("gzip", "lzop", "snappy", "none", "zstd", "lz4")
CONTENT_FORMATS = ("json", "csv", "parquet")
META_FIELDS = ("__SOURCE__", "__FILENAME__", "__TIMESTAMP__", "__HOSTNAME__")
PARQUET_TYPES = ("string", "boolean", "int32", "int64", "float", "double")
# Parquet compresses inside the file, with the codecs Parquet defines (not lzop).
PARQUET_COMPRESS_FORMATS = ("snappy", "gzip", "zstd", "lz4", "none")
STORAGE_TYPES = ("STANDARD", "STANDARD_IA", "ARCHIVE", "DEEP_ARCHIVE", "MAZ_STANDARD",
                 "MAZ_STANDARD_IA", "INTELLIGENT_TIERING", "MAZ_INTELLIGENT_TIERING")


@dataclass(frozen=True, slots=True)
class FilterRule:
    key: str
    regex: str
    value: str


@dataclass(frozen=True, slots=True)
class CsvInfo:
    keys: list[str]
    delimiter: str
    escape_char: str
    non_existing_field: str
    print_key: bool


@dataclass(frozen=True, slots=True)
class JsonInfo:
    enable_tag: bool
    meta_fields: list[str]
    json_type: int  # 0: every value a string; 1: JSON objects and arrays are embedded


@dataclass(frozen=True, slots=True)
class ParquetKey:
    key_name: str
    key_type: str
    key_non_existing_field: str


@dataclass(frozen=True, slots=True)
class ContentInfo:
    format: str
    csv: CsvInfo | None = None
    json: JsonInfo | None = None
    parquet: list[ParquetKey] | None = None


# The legacy API's JSON has no options: ship every meta field and the tags.
LEGACY_JSON = JsonInfo(enable_tag=True, meta_fields=list(META_FIELDS), json_type=0)


@dataclass(frozen=True, slots=True)
class ShipperConfig:
    topic_id: str
    bucket: str
    prefix: str
    shipper_name: str
    interval: int
    max_size: int
    partition: str
    compress: str
    content: ContentInfo
    filter_rules: list[FilterRule] = field(default_factory=list)
    filename_mode: int = 0
    storage_type: str = "STANDARD"
    role_arn: str = ""
    external_id: str = ""
    time_zone: str = ""  # "" = the server's zone; else "UTC+08:00"
    dsl_filter: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ShipperConfig:
        content = data["content"]
        return ShipperConfig(
            **{k: v for k, v in data.items() if k not in ("content", "filter_rules")},
            content=ContentInfo(
                format=content["format"],
                csv=CsvInfo(**content["csv"]) if content.get("csv") else None,
                json=JsonInfo(**content["json"]) if content.get("json") else None,
                parquet=[ParquetKey(**k) for k in content["parquet"]]
                if content.get("parquet") is not None else None,
            ),
            filter_rules=[FilterRule(**r) for r in data.get("filter_rules", [])],
        )


def check_combination(content_format: str, compress: str) -> None:
    """Raise unless objects of this format can be written with this codec."""
    if content_format not in CONTENT_FORMATS:
        raise invalid(f"content format must be one of {', '.join(CONTENT_FORMATS)}")
    if compress not in COMPRESS_FORMATS:
        raise invalid(f"compress format must be one of {', '.join(COMPRESS_FORMATS)}")
    if content_format == "parquet" and compress not in PARQUET_COMPRESS_FORMATS:
        raise invalid(
            f"compress format {compress} is not available for parquet content: Parquet "
            f"compresses inside the file, choose one of {', '.join(PARQUET_COMPRESS_FORMATS)}")

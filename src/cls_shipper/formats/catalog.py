"""Which content format and codec pairs exist, and how their objects are named and typed.

Extensions follow CLS's one documented example (`…_132612782.gz`, spec §8.2) and §9: the
codec's extension alone for JSON lines and CSV, nothing for `none`; Parquet objects are
`.parquet` whatever the codec, because the codec is applied inside the file."""

from __future__ import annotations

from cls_shipper.service.shipper_config import ShipperConfig, check_combination

__all__ = ["CODEC_EXTENSIONS", "check_combination", "content_type", "file_extension"]

CODEC_EXTENSIONS = {
    "gzip": ".gz",
    "lzop": ".lzo",
    "snappy": ".snappy",
    "zstd": ".zst",
    "lz4": ".lz4",
    "none": "",
}
# A compressed object is typed as its container (a browser or `aws s3 cp` then saves it as
# is); declaring Content-Encoding instead would make HTTP clients decompress on download.
CODEC_MEDIA_TYPES = {
    "gzip": "application/gzip",
    "lzop": "application/x-lzop",
    "snappy": "application/x-snappy-framed",
    "zstd": "application/zstd",
    "lz4": "application/x-lz4",
}
FORMAT_MEDIA_TYPES = {
    "json": "application/x-ndjson",
    "csv": "text/csv; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}


def file_extension(config: ShipperConfig) -> str:
    """The object name's extension, with its dot ("" for uncompressed JSON lines or CSV)."""
    if config.content.format == "parquet":
        return ".parquet"
    return CODEC_EXTENSIONS[config.compress]


def content_type(config: ShipperConfig) -> str:
    if config.content.format == "parquet" or config.compress == "none":
        return FORMAT_MEDIA_TYPES[config.content.format]
    return CODEC_MEDIA_TYPES[config.compress]

"""Which content format and codec pairs exist, and how their objects are named and typed.

Extensions follow CLS's one documented example (`…_132612782.gz`, spec §8.2) and §9: the
codec's extension alone for JSON lines and CSV, nothing for `none`; Parquet objects are
`.parquet` whatever the codec, because the codec is applied inside the file."""

from __future__ import annotations

from cls_shipper.errors import invalid
from cls_shipper.formats.parquetfmt import PARQUET_COMPRESSION
from cls_shipper.service.shipper_config import COMPRESS_FORMATS, CONTENT_FORMATS, ShipperConfig

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


def check_combination(content_format: str, compress: str) -> None:
    """Raise `invalid(...)` unless objects of this format can be written with this codec."""
    if content_format not in CONTENT_FORMATS:
        raise invalid(f"content format must be one of {', '.join(CONTENT_FORMATS)}")
    if compress not in COMPRESS_FORMATS:
        raise invalid(f"compress format must be one of {', '.join(COMPRESS_FORMATS)}")
    if content_format == "parquet" and compress not in PARQUET_COMPRESSION:
        raise invalid(
            f"compress format {compress} is not available for parquet content: Parquet "
            f"compresses inside the file, choose one of {', '.join(PARQUET_COMPRESSION)}")


def file_extension(config: ShipperConfig) -> str:
    """The object name's extension, with its dot ("" for uncompressed JSON lines or CSV)."""
    if config.content.format == "parquet":
        return ".parquet"
    return CODEC_EXTENSIONS[config.compress]


def content_type(config: ShipperConfig) -> str:
    if config.content.format == "parquet" or config.compress == "none":
        return FORMAT_MEDIA_TYPES[config.content.format]
    return CODEC_MEDIA_TYPES[config.compress]

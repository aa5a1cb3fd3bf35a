"""Everything between a window's stored LogGroupList chunks and the compressed objects that
ship it: record decoding, filter rules, the JSON lines / CSV / Parquet encoders, the codecs,
and the window encoder the shipping engine calls (`window.encode_window`)."""

from cls_shipper.formats.catalog import check_combination, content_type, file_extension
from cls_shipper.formats.window import PartResult, PartWriter, WindowResult, encode_window

__all__ = ["PartResult", "PartWriter", "WindowResult", "check_combination", "content_type",
           "encode_window", "file_extension"]

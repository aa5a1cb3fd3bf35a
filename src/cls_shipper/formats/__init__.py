"""Everything between a window's stored LogGroupList chunks and the compressed objects that
ship it: record decoding, filter rules, the JSON lines / CSV / Parquet encoders, the codecs,
and the window encoder the shipping engine calls (`encoder.encode_window`)."""

from cls_shipper.formats.encoder import PartResult, WindowResult, encode_window

__all__ = ["PartResult", "WindowResult", "encode_window"]

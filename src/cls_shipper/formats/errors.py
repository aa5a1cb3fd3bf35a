"""Errors of the formats package. The engine records `str(error)` on the task, so each
message says what went wrong and what to do about it."""

from __future__ import annotations


class FormatError(Exception):
    """Base of every error raised while turning stored chunks into shipped objects."""


class CorruptChunkError(FormatError):
    """A stored chunk is not a decodable LogGroupList. Retrying will not help."""


class CodecUnavailableError(FormatError):
    """A codec needs a system library that this machine does not have."""

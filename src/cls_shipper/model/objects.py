"""What a shipped object is, seen from each side: the writer the encoder streams a part into
(`ObjectWriter`, which every sink provides), what the writer reports once the object is
visible (`WrittenObject`), and what the task ledger records of it (`ShippedObject`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

# What an object of a task holds: a part of the window in the shipper's format, or the
# window's rejects (the records no format could write, JSON lines; see formats/encoder.py).
ObjectKind = Literal["part", "rejects"]


@dataclass(frozen=True, slots=True)
class WrittenObject:
    bucket: str
    key: str
    size: int
    md5: str  # hex digest of the object bytes
    sha256: str  # hex digest of the object bytes


class ObjectWriter(Protocol):
    """One object being written: bytes in pieces, then visible whole or not at all."""

    def write(self, data: bytes) -> None: ...

    def close(self) -> WrittenObject:
        """Make the object visible under its key; a reader never sees a partial object."""
        ...

    def abort(self) -> None:
        """Discard everything written; safe after a failure and after close."""
        ...


@dataclass(frozen=True, slots=True)
class ShippedObject:
    """One object of a task as the ledger records it (and `GET /task` shows it)."""

    key: str
    size: int
    md5: str
    sha256: str
    records: int
    raw_bytes: int  # the uncompressed encoding's size
    kind: ObjectKind = "part"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ShippedObject:
        # Objects recorded before rejects existed are all parts.
        return ShippedObject(key=data["key"], size=data["size"], md5=data["md5"],
                             sha256=data.get("sha256", ""), records=data.get("records", 0),
                             raw_bytes=data.get("raw_bytes", 0),
                             kind="rejects" if data.get("kind") == "rejects" else "part")

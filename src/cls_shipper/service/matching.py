"""How list filters match (API 3.0 Describe* Filters): a name filter matches by substring
unless exact matching is asked for; values of one filter are ORed, filters are ANDed; tag
filters match a tag key, or a key with one of the given values."""

from __future__ import annotations

from dataclasses import dataclass, field


def text_matches(value: str, wanted: list[str] | None, exact: bool) -> bool:
    if wanted is None:
        return True
    return value in wanted if exact else any(w in value for w in wanted)


def id_matches(value: str, wanted: list[str] | None) -> bool:
    return wanted is None or value in wanted


@dataclass(frozen=True, slots=True)
class TagFilter:
    keys: list[str] | None = None  # any of these tag keys present
    values: dict[str, list[str]] = field(default_factory=dict)  # key -> any of these values

    def matches(self, tags: list[dict[str, str]]) -> bool:
        pairs = {(t.get("Key"), t.get("Value")) for t in tags}
        present = {t.get("Key") for t in tags}
        if self.keys is not None and not present & set(self.keys):
            return False
        return all(any((key, v) in pairs for v in values) for key, values in self.values.items())

"""Filter rules (spec §8.5): up to five rules, ANDed. A rule applies its regex with
`re.search` to the value of its key; it matches when the first capture group (the whole
match when the regex has no group) equals the rule's value. A record without the key does
not match. Keys resolve as in `records.column` (`__CONTENT__` is a content key; the
reserved meta names and `__TAG__.name` work too)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cls_shipper.formats.records import Batch, column
from cls_shipper.model.shipper import FilterRule


@dataclass(frozen=True, slots=True)
class _Rule:
    key: str
    pattern: re.Pattern[str]
    group: int
    value: str

    def matches(self, text: str | None) -> bool:
        if text is None:
            return False
        found = self.pattern.search(text)
        # A group that did not take part in the match yields None, which equals no value.
        return found is not None and found.group(self.group) == self.value


class RecordFilter:
    """Keeps the records every rule matches and counts the ones it drops."""

    def __init__(self, rules: Sequence[FilterRule]) -> None:
        self._rules = [
            _Rule(r.key, pattern, 1 if pattern.groups else 0, r.value)
            for r in rules
            for pattern in (re.compile(r.regex),)
        ]
        self.dropped = 0

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def keeps(self, batch: Batch) -> list[bool]:
        """For each record of the batch, whether every rule matches it (counts nothing)."""
        keep = [True] * len(batch)
        for rule in self._rules:
            values = column(batch, rule.key, None)
            matches = rule.matches
            keep = [k and matches(v) for k, v in zip(keep, values, strict=True)]
        return keep

    def apply(self, batch: Batch) -> Batch:
        """The batch with only the matching records (the same object when all match)."""
        if not self._rules:
            return batch
        keep = self.keeps(batch)
        kept = sum(keep)
        if kept == len(keep):
            return batch
        self.dropped += len(keep) - kept
        return Batch(
            batch.meta,
            [t for t, k in zip(batch.times, keep, strict=True) if k],
            [r for r, k in zip(batch.rows, keep, strict=True) if k],
        )

"""CSV (spec §4.8 csv_info, §8.3): one line per record, the columns `keys` in order.

Quoting: with an `escape_char` q, a field containing the delimiter, q, CR or LF is wrapped
in q and every q inside is doubled (RFC 4180 style with q as the quote), so the file reads
back with Python's csv module given delimiter=d, quotechar=q, doublequote=True. With an
empty `escape_char` nothing is ever quoted: fields are joined as they are, which is CLS's
"raw" shipping (keys=["__CONTENT__"], no escape) where a multi-line log stays multi-line.
A missing key, or a group without filename/hostname, gets `non_existing_field`. Lines end
with LF; the header row (`print_key`) uses the same quoting."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence

from cls_shipper.formats.records import Batch, column
from cls_shipper.model.shipper import CsvInfo


class _Lines:
    """A file-like target for csv.writer: the writer calls write() once per row."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.write = self.lines.append


class CsvEncoder:
    def __init__(self, info: CsvInfo) -> None:
        self._keys = list(info.keys)
        self._filler = info.non_existing_field
        self._delimiter = info.delimiter
        self._quote = info.escape_char
        self.header = self._encode_rows([self._keys])[0] if info.print_key else b""

    def _encode_rows(self, rows: Iterable[Sequence[str]]) -> list[bytes]:
        if not self._quote:
            join = self._delimiter.join
            return [(join(row) + "\n").encode() for row in rows]
        target = _Lines()
        # csv.writer quotes a field holding the delimiter, the quote or a character of the
        # line terminator. With "\n" alone a bare CR would go unquoted and split the record
        # on reading, so the writer ends rows with CRLF and we swap that for LF.
        writer = csv.writer(target, delimiter=self._delimiter, quotechar=self._quote,
                            doublequote=True, quoting=csv.QUOTE_MINIMAL,
                            lineterminator="\r\n")
        writer.writerows(rows)
        return [(line[:-2] + "\n").encode() for line in target.lines]

    def encode(self, batch: Batch) -> list[bytes]:
        columns = [column(batch, key, self._filler) for key in self._keys]
        return self._encode_rows(zip(*columns, strict=True))

"""CSV/TSV (record by record, so a ragged, non-UTF-8 or badly quoted row is quarantined alone) and Parquet.

CSV rows are records after the header line; blank lines are not rows. A quote that is never closed would
make Python's csv module swallow the lines after it into one field: such a record (a csv error, or a
multi-line record with the wrong number of fields) sends only its first physical line to quarantine, and
reading starts again at the next line, so the good rows after it are kept.
"""

from __future__ import annotations

import csv
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.readers.builder import Batch, RecordBuilder
from pipeline.readers.jsonl import add_mapping
from pipeline.readers.streams import (
    STREAM_ERRORS,
    BadFile,
    Encoding,
    has_surrogates,
    magic_codec,
    open_text,
    sniff_encoding,
)
from schemas.config import SourceConfig

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))

MAX_RECORD_LINES = 1000  # a quoted field spanning more physical lines than this is an unclosed quote


class _Lines:
    """Physical lines with their numbers, with push-back: the lines the csv reader took for the record
    being parsed are kept in `taken`, so a bad record can give back all but its first line."""

    def __init__(self, text: Iterable[str]) -> None:
        self._it = iter(text)
        self._back: deque[tuple[int, str]] = deque()
        self._next = 1
        self.taken: list[tuple[int, str]] = []

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self._back:
            item = self._back.popleft()
        else:
            item = (self._next, next(self._it))
            self._next += 1
        self.taken.append(item)
        if len(self.taken) > MAX_RECORD_LINES:
            raise csv.Error(f"a quoted field runs over more than {MAX_RECORD_LINES} lines")
        return item[1]

    @property
    def line(self) -> int:
        return self._next - 1

    def take(self) -> list[tuple[int, str]]:
        taken, self.taken = self.taken, []
        return taken

    def give_back(self, lines: list[tuple[int, str]]) -> None:
        self._back.extendleft(reversed(lines))


class CsvRecords:
    """Records of a CSV/TSV text as (first line, fields or None, raw text, reason of a bad record).

    Set `width` (the header's field count) after the header: a multi-line record of another width is then
    treated as an unclosed quote.
    """

    def __init__(self, text: Iterable[str], delimiter: str, quoting: int) -> None:
        self._lines = _Lines(text)
        self._fmt = {"delimiter": delimiter, "quoting": quoting, "strict": True}
        self.width: int | None = None

    @property
    def line(self) -> int:
        """The last physical line read."""
        return self._lines.line

    def __iter__(self) -> Iterator[tuple[int, list[str] | None, str, str | None]]:
        lines = self._lines
        while True:
            reader = csv.reader(lines, **self._fmt)
            try:
                for values in reader:
                    taken = lines.take()
                    if len(taken) > 1 and self.width is not None and len(values) != self.width:
                        yield self._unquote(taken, "ragged multi-line record")
                        break
                    yield taken[0][0], values, "".join(t for _, t in taken), None
                else:
                    return
            except csv.Error as exc:
                taken = lines.take()
                if not taken:
                    return
                yield self._unquote(taken, str(exc))

    def _unquote(self, taken: list[tuple[int, str]], why: str) -> tuple[int, None, str, str]:
        """The first line of a bad record alone; its other lines are read again."""
        self._lines.give_back(taken[1:])
        first, raw = taken[0]
        return first, None, raw, f"bad_quoting: {why}; an unclosed quote? (only this line is quarantined)"


def read_csv(path: Path, src: SourceConfig, builder: RecordBuilder, tsv: bool) -> Iterator[Batch]:
    """Parse a CSV or TSV file with a header line into Record batches."""
    delimiter = src.delimiter or ("\t" if tsv else ",")
    # TSV files in the wild rarely quote; treating quotes as data avoids swallowing lines.
    quoting = csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL
    enc = sniff_encoding(path)
    with open_text(path, enc, newline="") as text:
        records = CsvRecords(text, delimiter, quoting)
        it = iter(records)
        try:
            header = _header(it, builder, enc)
            if header is None:
                yield from builder.drain()
                return
            records.width = len(header)
            for line, values, raw, why in it:
                if values is not None and (not values or values == [""]):
                    continue  # a blank line is not a row
                builder.read()
                reason = why or _row_problem(values, raw, len(header), enc)
                if reason is not None:
                    builder.bad(line, reason, raw)
                    continue
                add_mapping(line, dict(zip(header, values, strict=True)), src, builder, raw)  # type: ignore[arg-type]
                if builder.ready():
                    yield builder.flush()
        except STREAM_ERRORS as exc:
            builder.file_error(f"corrupt_file: truncated or corrupt after line {records.line}: {exc}")
    yield from builder.drain()


def _header(
    it: Iterator[tuple[int, list[str] | None, str, str | None]], builder: RecordBuilder, enc: Encoding
) -> list[str] | None:
    """The header's column names, or None after quarantining why the file cannot be read."""
    for line, values, raw, why in it:
        if values is not None and (not values or values == [""]):
            continue
        if values is None or has_surrogates(raw):
            builder.file_error(f"bad_header: {why or f'not valid {enc.python.upper()}'}", line, raw)
            return None
        header = [h.lstrip("\ufeff").strip() for h in values]
        seen: dict[str, int] = {}
        for i, h in enumerate(header, start=1):
            if h and h in seen:
                builder.file_error(
                    f"duplicate_column: the header names '{h}' twice (columns {seen[h]} and {i}); "
                    "rename one: the file is not read",
                    line,
                    raw,
                )
                return None
            seen.setdefault(h, i)
        return header
    builder.file_error("empty_file: no header line")
    return None


def _row_problem(values: list[str] | None, raw: str, width: int, enc: Encoding) -> str | None:
    if has_surrogates(raw):
        return f"invalid_{enc.label}: the row has bytes that are not {enc.python.upper()}"
    if "\x00" in raw:
        return "nul_byte: the row holds a NUL byte (binary data, or UTF-16 without a byte-order mark?)"
    if values is not None and len(values) != width:
        return f"ragged_row: expected {width} fields (as the header), got {len(values)}"
    return None


def read_parquet(path: Path, src: SourceConfig, builder: RecordBuilder) -> Iterator[Batch]:
    """Read a Parquet file row group by row group into Record batches; a corrupt row group is quarantined
    (one row, its first row number as line) and the next one is read."""
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        builder.file_error(f"corrupt_file: not a readable Parquet file: {_first_line(exc)}{_hint(path)}")
        yield from builder.drain()
        return
    names = pf.schema_arrow.names
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        builder.file_error(f"duplicate_column: columns named twice: {', '.join(map(repr, dups))}; not read")
        yield from builder.drain()
        return
    row = 0
    for g in range(pf.num_row_groups):
        start, size = row, pf.metadata.row_group(g).num_rows
        try:
            for batch in pf.iter_batches(batch_size=min(builder.shard_rows, 65_536), row_groups=[g]):
                rows, bad_text = _batch_rows(batch)
                builder.read(len(rows))
                for k, obj in enumerate(rows):
                    row += 1
                    if k in bad_text:
                        builder.bad(row, f"invalid_utf8: column '{bad_text[k]}' is not valid UTF-8", None)
                    else:
                        add_mapping(row, obj, src, builder, None)
                    if builder.ready():
                        yield builder.flush()
        except (pa.ArrowException, OSError) as exc:
            builder.file_error(
                f"corrupt_file: row group {g} (rows {start + 1}-{start + size}) unreadable after row {row}: "
                f"{_first_line(exc)}",
                row + 1,
            )
            row = start + size
    yield from builder.drain()


def _batch_rows(batch: pa.RecordBatch) -> tuple[list[dict], dict[int, str]]:
    """The batch's rows as dicts, and {row index in batch: column} of string values that are not UTF-8
    (Parquet does not check them on write; such a row is quarantined, not the batch)."""
    try:
        return batch.to_pylist(), {}
    except UnicodeDecodeError:
        pass
    strings = [
        i
        for i, f in enumerate(batch.schema)
        if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    for i in strings:
        batch = batch.set_column(i, batch.schema.field(i).name, batch.column(i).cast(pa.binary()))
    rows, bad = batch.to_pylist(), {}
    names = [batch.schema.field(i).name for i in strings]
    for k, obj in enumerate(rows):
        for name in names:
            value = obj[name]
            if value is None:
                continue
            try:
                obj[name] = value.decode("utf-8")
            except UnicodeDecodeError:
                bad.setdefault(k, name)
    return rows, bad


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _hint(path: Path) -> str:
    """Why a file may not open as Parquet: it is compressed as a whole."""
    try:
        with open(path, "rb") as f:
            codec = magic_codec(f.read(16))
    except (BadFile, OSError):
        return ""
    return f" (the file is {codec}-compressed as a whole; decompress it first)" if codec else ""

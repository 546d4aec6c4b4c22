"""CSV/TSV (row by row, so a ragged or non-UTF-8 row is quarantined alone) and Parquet (batched)."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.readers.builder import Batch, RecordBuilder
from pipeline.readers.jsonl import add_mapping, open_binary
from schemas.config import SourceConfig

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))


def read_csv(path: Path, src: SourceConfig, builder: RecordBuilder, tsv: bool) -> Iterator[Batch]:
    """Parse a CSV or TSV file with a header line into Record batches."""
    delimiter = src.delimiter or ("\t" if tsv else ",")
    # TSV files in the wild rarely quote; treating quotes as data avoids swallowing lines.
    quoting = csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL
    with open_binary(path) as fb:
        text = io.TextIOWrapper(fb, encoding="utf-8", errors="surrogateescape", newline="")
        reader = csv.reader(text, delimiter=delimiter, quoting=quoting)
        try:
            header = next(reader)
        except StopIteration:
            builder.bad(None, "empty_file: no header line")
            yield from builder.drain()
            return
        header = [h.lstrip("\ufeff").strip() for h in header]
        n = len(header)
        line = reader.line_num
        for values in reader:
            start, line = line + 1, reader.line_num
            if not values or values == [""]:
                continue
            raw = delimiter.join(values)
            if any(_has_surrogates(v) for v in values):
                builder.bad(
                    start,
                    "invalid_utf8: the row has bytes that are not UTF-8",
                    raw.encode("utf-8", "surrogateescape"),
                )
                continue
            if len(values) != n:
                builder.bad(start, f"ragged_row: expected {n} fields (as the header), got {len(values)}", raw)
                continue
            add_mapping(start, dict(zip(header, values, strict=True)), src, builder, raw)
            if builder.ready():
                yield builder.flush()
    yield from builder.drain()


def _has_surrogates(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def read_parquet(path: Path, src: SourceConfig, builder: RecordBuilder) -> Iterator[Batch]:
    """Read a Parquet file batch by batch into Record batches."""
    pf = pq.ParquetFile(path)
    row = 0
    for batch in pf.iter_batches(batch_size=min(builder.shard_rows, 65_536)):
        for obj in batch.to_pylist():
            row += 1
            add_mapping(row, obj, src, builder, None)
            if builder.ready():
                yield builder.flush()
    yield from builder.drain()

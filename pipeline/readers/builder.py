"""Accumulates parsed rows into Record-schema tables of bounded size, and bad rows into quarantine."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from schemas import columns as C
from schemas.record import QUARANTINE_SCHEMA, RECORD_SCHEMA

Batch = tuple[pa.Table, pa.Table]  # (records, quarantine)


class IngestError(ValueError):
    """An input that cannot be read at all (missing path, unknown format); names the path and the fix."""


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): the same object always gives the same string."""
    try:
        return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str).decode()
    except TypeError:  # an integer beyond 64 bits (kept exact by the JSONL reader): stdlib writes it
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def excerpt(raw: bytes | str | None, limit: int) -> str | None:
    """A printable prefix of a bad row for the quarantine table (undecodable bytes shown as \\xNN)."""
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = raw.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = raw.encode("utf-8", "backslashreplace")
    text = bytes(raw[: limit * 4 + 8]).decode("utf-8", errors="backslashreplace")
    return text.rstrip("\r\n")[:limit]


@dataclass
class RecordBuilder:
    """Collects rows of one input file; `flush` yields a table every `shard_rows` rows.

    Counts reconcile: `rows_read` = rows added + rows sent to quarantine. A reader calls `read()` once per
    row it meets (a non-blank JSONL line, a CSV record after the header, a Parquet row, an image, a tar
    sample, a captions row it cannot use); blank lines are not rows. A part of a file that cannot be read
    at all (a corrupt footer, a truncated compressed tail, a refused header) is one row read and one
    quarantine row (`file_error`), with line NULL unless a line is known.
    """

    source: str
    file: str
    modality: str
    shard_rows: int
    excerpt_chars: int = 200
    file_key: str | None = None  # the file's path relative to its source root: default ids are key:row
    rows_read: int = 0
    reread: bool = False  # a file error from the environment (permissions, I/O): read again next time
    _cols: dict[str, list[Any]] = field(default_factory=lambda: {f.name: [] for f in RECORD_SCHEMA})
    _quarantine: list[dict[str, Any]] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)
    _n_records: int = 0
    _n_quarantined: int = 0

    def __post_init__(self) -> None:
        if self.file_key is None:
            self.file_key = self.file.replace("\\", "/").rsplit("/", 1)[-1]

    def read(self, n: int = 1) -> None:
        """Count `n` rows met in the input (each must end up added or quarantined)."""
        self.rows_read += n

    def file_error(
        self, reason: str, line: int | None = None, raw: bytes | str | None = None, file: str | None = None
    ) -> None:
        """A part of the file that cannot be read: one row read, one quarantine row."""
        self.read()
        self.bad(line, reason, raw, file)

    def add(
        self,
        row: int,
        key: str | None,
        *,
        text: str | None = None,
        image: bytes | None = None,
        image_path: str | None = None,
        width: int | None = None,
        height: int | None = None,
        image_format: str | None = None,
        data: str | None = None,
        meta: str | None = None,
        raw: bytes | str | None = None,
    ) -> None:
        """Add one good row; `key` is the source's own id or None (then `<file_key>:<row>` is used)."""
        key = key if key not in (None, "") else f"{self.file_key}:{row}"
        rid = f"{self.source}/{key}"
        first = self._seen.get(rid)
        if first is not None:
            self.bad(row, f"duplicate_id: '{key}' (first seen at row {first})", raw)
            return
        self._seen[rid] = row
        self._n_records += 1
        c = self._cols
        c[C.ID].append(rid)
        c[C.SOURCE].append(self.source)
        c[C.MODALITY].append(self.modality)
        c[C.TEXT].append(text)
        c[C.IMAGE].append(image)
        c[C.IMAGE_PATH].append(image_path)
        c[C.WIDTH].append(width)
        c[C.HEIGHT].append(height)
        c[C.IMAGE_FORMAT].append(image_format)
        c[C.DATA].append(data)
        c[C.META].append(meta)
        c[C.SOURCE_FILE].append(self.file)
        c[C.SOURCE_ROW].append(row)

    def bad(
        self, row: int | None, reason: str, raw: bytes | str | None = None, file: str | None = None
    ) -> None:
        """Send one row to quarantine with the reason (`file`: another file than the input, e.g. captions)."""
        self._n_quarantined += 1
        self._quarantine.append(
            {
                C.SOURCE: self.source,
                C.Q_FILE: file or self.file,
                C.Q_LINE: row,
                C.Q_EXCERPT: excerpt(raw, self.excerpt_chars),
                C.Q_REASON: reason,
            }
        )

    @property
    def counts(self) -> tuple[int, int, int]:
        """(rows read, records added, rows quarantined) so far."""
        return self.rows_read, self._n_records, self._n_quarantined

    def __len__(self) -> int:
        return len(self._cols[C.ID])

    def ready(self) -> bool:
        return len(self) >= self.shard_rows

    def flush(self) -> Batch:
        """Take the rows collected so far as (records, quarantine) tables."""
        records = pa.Table.from_pydict(self._cols, schema=RECORD_SCHEMA)
        quarantine = pa.Table.from_pylist(self._quarantine, schema=QUARANTINE_SCHEMA)
        self._cols = {f.name: [] for f in RECORD_SCHEMA}
        self._quarantine = []
        return records, quarantine

    def drain(self) -> Iterator[Batch]:
        """Yield the last batch if anything is left."""
        if len(self) or self._quarantine:
            yield self.flush()

"""Accumulates parsed rows into Record-schema tables of bounded size, and bad rows into quarantine."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from schemas import columns as C
from schemas.record import QUARANTINE_SCHEMA, RECORD_SCHEMA

Batch = tuple[pa.Table, pa.Table]  # (records, quarantine)


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): the same object always gives the same string."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS, default=str).decode()


def excerpt(raw: bytes | str | None, limit: int) -> str | None:
    """A printable prefix of a bad row for the quarantine table."""
    if raw is None:
        return None
    text = raw.decode("utf-8", errors="backslashreplace") if isinstance(raw, bytes) else raw
    return text.rstrip("\r\n")[:limit]


@dataclass
class RecordBuilder:
    """Collects rows of one input file; `flush` yields a table every `shard_rows` rows."""

    source: str
    file: str
    modality: str
    shard_rows: int
    excerpt_chars: int = 200
    _cols: dict[str, list[Any]] = field(default_factory=lambda: {f.name: [] for f in RECORD_SCHEMA})
    _quarantine: list[dict[str, Any]] = field(default_factory=list)
    _seen: dict[str, int] = field(default_factory=dict)

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
        """Add one good row; `key` is the source's own id or None (then file:row is used)."""
        key = key if key not in (None, "") else f"{self.file_stem}:{row}"
        rid = f"{self.source}/{key}"
        first = self._seen.get(rid)
        if first is not None:
            self.bad(row, f"duplicate_id: '{key}' (first seen at row {first})", raw)
            return
        self._seen[rid] = row
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

    def bad(self, row: int | None, reason: str, raw: bytes | str | None = None) -> None:
        """Send one row to quarantine with the reason."""
        self._quarantine.append(
            {
                C.SOURCE: self.source,
                C.Q_FILE: self.file,
                C.Q_LINE: row,
                C.Q_EXCERPT: excerpt(raw, self.excerpt_chars),
                C.Q_REASON: reason,
            }
        )

    @property
    def file_stem(self) -> str:
        name = self.file.rsplit("/", 1)[-1]
        return name.split(".", 1)[0] or name

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

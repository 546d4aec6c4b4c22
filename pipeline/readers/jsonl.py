"""JSONL and JSONL.gz: one JSON object per line; bad lines go to quarantine with the line number."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import orjson

from pipeline.readers.builder import Batch, RecordBuilder, dumps
from schemas import columns as C
from schemas.config import SourceConfig


def open_binary(path: Path) -> IO[bytes]:
    """Open a possibly gzip-compressed file for reading bytes."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_jsonl(path: Path, src: SourceConfig, builder: RecordBuilder) -> Iterator[Batch]:
    """Parse a JSONL file into Record batches (text or record modality)."""
    with open_binary(path) as f:
        try:
            for lineno, raw in enumerate(f, start=1):
                _parse_line(lineno, raw, src, builder)
                if builder.ready():
                    yield builder.flush()
        except (EOFError, gzip.BadGzipFile, OSError) as exc:
            builder.bad(None, f"corrupt_file: truncated or corrupt after the last good line: {exc}")
    yield from builder.drain()


def _parse_line(lineno: int, raw: bytes, src: SourceConfig, b: RecordBuilder) -> None:
    if not raw.strip():
        return
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        b.bad(lineno, f"invalid_utf8: undecodable byte at offset {exc.start} of the line", raw)
        return
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        b.bad(lineno, f"invalid_json: {exc} (truncated line?)", raw)
        return
    if not isinstance(obj, dict):
        b.bad(lineno, f"not_an_object: expected a JSON object, got {type(obj).__name__}", raw)
        return
    add_mapping(lineno, obj, src, b, raw)


def add_mapping(row: int, obj: dict, src: SourceConfig, b: RecordBuilder, raw: bytes | str | None) -> None:
    """Map one parsed row (dict of fields) onto the record schema, or quarantine it."""
    key = obj.get(src.id_field) if src.id_field else None
    key = None if key is None else str(key)
    if b.modality == C.RECORD_MODALITY:
        fields = src.fields or [k for k in obj if k != src.id_field]
        missing = [k for k in (src.fields or []) if k not in obj]
        if missing:
            b.bad(row, f"missing_field: {', '.join(map(repr, missing))}", raw)
            return
        rest = {k: v for k, v in obj.items() if k not in fields and k != src.id_field}
        b.add(row, key, data=dumps({k: obj[k] for k in fields}), meta=dumps(rest) if rest else None, raw=raw)
        return
    if src.text_field not in obj:
        b.bad(row, f"missing_field: '{src.text_field}' (set text_field to the field holding the text)", raw)
        return
    text = obj[src.text_field]
    if text is None:
        b.bad(row, f"null_field: '{src.text_field}' is null", raw)
        return
    if not isinstance(text, str):
        b.bad(row, f"wrong_type: '{src.text_field}' is {type(text).__name__}, expected a string", raw)
        return
    rest = {k: v for k, v in obj.items() if k not in (src.text_field, src.id_field)}
    b.add(row, key, text=text, meta=dumps(rest) if rest else None, raw=raw)

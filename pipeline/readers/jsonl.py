"""JSONL (any codec of `streams`): one JSON object per line; bad lines go to quarantine with the line number.

Blank lines are not rows. A UTF-8 byte-order mark is skipped; UTF-16/32 files with a byte-order mark are
decoded; a stream that breaks (truncated gzip, zstd, ...) keeps every line before the break and adds one
`corrupt_file` row for the rest.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from pipeline.readers.builder import Batch, RecordBuilder, dumps
from pipeline.readers.streams import (
    STREAM_ERRORS,
    Encoding,
    open_stream,
    open_text,
    sniff_encoding,
)
from schemas import columns as C
from schemas.config import SourceConfig

# orjson reads integers beyond 64 bits as floats; a line whose id (or record field) may be one is parsed
# again with the stdlib, which keeps every digit
_LONG_DIGITS = re.compile(rb"\d{19,}")


def read_jsonl(path: Path, src: SourceConfig, builder: RecordBuilder) -> Iterator[Batch]:
    """Parse a JSONL file into Record batches (text or record modality)."""
    enc = sniff_encoding(path)
    lineno = 0
    with open_stream(path) if enc.utf8 else open_text(path, enc, newline="\n") as f:
        lines: Iterable[bytes] = f if enc.utf8 else _recode(f, enc)
        try:
            for lineno, raw in enumerate(lines, start=1):
                if lineno == 1 and raw.startswith(codecs.BOM_UTF8):
                    raw = raw[3:]
                _parse_line(lineno, raw, src, builder, enc)
                if builder.ready():
                    yield builder.flush()
        except STREAM_ERRORS as exc:
            builder.file_error(f"corrupt_file: truncated or corrupt after line {lineno}: {exc}")
    yield from builder.drain()


def _recode(text: Iterable[str], enc: Encoding) -> Iterator[bytes]:
    """Lines of a UTF-16/32 file as UTF-8 bytes; a line with undecodable bytes keeps them as lone
    surrogates (surrogatepass), which `_parse_line` reports as not valid in `enc`."""
    for line in text:
        yield line.encode("utf-8", "surrogatepass")


def _parse_line(lineno: int, raw: bytes, src: SourceConfig, b: RecordBuilder, enc: Encoding) -> None:
    if not raw.strip():
        return
    b.read()
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        b.bad(lineno, _why_not_json(raw, exc, enc), raw)
        return
    if not isinstance(obj, dict):
        b.bad(lineno, f"not_an_object: expected a JSON object, got {type(obj).__name__}", raw)
        return
    if _maybe_long_int(obj, src, b) and _LONG_DIGITS.search(raw):
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            b.bad(lineno, f"invalid_json: {exc}", raw)
            return
    add_mapping(lineno, obj, src, b, raw)


def _maybe_long_int(obj: dict, src: SourceConfig, b: RecordBuilder) -> bool:
    """True when a value orjson gave as a float may be an integer beyond 64 bits: the id always; in the
    record modality every top-level field (its `data` must be exact). Text rows' other fields are not
    checked: the check would cost every row, and they only go to `meta`."""
    if src.id_field and type(obj.get(src.id_field)) is float:
        return True
    return b.modality == C.RECORD_MODALITY and float in map(type, obj.values())


def _why_not_json(raw: bytes, exc: orjson.JSONDecodeError, enc: Encoding) -> str:
    """The reason of a line orjson refused: bad bytes first, then NULs, then the JSON error."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as ude:
        if enc.utf8:
            return f"invalid_utf8: undecodable byte at offset {ude.start} of the line"
        return f"invalid_{enc.label}: the line holds bytes that are not valid {enc.python.upper()}"
    if b"\x00" in raw:
        return "nul_byte: the line holds a NUL byte (binary data, or UTF-16 without a byte-order mark?)"
    return f"invalid_json: {exc} (truncated line?)"


def _as_text(value: Any) -> str | None:
    """A str as is; bytes (Parquet binary columns) decoded as UTF-8; None when they are not UTF-8."""
    if isinstance(value, str):
        return value
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError:
        return None


def add_mapping(row: int, obj: dict, src: SourceConfig, b: RecordBuilder, raw: bytes | str | None) -> None:
    """Map one parsed row (dict of fields) onto the record schema, or quarantine it."""
    key = obj.get(src.id_field) if src.id_field else None
    if isinstance(key, bytes | bytearray):
        key = bytes(key).decode("utf-8", "backslashreplace")
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
    if isinstance(text, bytes | bytearray | memoryview):
        decoded = _as_text(text)
        if decoded is None:
            b.bad(row, f"invalid_utf8: '{src.text_field}' is binary and not valid UTF-8", raw or bytes(text))
            return
        text = decoded
    if not isinstance(text, str):
        b.bad(row, f"wrong_type: '{src.text_field}' is {type(text).__name__}, expected a string", raw)
        return
    rest = {k: v for k, v in obj.items() if k not in (src.text_field, src.id_field)}
    b.add(row, key, text=text, meta=dumps(rest) if rest else None, raw=raw)

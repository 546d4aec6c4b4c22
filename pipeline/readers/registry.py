"""The reader registry: the one place that maps a path (suffix, compression) and a format to its reader and
default modality. Every path that reads an input table goes through `detect_format` and `read_file`."""

from __future__ import annotations

import csv
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pyarrow as pa

from pipeline.readers.builder import Batch, IngestError, RecordBuilder
from pipeline.readers.images import read_image_folder, read_webdataset
from pipeline.readers.jsonl import read_jsonl
from pipeline.readers.streams import CODEC_SUFFIXES, STREAM_ERRORS, BadFile, unsupported_suffix
from pipeline.readers.tabular import read_csv, read_parquet
from schemas import columns as C
from schemas.config import SourceConfig

Reader = Callable[[Path, SourceConfig, RecordBuilder], Iterator[Batch]]


@dataclass(frozen=True)
class FormatSpec:
    """How one format is read: its reader, default modality, and whether it reads through `open_stream`
    (so any codec of `streams` works) or needs the file itself (Parquet: random access; folders)."""

    reader: Reader
    modality: str
    streamed: bool


FORMATS: dict[str, FormatSpec] = {
    "jsonl": FormatSpec(read_jsonl, C.TEXT_MODALITY, True),
    "csv": FormatSpec(partial(read_csv, tsv=False), C.RECORD_MODALITY, True),
    "tsv": FormatSpec(partial(read_csv, tsv=True), C.RECORD_MODALITY, True),
    "parquet": FormatSpec(read_parquet, C.TEXT_MODALITY, False),
    "images": FormatSpec(read_image_folder, C.IMAGE_MODALITY, False),
    "webdataset": FormatSpec(read_webdataset, C.IMAGE_MODALITY, True),
}
SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".tar": "webdataset",
    ".tgz": "webdataset",
    ".tbz2": "webdataset",
    ".txz": "webdataset",
    ".tzst": "webdataset",
}
# what can break while a file is read; anything else is a bug and keeps its traceback
READ_ERRORS: tuple[type[BaseException], ...] = (
    *STREAM_ERRORS,
    ValueError,  # also UnicodeError, json errors, pyarrow's ArrowInvalid
    pa.ArrowException,
    csv.Error,
    tarfile.TarError,
    zlib.error,
    RecursionError,  # JSON nested too deep for the stdlib parser
)


def detect_format(path: Path, fmt: str | None = None) -> str:
    """The format of `path` (from `fmt`, else its name; compression suffixes looked through), or an
    IngestError naming the file and the fix: unknown name, archive or codec not read, compressed Parquet."""
    if path.is_dir():
        if fmt not in (None, "images"):
            raise IngestError(f"{path}: is a folder; only format 'images' reads folders")
        return "images"
    refused = unsupported_suffix(path)
    if refused is not None:
        what, fix = refused
        raise IngestError(f"{path}: {what} is not read; {fix}")
    suffixes = [s.lower() for s in path.suffixes]
    codec = CODEC_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        fmt = next((SUFFIX_FORMATS[s] for s in reversed(suffixes) if s in SUFFIX_FORMATS), None)
    if fmt is None:
        names = ", ".join(sorted(FORMATS))
        raise IngestError(f"{path}: cannot tell the format from the name; pass --format ({names})")
    if codec is not None and not FORMATS[fmt].streamed:
        raise IngestError(
            f"{path}: a {codec}-compressed {fmt} file is not read; decompress it first "
            "(Parquet compresses its pages itself)"
        )
    return fmt


def default_modality(fmt: str) -> str:
    """Modality a format holds unless the config says otherwise."""
    return FORMATS[fmt].modality


def read_file(path: Path, fmt: str, src: SourceConfig, builder: RecordBuilder) -> Iterator[Batch]:
    """Read one input with its format's reader. Never raises for a bad file: what a reader could not turn
    into quarantine rows itself becomes one `corrupt_file` (or `unreadable_file`) row, line NULL, after the
    rows already read."""
    try:
        yield from FORMATS[fmt].reader(path, src, builder)
        return
    except BadFile as exc:
        reason = str(exc)
    except OSError as exc:
        if exc.errno is None:  # a decoder's complaint about the data, not the file system's
            reason = f"corrupt_file: {exc}"
        else:
            builder.reread = True  # permissions, I/O: may work next time, so the input is not marked done
            reason = f"unreadable_file: {exc.strerror or exc}"
    except READ_ERRORS as exc:
        reason = f"corrupt_file: {type(exc).__name__}: {_first_line(exc)}"
    builder.file_error(reason)
    yield from builder.drain()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]

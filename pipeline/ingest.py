"""Ingest: expand sources into input files, read them into Record parts and quarantine, resumably."""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import xxhash

from pipeline.readers.builder import Batch, IngestError, RecordBuilder
from pipeline.readers.registry import SUFFIX_FORMATS, default_modality, read_file
from pipeline.readers.registry import detect_format as _detect
from pipeline.workspace import QUARANTINE, Workspace, read_json, write_json, write_parquet
from schemas.config import IngestConfig, SourceConfig, config_hash
from schemas.record import QUARANTINE_SCHEMA

__all__ = [
    "SUFFIX_FORMATS",
    "IngestError",
    "IngestResult",
    "InputFile",
    "default_modality",
    "detect_format",
    "expand_source",
    "ingest_input",
    "ingested_inputs",
    "new_builder",
    "read_input",
    "read_source",
]

GLOB_CHARS = "*?["


@dataclass(frozen=True)
class InputFile:
    """One file (or image folder) to ingest, with the source config that applies to it."""

    path: Path
    source: str
    format: str
    modality: str
    cfg: SourceConfig
    root: Path | None = None  # the source root: default ids are `<path relative to it>:<row>`

    @property
    def file_key(self) -> str:
        """This input's path relative to its source root ('.' for an image folder read on its own)."""
        root = self.root if self.root is not None else self.path.parent
        return Path(os.path.relpath(os.path.abspath(self.path), os.path.abspath(root))).as_posix()

    @property
    def key(self) -> str:
        """Stable, file-system-safe name of this input inside the workspace."""
        digest = xxhash.xxh64(str(self.path.resolve()).encode()).hexdigest()[:8]
        return f"{_safe(self.source)}-{digest}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "source"


def detect_format(path: Path) -> str:
    """Format from the file name (compression suffixes looked through), or IngestError saying the fix."""
    return _detect(path)


def source_root(pattern: str) -> Path:
    """The folder default ids are relative to: for a glob, its longest leading folder without glob
    characters; for a file, its parent; for a folder, the folder itself."""
    p = Path(pattern)
    if any(ch in pattern for ch in GLOB_CHARS):
        lead = []
        for part in p.parts:
            if any(ch in part for ch in GLOB_CHARS):
                break
            lead.append(part)
        return Path(*lead) if lead else Path(".")
    return p if p.is_dir() else p.parent


def expand_source(src: SourceConfig) -> list[InputFile]:
    """The input files a source names (a file, a folder of images, or a glob), sorted."""
    p = Path(src.path)
    if any(ch in src.path for ch in GLOB_CHARS):
        paths = sorted(Path(x) for x in glob.glob(src.path, recursive=True))
        if not paths:
            raise IngestError(f"{src.path}: the pattern matches no file")
    elif p.exists():
        paths = [p]
    else:
        raise IngestError(f"{src.path}: no such file or folder")
    if src.delimiter is not None and len(src.delimiter) != 1:
        raise IngestError(f"{src.path}: delimiter must be one character, not {src.delimiter!r}")
    if src.captions and not Path(src.captions).is_file():
        raise IngestError(
            f"{src.captions}: no such captions file (set captions to a CSV/JSONL/COCO JSON file)"
        )
    root = source_root(src.path)
    out = []
    for path in paths:
        if not path.exists():
            raise IngestError(f"{path}: a link to a missing file; fix or remove it")
        fmt = _detect(path, src.format)
        name = src.name or _stem(path)
        out.append(InputFile(path, name, fmt, src.modality or default_modality(fmt), src, root))
    return out


def _stem(path: Path) -> str:
    return path.name.split(".", 1)[0] or path.name


def read_input(inp: InputFile, cfg: IngestConfig, builder: RecordBuilder | None = None) -> Iterator[Batch]:
    """Read one input into (records, quarantine) batches of at most cfg.shard_rows records; never raises
    for a bad file. Pass `builder` (from `new_builder`) to see its counts afterwards."""
    return read_file(inp.path, inp.format, inp.cfg, new_builder(inp, cfg) if builder is None else builder)


def new_builder(inp: InputFile, cfg: IngestConfig) -> RecordBuilder:
    """The RecordBuilder that collects the rows of `inp` (default ids relative to its source root)."""
    return RecordBuilder(
        inp.source, str(inp.path), inp.modality, cfg.shard_rows, cfg.excerpt_chars, file_key=inp.file_key
    )


def read_source(
    path: str | Path, src: SourceConfig | None = None, cfg: IngestConfig | None = None
) -> Iterator[Batch]:
    """Read any supported input path (file, glob or image folder) into (records, quarantine) batches."""
    src = src or SourceConfig(path=str(path))
    if src.path != str(path):
        src = src.model_copy(update={"path": str(path)})
    for inp in expand_source(src):
        yield from read_input(inp, cfg or IngestConfig())


@dataclass
class IngestResult:
    """What ingesting one input produced: `rows_read` = `records` + `quarantined` (see RecordBuilder)."""

    input: str
    parts: list[str]
    records: int
    quarantined: int
    skipped: bool
    rows_read: int = 0


def _fingerprint(inp: InputFile, cfg: IngestConfig) -> dict:
    st = inp.path.stat()
    size, mtime = st.st_size, st.st_mtime_ns
    if inp.path.is_dir():
        files = [f.stat() for f in inp.path.rglob("*") if f.is_file()]
        size, mtime = sum(f.st_size for f in files), max((f.st_mtime_ns for f in files), default=0)
    fp = {
        "path": str(inp.path.resolve()),
        "size": size,
        "mtime_ns": mtime,
        "config": config_hash({"source": inp.cfg.model_dump(mode="json"), "ingest": cfg.model_dump()}),
    }
    if inp.cfg.captions:  # an edited captions file changes the records of an unchanged image folder
        cap = Path(inp.cfg.captions).stat()
        fp["captions"] = [cap.st_size, cap.st_mtime_ns]
    return fp


def ingest_input(inp: InputFile, cfg: IngestConfig, ws: Workspace) -> IngestResult:
    """Ingest one input into workspace parts; skipped when a marker says the same file was done already.

    A bad file never raises: its rows, or the file as a whole, go to quarantine (see `read_file`).
    """
    marker = ws.done_dir / f"{inp.key}.json"
    fp = _fingerprint(inp, cfg)
    if marker.exists():
        done = read_json(marker)
        if (
            done.get("fingerprint") == fp
            and not done.get("reread")
            and all(ws.part_path("ingest", p).exists() for p in done["parts"])
        ):
            read = done.get("rows_read", done["records"] + done["quarantined"])
            return IngestResult(
                str(inp.path), done["parts"], done["records"], done["quarantined"], True, read
            )
        for old in done.get("parts", []):  # the input changed: its old parts are stale
            ws.part_path("ingest", old).unlink(missing_ok=True)
    parts, n_rec, quarantine = [], 0, []
    builder = new_builder(inp, cfg)
    for i, (records, bad) in enumerate(read_input(inp, cfg, builder)):
        if bad.num_rows:
            quarantine.append(bad)
        if records.num_rows:
            part = f"{inp.key}-{i:05d}"
            write_parquet(records, ws.part_path("ingest", part))
            parts.append(part)
            n_rec += records.num_rows
    q = pa.concat_tables(quarantine) if quarantine else QUARANTINE_SCHEMA.empty_table()
    q_path = ws.part_path(QUARANTINE, inp.key)
    if q.num_rows:
        write_parquet(q, q_path)
    else:
        q_path.unlink(missing_ok=True)
    write_json(
        {
            "input": str(inp.path),
            "source": inp.source,
            "format": inp.format,
            "modality": inp.modality,
            "parts": parts,
            "rows_read": builder.rows_read,
            "records": n_rec,
            "quarantined": q.num_rows,
            "reread": builder.reread,
            "fingerprint": fp,
        },
        marker,
    )
    return IngestResult(str(inp.path), parts, n_rec, q.num_rows, False, builder.rows_read)


def ingested_inputs(ws: Workspace) -> list[dict]:
    """The markers of every finished input in the workspace (lineage for the manifest)."""
    if not ws.done_dir.exists():
        return []
    return [read_json(p) for p in sorted(ws.done_dir.glob("*.json"))]


def count_lines(rows: list[dict], limit: int = 20) -> list[str]:
    """Per-file reconciliation lines, `<file>: read N, ingested R, quarantined Q`, then a total line.

    `rows` are done markers (or dicts with input, rows_read, records, quarantined, optional note). Every
    file is listed when there are at most `limit`; otherwise only files with quarantined rows (at most
    `limit`, then how many more). A file whose counts do not reconcile is always listed, flagged.
    """
    lines, hidden = [], 0
    wanted = [r for r in rows if len(rows) <= limit or r["quarantined"] or not _reconciles(r)]
    for r in wanted:
        if len(lines) >= limit and _reconciles(r):
            hidden += 1
            continue
        read = r.get("rows_read", r["records"] + r["quarantined"])
        flag = "" if _reconciles(r) else "  (does not reconcile: please report)"
        note = f", {r['note']}" if r.get("note") else ""
        lines.append(
            f"{r['input']}: read {read}, ingested {r['records']}, quarantined {r['quarantined']}{note}{flag}"
        )
    if hidden:
        lines.append(f"... and {hidden} more file(s) with quarantined rows")
    read = sum(r.get("rows_read", r["records"] + r["quarantined"]) for r in rows)
    rec, q = sum(r["records"] for r in rows), sum(r["quarantined"] for r in rows)
    lines.append(f"{len(rows)} file(s): read {read} rows, ingested {rec}, quarantined {q}")
    return lines


def _reconciles(r: dict) -> bool:
    return r.get("rows_read", r["records"] + r["quarantined"]) == r["records"] + r["quarantined"]

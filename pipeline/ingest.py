"""Ingest: expand sources into input files, read them into Record parts and quarantine, resumably."""

from __future__ import annotations

import glob
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import xxhash

from pipeline.readers.builder import Batch, RecordBuilder
from pipeline.readers.images import read_image_folder, read_webdataset
from pipeline.readers.jsonl import read_jsonl
from pipeline.readers.tabular import read_csv, read_parquet
from pipeline.workspace import QUARANTINE, Workspace, read_json, write_json, write_parquet
from schemas import columns as C
from schemas.config import IngestConfig, SourceConfig, config_hash
from schemas.record import QUARANTINE_SCHEMA

SUFFIX_FORMATS = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".tsv": "tsv",
    ".parquet": "parquet",
    ".tar": "webdataset",
}


class IngestError(ValueError):
    """An input that cannot be read at all (missing path, unknown format); names the path and the fix."""


@dataclass(frozen=True)
class InputFile:
    """One file (or image folder) to ingest, with the source config that applies to it."""

    path: Path
    source: str
    format: str
    modality: str
    cfg: SourceConfig

    @property
    def key(self) -> str:
        """Stable, file-system-safe name of this input inside the workspace."""
        digest = xxhash.xxh64(str(self.path.resolve()).encode()).hexdigest()[:8]
        return f"{_safe(self.source)}-{digest}"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._") or "source"


def detect_format(path: Path) -> str:
    """Format from the file name (compression suffixes ignored), or IngestError saying how to set it."""
    if path.is_dir():
        return "images"
    suffixes = [s.lower() for s in path.suffixes if s.lower() not in (".gz", ".zst", ".bz2")]
    for s in reversed(suffixes):
        if s in SUFFIX_FORMATS:
            return SUFFIX_FORMATS[s]
    raise IngestError(
        f"{path}: cannot tell the format from the name; pass --format "
        f"({', '.join(sorted(set(SUFFIX_FORMATS.values()) | {'images'}))})"
    )


def default_modality(fmt: str) -> str:
    """Modality a format holds unless the config says otherwise."""
    if fmt in ("images", "webdataset"):
        return C.IMAGE_MODALITY
    if fmt in ("csv", "tsv"):
        return C.RECORD_MODALITY
    return C.TEXT_MODALITY


def expand_source(src: SourceConfig) -> list[InputFile]:
    """The input files a source names (a file, a folder of images, or a glob), sorted."""
    p = Path(src.path)
    if any(ch in src.path for ch in "*?["):
        paths = sorted(Path(x) for x in glob.glob(src.path, recursive=True))
        if not paths:
            raise IngestError(f"{src.path}: the pattern matches no file")
    elif p.exists():
        paths = [p]
    else:
        raise IngestError(f"{src.path}: no such file or folder")
    out = []
    for path in paths:
        fmt = src.format or detect_format(path)
        if path.is_dir() and fmt != "images":
            raise IngestError(f"{path}: is a folder; only format 'images' reads folders")
        name = src.name or _stem(path)
        out.append(InputFile(path, name, fmt, src.modality or default_modality(fmt), src))
    return out


def _stem(path: Path) -> str:
    return path.name.split(".", 1)[0] or path.name


def read_input(inp: InputFile, cfg: IngestConfig) -> Iterator[Batch]:
    """Read one input into (records, quarantine) batches of at most cfg.shard_rows records."""
    b = RecordBuilder(inp.source, str(inp.path), inp.modality, cfg.shard_rows, cfg.excerpt_chars)
    if inp.format == "jsonl":
        yield from read_jsonl(inp.path, inp.cfg, b)
    elif inp.format in ("csv", "tsv"):
        yield from read_csv(inp.path, inp.cfg, b, tsv=inp.format == "tsv")
    elif inp.format == "parquet":
        yield from read_parquet(inp.path, inp.cfg, b)
    elif inp.format == "images":
        yield from read_image_folder(inp.path, inp.cfg, b)
    elif inp.format == "webdataset":
        yield from read_webdataset(inp.path, inp.cfg, b)
    else:  # pragma: no cover - the config model restricts formats
        raise IngestError(f"{inp.path}: unknown format {inp.format!r}")


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
    """What ingesting one input produced."""

    input: str
    parts: list[str]
    records: int
    quarantined: int
    skipped: bool


def _fingerprint(inp: InputFile, cfg: IngestConfig) -> dict:
    st = inp.path.stat()
    size, mtime = st.st_size, st.st_mtime_ns
    if inp.path.is_dir():
        files = [f.stat() for f in inp.path.rglob("*") if f.is_file()]
        size, mtime = sum(f.st_size for f in files), max((f.st_mtime_ns for f in files), default=0)
    return {
        "path": str(inp.path.resolve()),
        "size": size,
        "mtime_ns": mtime,
        "config": config_hash({"source": inp.cfg.model_dump(mode="json"), "ingest": cfg.model_dump()}),
    }


def ingest_input(inp: InputFile, cfg: IngestConfig, ws: Workspace) -> IngestResult:
    """Ingest one input into workspace parts; skipped when a marker says the same file was done already."""
    marker = ws.done_dir / f"{inp.key}.json"
    fp = _fingerprint(inp, cfg)
    if marker.exists():
        done = read_json(marker)
        if done.get("fingerprint") == fp and all(ws.part_path("ingest", p).exists() for p in done["parts"]):
            return IngestResult(str(inp.path), done["parts"], done["records"], done["quarantined"], True)
        for old in done.get("parts", []):  # the input changed: its old parts are stale
            ws.part_path("ingest", old).unlink(missing_ok=True)
    parts, n_rec, quarantine = [], 0, []
    for i, (records, bad) in enumerate(read_input(inp, cfg)):
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
            "records": n_rec,
            "quarantined": q.num_rows,
            "fingerprint": fp,
        },
        marker,
    )
    return IngestResult(str(inp.path), parts, n_rec, q.num_rows, False)


def ingested_inputs(ws: Workspace) -> list[dict]:
    """The markers of every finished input in the workspace (lineage for the manifest)."""
    if not ws.done_dir.exists():
        return []
    return [read_json(p) for p in sorted(ws.done_dir.glob("*.json"))]

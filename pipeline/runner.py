"""Running stages with freshness by content: a stage's output records a stamp of everything it was made
from (its settings, the content of the input part and of the earlier stages it read); a stage runs again
exactly when that stamp changes. So an edited, added or removed input file re-runs exactly the work
downstream of it, and a re-run after any change gives the same outputs as a fresh workspace.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from pipeline.ids import admitted_filter, excluded_path, excluded_rows
from pipeline.workspace import CONFIG_HASH_KEY, INGEST, PARQUET_OPTIONS, Workspace, atomic_path, write_parquet
from schemas import columns as C
from schemas.config import CurateConfig, config_hash

if TYPE_CHECKING:  # the stages package imports this module
    from pipeline.stages.spec import Stage

STAMP_KEY = b"curate.stamp"
_DIGESTS: dict[tuple[str, int, int], str] = {}
_LOCK = threading.Lock()


def file_digest(path: Path) -> str:
    """xxh3-128 of a file's bytes (memoised per path, size and mtime)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    with _LOCK:
        if key in _DIGESTS:
            return _DIGESTS[key]
    h = xxhash.xxh3_128()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    digest = h.hexdigest()
    with _LOCK:
        _DIGESTS[key] = digest
    return digest


def stamp_of(path: Path) -> str:
    """The stamp a stage output was written with ('' when absent or unreadable)."""
    try:
        return ((pq.read_schema(path).metadata or {}).get(STAMP_KEY) or b"").decode()
    except (OSError, pa.ArrowInvalid):
        return ""


def _excluded_digest(ws: Workspace, part_path: Path) -> str:
    """Digest of the rows of one part left out for a repeated id ('' when none are)."""
    if not excluded_path(ws).exists():
        return ""
    ex = excluded_rows(ws)
    files = pq.read_table(part_path, columns=[C.SOURCE_FILE])[C.SOURCE_FILE].unique()
    mine = ex.filter(pc.is_in(ex[C.Q_FILE], value_set=files))
    if mine.num_rows == 0:
        return ""
    return xxhash.xxh3_64_hexdigest(",".join(map(str, mine[C.Q_LINE].to_pylist())).encode())


def map_stamp(
    stage: Stage, ws: Workspace, part: str, cfg: CurateConfig, known: dict[str, str] | None = None
) -> str:
    """What a map stage's output of one part depends on: settings, the part's content, earlier outputs
    (their stamps: from `known` for those about to be written, else from their files)."""
    known = known or {}
    part_path = ws.part_path(INGEST, part)
    h = xxhash.xxh3_128()
    h.update(f"{stage.name}|{config_hash(stage.settings(cfg))}|{file_digest(part_path)}".encode())
    h.update(_excluded_digest(ws, part_path).encode())
    for name, _ in stage.after:
        h.update(f"|{name}:{known[name] if name in known else stamp_of(ws.part_path(name, part))}".encode())
    return h.hexdigest()


def is_current(path: Path, stamp: str) -> bool:
    """True when `path` exists and was made from exactly what `stamp` describes."""
    return path.exists() and stamp_of(path) == stamp


@dataclass
class StageRun:
    """One map stage on one part: whether it did work, and the wall and CPU seconds it took."""

    stage: str
    part: str
    done: bool
    wall_s: float
    cpu_s: float
    pid: int = field(default_factory=os.getpid)  # the process that ran it


CHUNK_ROWS = 8192  # rows the stages see at once: a worker's memory is bounded by a chunk, not by the part


class _PartOutput:
    """One stage's output file of one part, written a chunk at a time to a temp name that the caller's
    `atomic_path` renames once every chunk is in; tagged with the settings hash and the stamp."""

    def __init__(self, stage: Stage, tmp: Path, tags: dict[bytes, bytes]) -> None:
        self.stage, self.tmp, self.tags = stage, tmp, tags
        self.writer: pq.ParquetWriter | None = None
        self.empty: pa.Table | None = None  # an empty chunk's output: written only when no chunk has rows

    def write(self, table: pa.Table) -> None:
        """Add a chunk's rows (the file's column types come from the first chunk with rows)."""
        if table.num_rows == 0:
            if self.writer is None and self.empty is None:
                self.empty = table
            return
        self._write(table)

    def finish(self) -> None:
        """Close the file; a stage that met no row writes its empty table."""
        if self.writer is None and self.empty is not None:
            self._write(self.empty)
        self.close()

    def close(self) -> None:
        """Close the file as it is (after a failure its temp file is removed by `atomic_path`)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    def _write(self, table: pa.Table) -> None:
        if self.stage.on_disk is not None:
            table = self.stage.on_disk(table)
        if self.writer is None:
            schema = _typed(table.schema, self.stage.writes)
            schema = schema.with_metadata(dict(schema.metadata or {}) | self.tags)
            opts = self.stage.parquet if self.stage.parquet is not None else PARQUET_OPTIONS
            self.writer = pq.ParquetWriter(self.tmp, schema, **opts)
        if not table.schema.equals(self.writer.schema, check_metadata=False):
            table = table.cast(self.writer.schema)
        self.writer.write_table(table, row_group_size=CHUNK_ROWS)


def _tags(stage: Stage, cfg: CurateConfig, stamp: str) -> dict[bytes, bytes]:
    """Schema metadata of a stage output: the hash of the settings it was made with, and its stamp."""
    return {CONFIG_HASH_KEY: config_hash(stage.settings(cfg)).encode(), STAMP_KEY: stamp.encode()}


def _typed(schema: pa.Schema, declared: pa.Schema) -> pa.Schema:
    """`schema` with its null-typed columns (a chunk where every value was null) given their declared type."""
    fields = [
        declared.field(f.name) if pa.types.is_null(f.type) and f.name in declared.names else f for f in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


def _ran(stage: Stage, part: str, done: bool, t0: float, c0: float) -> StageRun:
    return StageRun(stage.name, part, done, time.perf_counter() - t0, time.process_time() - c0)


def run_part(stages: Sequence[Stage], ws: Workspace, part: str, cfg: CurateConfig) -> list[StageRun]:
    """Run map stages (in run order) on one part, each unless its output is current.

    The part is read and admitted once for all of them and streamed through them CHUNK_ROWS rows at a time
    (every map stage is row-wise): a stage reads the columns of an earlier stage of the same chunk from
    memory, and each output is written chunk by chunk, so memory does not grow with the part's size.
    """
    stamps: dict[str, str] = {}
    todo: list[Stage] = []
    runs: dict[str, StageRun] = {}
    for stage in stages:
        t0, c0 = time.perf_counter(), time.process_time()
        stamp = map_stamp(stage, ws, part, cfg, stamps)
        if is_current(ws.part_path(stage.name, part), stamp):
            runs[stage.name] = _ran(stage, part, False, t0, c0)
        else:
            stamps[stage.name] = stamp
            todo.append(stage)
            runs[stage.name] = _ran(stage, part, True, t0, c0)
    if todo:
        _stream_part(todo, ws, part, cfg, stamps, runs)
    return [runs[s.name] for s in stages]


def _stream_part(
    todo: Sequence[Stage],
    ws: Workspace,
    part: str,
    cfg: CurateConfig,
    stamps: dict[str, str],
    runs: dict[str, StageRun],
) -> None:
    running = {s.name for s in todo}
    # columns of earlier stages that are current (not run now): read once from their files
    stored: dict[str, pa.Table] = {}
    for stage in todo:
        for name, after_cols in stage.after:
            if name not in running and name not in stored and ws.part_path(name, part).exists():
                stored[name] = pq.read_table(ws.part_path(name, part), columns=[C.ID, *after_cols])
    with ExitStack() as stack:
        outs = {
            s.name: _PartOutput(
                s, stack.enter_context(atomic_path(ws.part_path(s.name, part))), _tags(s, cfg, stamps[s.name])
            )
            for s in todo
        }
        try:
            for chunk in _part_chunks(ws, part, [c for s in todo for c in s.reads]):
                made: dict[str, pa.Table] = {}
                for stage in todo:
                    t0, c0 = time.perf_counter(), time.process_time()
                    batch = _stage_input(stage, chunk, made, stored)
                    assert stage.map_fn is not None
                    table = stage.map_fn(batch, cfg, ws.root)
                    outs[stage.name].write(table)
                    made[stage.name] = table
                    r = runs[stage.name]
                    r.wall_s += time.perf_counter() - t0
                    r.cpu_s += time.process_time() - c0
            for out in outs.values():
                out.finish()
        finally:
            for out in outs.values():
                out.close()


def _stage_input(
    stage: Stage, chunk: pa.Table, made: dict[str, pa.Table], stored: dict[str, pa.Table]
) -> pa.Table:
    """The rows and columns one stage reads from a chunk: its record columns, then earlier stages' columns."""
    batch = chunk.select([c for c in dict.fromkeys(stage.reads) if c in chunk.column_names])
    for name, after_cols in stage.after:
        if name in made:
            other = made[name].select([C.ID, *after_cols])
        elif name in stored:  # an earlier stage that is off leaves the columns out
            other = stored[name].filter(pc.is_in(stored[name][C.ID], value_set=batch[C.ID].combine_chunks()))
        else:
            continue
        batch = _add_columns(batch, other, list(after_cols))
    if stage.modality is not None:
        batch = batch.filter(pc.equal(batch[C.MODALITY], stage.modality))
    return batch


def _part_chunks(ws: Workspace, part: str, reads: list[str]) -> Iterator[pa.Table]:
    """The admitted rows of one ingest part, CHUNK_ROWS rows read at a time: the columns `reads` (rows left
    out for a repeated id dropped). An empty part gives one empty chunk."""
    cols = list(dict.fromkeys([*reads, C.SOURCE_FILE, C.SOURCE_ROW]))
    extra = [c for c in (C.SOURCE_FILE, C.SOURCE_ROW) if c not in reads]
    excluded = excluded_rows(ws)
    f = pq.ParquetFile(ws.part_path(INGEST, part))
    cols = [c for c in cols if c in f.schema_arrow.names]
    seen = False
    for rb in f.iter_batches(batch_size=CHUNK_ROWS, columns=cols):
        seen = True
        yield admitted_filter(pa.Table.from_batches([rb]), excluded).drop_columns(extra)
    if not seen:
        yield f.schema_arrow.empty_table().select(cols).drop_columns(extra)


def _add_columns(batch: pa.Table, other: pa.Table, cols: list[str]) -> pa.Table:
    """`batch` with `other`'s columns, matched by id, in `batch`'s row order."""
    if not other[C.ID].equals(batch[C.ID]):
        import polars as pl

        joined = pl.from_arrow(batch.select([C.ID])).join(
            pl.from_arrow(other), on=C.ID, how="left", maintain_order="left"
        )
        other = joined.to_arrow()
    for c in cols:
        batch = batch.append_column(c, other[c])
    return batch


def global_stamp(stage: Stage, ws: Workspace, cfg: CurateConfig) -> str:
    """What a global step's output depends on: its settings, the admitted records and its inputs' outputs."""
    from pipeline.stages import BY_NAME, stage_files

    h = xxhash.xxh3_128()
    h.update(f"{stage.name}|{config_hash(stage.settings(cfg))}".encode())
    for f in ws.stage_files(INGEST):
        h.update(f"|{f.name}:{file_digest(f)}".encode())
    if excluded_path(ws).exists():
        h.update(file_digest(excluded_path(ws)).encode())
    for name in stage.inputs:
        dep = BY_NAME[name]
        if not dep.enabled(cfg):
            continue
        for f in stage_files(ws, dep) if dep.relation is None else sorted(ws.root.glob(f"{name}.parquet")):
            h.update(f"|{name}/{f.name}:{stamp_of(f) or file_digest(f)}".encode())
    return h.hexdigest()


def run_global(stage: Stage, ws: Workspace, cfg: CurateConfig) -> bool:
    """Run one global step unless its output is current; True when work was done."""
    out = ws.global_path(stage.name)
    stamp = global_stamp(stage, ws, cfg)
    if is_current(out, stamp):
        return False
    assert stage.global_fn is not None
    table = stage.global_fn(ws.root, cfg)
    meta = dict(table.schema.metadata or {}) | _tags(stage, cfg, stamp)
    write_parquet(table.replace_schema_metadata(meta), out)
    return True


def remove_orphans(ws: Workspace, stage: str) -> None:
    """Delete a stage's outputs whose ingest part no longer exists (its input changed or went away)."""
    parts = set(ws.parts())
    for f in ws.stage_files(stage):
        if f.stem not in parts:
            f.unlink()

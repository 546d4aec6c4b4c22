"""Running stages with freshness by content: a stage's output records a stamp of everything it was made
from (its settings, the content of the input part and of the earlier stages it read); a stage runs again
exactly when that stamp changes. So an edited, added or removed input file re-runs exactly the work
downstream of it, and a re-run after any change gives the same outputs as a fresh workspace.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import xxhash

from pipeline.ids import admitted_filter, excluded_path, excluded_rows
from pipeline.stages.spec import Stage
from pipeline.workspace import CONFIG_HASH_KEY, INGEST, Workspace, write_parquet
from schemas import columns as C
from schemas.config import CurateConfig, config_hash

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


def map_stamp(stage: Stage, ws: Workspace, part: str, cfg: CurateConfig) -> str:
    """What a map stage's output of one part depends on: settings, the part's content, earlier outputs."""
    part_path = ws.part_path(INGEST, part)
    h = xxhash.xxh3_128()
    h.update(f"{stage.name}|{config_hash(stage.settings(cfg))}|{file_digest(part_path)}".encode())
    h.update(_excluded_digest(ws, part_path).encode())
    for name, _ in stage.after:
        h.update(f"|{name}:{stamp_of(ws.part_path(name, part))}".encode())
    return h.hexdigest()


def is_current(path: Path, stamp: str) -> bool:
    """True when `path` exists and was made from exactly what `stamp` describes."""
    return path.exists() and stamp_of(path) == stamp


def _write(stage: Stage, table: pa.Table, out: Path, settings_hash: str, stamp: str) -> None:
    meta = dict(table.schema.metadata or {}) | {
        CONFIG_HASH_KEY: settings_hash.encode(),
        STAMP_KEY: stamp.encode(),
    }
    table = table.replace_schema_metadata(meta)
    if stage.writer is None:
        write_parquet(table, out)
    else:
        stage.writer(table, out)


@dataclass
class StageRun:
    """One map stage on one part: whether it did work, and the wall and CPU seconds it took."""

    stage: str
    part: str
    done: bool
    wall_s: float
    cpu_s: float
    pid: int = field(default_factory=os.getpid)  # the process that ran it


def run_part(stages: Sequence[Stage], ws: Workspace, part: str, cfg: CurateConfig) -> list[StageRun]:
    """Run map stages (in run order) on one part, each unless its output is current.

    The part is read and admitted once for all of them, and a stage reads the columns of an earlier stage
    that ran in the same call from memory, not from its file.
    """
    runs: list[StageRun] = []
    base: pa.Table | None = None
    made: dict[str, pa.Table] = {}
    for stage in stages:
        t0, c0 = time.perf_counter(), time.process_time()
        out = ws.part_path(stage.name, part)
        stamp = map_stamp(stage, ws, part, cfg)
        if is_current(out, stamp):
            runs.append(StageRun(stage.name, part, False, time.perf_counter() - t0, time.process_time() - c0))
            continue
        if base is None:
            base = _read_part(ws, part, [c for s in stages for c in s.reads])
        batch = base.select([c for c in dict.fromkeys(stage.reads) if c in base.column_names])
        for name, after_cols in stage.after:
            if name in made:
                other = made[name].select([C.ID, *after_cols])
            elif ws.part_path(name, part).exists():  # an earlier stage that is off leaves the columns out
                other = pq.read_table(ws.part_path(name, part), columns=[C.ID, *after_cols])
            else:
                continue
            batch = _add_columns(batch, other, list(after_cols))
        if stage.modality is not None:
            batch = batch.filter(pc.equal(batch[C.MODALITY], stage.modality))
        table = _map_in_chunks(stage, batch, cfg, ws.root)
        _write(stage, table, out, config_hash(stage.settings(cfg)), stamp)
        if stage.writer is None:
            made[stage.name] = table
        runs.append(StageRun(stage.name, part, True, time.perf_counter() - t0, time.process_time() - c0))
    return runs


CHUNK_ROWS = 8192  # rows a map stage sees at once: its intermediates stay small however large the part


def _map_in_chunks(stage: Stage, batch: pa.Table, cfg: CurateConfig, root: Path) -> pa.Table:
    """A map stage's output over `batch`, computed CHUNK_ROWS rows at a time (every map stage is row-wise),
    so a worker's memory is bounded by a chunk's intermediates, not by the part's size."""
    assert stage.map_fn is not None
    if batch.num_rows <= CHUNK_ROWS:
        return stage.map_fn(batch, cfg, root)
    outs = [stage.map_fn(batch.slice(i, CHUNK_ROWS), cfg, root) for i in range(0, batch.num_rows, CHUNK_ROWS)]
    return pa.concat_tables(outs, promote_options="permissive").combine_chunks()


def _read_part(ws: Workspace, part: str, reads: list[str]) -> pa.Table:
    """The admitted rows of one ingest part: the columns `reads` (rows left out for a repeated id dropped)."""
    cols = list(dict.fromkeys([*reads, C.SOURCE_FILE, C.SOURCE_ROW]))
    batch = admitted_filter(pq.read_table(ws.part_path(INGEST, part), columns=cols), excluded_rows(ws))
    return batch.drop_columns([c for c in (C.SOURCE_FILE, C.SOURCE_ROW) if c not in reads])


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
    _write(stage, stage.global_fn(ws.root, cfg), out, config_hash(stage.settings(cfg)), stamp)
    return True


def remove_orphans(ws: Workspace, stage: str) -> None:
    """Delete a stage's outputs whose ingest part no longer exists (its input changed or went away)."""
    parts = set(ws.parts())
    for f in ws.stage_files(stage):
        if f.stem not in parts:
            f.unlink()

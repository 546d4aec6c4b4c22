"""Publish: apply the decisions, write kept records as Arrow IPC shards and a manifest, as a new version.

Each publish that changes something writes `<ws>/versions/v<N>/` (shards + that version's manifest.json)
in `<ws>/.staging`, checks it (no id twice, shard rows = kept records, every shard hashed), renames it into
`versions/`, then switches `<ws>/manifest.json` with one atomic rename. Until that rename the previous
version is the current one and stays whole; a reader of the manifest sees one version or the other.

Shards are byte-identical for the same inputs and config: rows are ordered by id, batches have a fixed
size, and nothing time-dependent is written (only the version folder's number may differ).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from pipeline import relations, stages
from pipeline.ingest import ingested_inputs
from pipeline.runner import file_digest, stamp_of
from pipeline.workspace import (
    DECISIONS,
    INGEST,
    MANIFEST,
    PII,
    QUARANTINE,
    VERSIONS,
    Workspace,
    WorkspaceError,
    WorkspaceWriteError,
    is_environment_error,
    read_json,
)
from schemas import columns as C
from schemas.config import CurateConfig, config_hash
from schemas.record import QUARANTINE_SCHEMA

MANIFEST_FORMAT = "curate-manifest/1"
DECISIONS_SNAPSHOT = "decisions.parquet"  # each version keeps the decisions it applied


class PublishError(WorkspaceError):
    """A publish was refused (an invariant failed); nothing was switched and the message says what."""


def code_version() -> str:
    """The package version, plus the git commit when run from a checkout."""
    version = metadata.version("curate")
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"{version}+g{sha}" if sha else version


def published_schema() -> pa.Schema:
    """Columns of a published shard: the record, then every stage's carried columns (scores, cluster ids)."""
    return stages.shard_schema()


def _fingerprint(ws: Workspace, cfg: CurateConfig) -> str:
    """Changes whenever a decision, a published column's content or the publish settings change."""
    h = xxhash.xxh3_128()
    h.update(config_hash({"publish": cfg.publish.model_dump(), "pii": cfg.pii.model_dump()}).encode())
    h.update(file_digest(ws.global_path(DECISIONS)).encode())
    for f in ws.stage_files(INGEST):
        h.update(f"|{f.name}:{file_digest(f)}".encode())
    for stage in stages.row_stages(cfg):
        if stage.carried:
            for f in stages.stage_files(ws, stage):
                h.update(f"|{stage.name}/{f.name}:{stamp_of(f) or file_digest(f)}".encode())
    return h.hexdigest()


@dataclass
class PublishResult:
    manifest: dict
    skipped: bool


def publish(ws: Workspace, cfg: CurateConfig) -> PublishResult:
    """Publish a new version `<ws>/versions/v<N>/` and switch `<ws>/manifest.json` to it; skipped (nothing
    written) when nothing changed. Raises PublishError, with nothing switched, when an invariant fails."""
    fingerprint = _fingerprint(ws, cfg)
    current = read_json(ws.manifest_path) if ws.manifest_path.exists() else None
    if current is not None and current.get("fingerprint") == fingerprint and _present(ws, current):
        return PublishResult(current, True)
    schema = published_schema()
    con = relations.connect()
    decisions = relations.parquet_scan([ws.global_path(DECISIONS)])
    rel = con.sql(
        f"""
        SELECT {", ".join("r." + f.name for f in schema)}
        FROM {stages.record_row_sql(ws, cfg)} r
        JOIN {decisions} d USING ({C.ID})
        WHERE d.{C.DECISION} = '{C.KEEP}'
        ORDER BY r.{C.ID}
        """
    )
    version = max([*ws.versions(), 0]) + 1
    staged = _staging(ws)
    try:
        shards = _write_shards(rel.to_arrow_reader(cfg.publish.batch_rows), schema, staged, cfg)
        for s in shards:
            s["path"] = f"{VERSIONS}/v{version}/{s['path']}"
        manifest = _manifest(ws, cfg, con, decisions, schema, shards, fingerprint)
        manifest["version"] = version
        _check(staged, manifest)
        _write_durable(staged / DECISIONS_SNAPSHOT, ws.global_path(DECISIONS).read_bytes())  # curate diff
        _commit(ws, staged, manifest, version)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    return PublishResult(manifest, False)


def _present(ws: Workspace, manifest: dict) -> bool:
    """Every shard the manifest lists is there with its size (a cheap check, no hashing)."""
    try:
        return all((ws.root / s["path"]).stat().st_size == s["bytes"] for s in manifest["shards"])
    except (OSError, KeyError, TypeError):
        return False


def _staging(ws: Workspace) -> Path:
    """A fresh folder in `<ws>/.staging` for a version being written."""
    d = ws.staging_dir / f"publish-{uuid.uuid4().hex[:12]}"
    try:
        d.mkdir(parents=True)
    except OSError as exc:
        if is_environment_error(exc):
            raise WorkspaceWriteError(d, exc) from exc
        raise
    return d


def _check(staged: Path, manifest: dict) -> None:
    """The invariants a version must meet before it becomes current; PublishError naming the first broken."""
    listed = {Path(s["path"]).name for s in manifest["shards"]}
    on_disk = {f.name for f in staged.iterdir()}
    if listed != on_disk:
        raise PublishError(
            f"publish refused: shards written {sorted(on_disk)} differ from the manifest's {sorted(listed)}"
        )
    ids, rows = [], 0
    with ExitStack() as maps:  # the id columns point into the mapped files until the count is done
        for s in manifest["shards"]:
            if len(s.get("sha256") or "") != 64:
                raise PublishError(f"publish refused: shard {s['path']} has no sha256")
            src = maps.enter_context(pa.memory_map(str(staged / Path(s["path"]).name)))
            col = pa.ipc.open_file(src).read_all().column(C.ID)
            if len(col) != s["rows"]:
                raise PublishError(
                    f"publish refused: shard {s['path']} holds {len(col)} rows, the manifest says {s['rows']}"
                )
            ids += col.chunks
            rows += len(col)
        kept = manifest["counts"]["kept"]
        if rows != kept or rows != manifest["rows"]:
            raise PublishError(f"publish refused: the shards hold {rows} rows but {kept} records are kept")
        distinct = pc.count_distinct(pa.chunked_array(ids)).as_py() if ids else 0
    if distinct != rows:
        raise PublishError(f"publish refused: {rows - distinct} id(s) appear more than once in the shards")


def _commit(ws: Workspace, staged: Path, manifest: dict, version: int) -> None:
    """Make the staged version durable, rename it into `versions/`, then switch the current manifest."""
    dest = ws.version_dir(version)
    try:
        _write_durable(staged / MANIFEST, _manifest_bytes(manifest))
        _fsync_dir(staged)
        ws.versions_dir.mkdir(parents=True, exist_ok=True)
        os.rename(staged, dest)  # a new name: fails rather than merge into an existing version
        _fsync_dir(ws.versions_dir)
        switch = ws.staging_dir / f"{uuid.uuid4().hex[:8]}-{MANIFEST}"
        _write_durable(switch, _manifest_bytes(manifest))
        os.replace(switch, ws.manifest_path)  # the one switch: readers see the old version or this one
        _fsync_dir(ws.root)
    except OSError as exc:
        if is_environment_error(exc) and not isinstance(exc, WorkspaceWriteError):
            raise WorkspaceWriteError(Path(exc.filename or dest), exc) from exc
        raise


def _manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _write_durable(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_shards(
    reader: pa.RecordBatchReader, schema: pa.Schema, dest: Path, cfg: CurateConfig
) -> list[dict]:
    """Write the rows as `<split>-NNNNN.arrow` files into `dest` (fsynced): name, rows, bytes, sha256 each."""
    p = cfg.publish
    shards: list[dict] = []
    pending: list[pa.RecordBatch] = []
    rows = size = 0

    def flush() -> None:
        nonlocal pending, rows, size
        table = pa.Table.from_batches(pending, schema=schema)
        name = f"{p.split}-{len(shards):05d}.arrow"
        final = dest / name
        try:
            with pa.OSFile(str(final), "wb") as sink, pa.ipc.new_file(sink, schema) as w:
                w.write_table(table, max_chunksize=p.batch_rows)
            with open(final, "rb") as f:
                os.fsync(f.fileno())
        except OSError as exc:
            if is_environment_error(exc):
                raise WorkspaceWriteError(final, exc) from exc
            raise
        shards.append(
            {
                "path": name,
                "rows": table.num_rows,
                "bytes": final.stat().st_size,
                "sha256": _sha256(final),
            }
        )
        pending, rows, size = [], 0, 0

    for batch in reader:
        batch = (
            _canonical(_redacted(pa.Table.from_batches([batch]).cast(schema), cfg)).to_batches()[0]
            if batch.num_rows
            else None
        )
        while batch is not None and batch.num_rows:
            room = p.shard_rows - rows
            if size and size + batch.nbytes > p.shard_bytes:
                flush()
                continue
            head, batch = batch.slice(0, room), batch.slice(room) if batch.num_rows > room else None
            pending.append(head)
            rows += head.num_rows
            size += head.nbytes
            if rows >= p.shard_rows:
                flush()
    if pending or not shards:
        flush()
    return shards


def _canonical(table: pa.Table) -> pa.Table:
    """One chunk per column, and zeros under the nulls of fixed-width columns.

    DuckDB leaves whatever was in memory under a null number; the values are never read, but they are
    written, and the shards must come out byte-identical.
    """
    table = table.combine_chunks()
    for i, field in enumerate(table.schema):
        col = table.column(i)
        t = field.type
        if col.null_count and (pa.types.is_integer(t) or pa.types.is_floating(t)):
            arr = col.chunk(0)
            zeros = pc.fill_null(arr, pa.scalar(0, t))
            fixed = pa.Array.from_buffers(
                t, len(arr), [arr.buffers()[0], zeros.buffers()[1]], arr.null_count, arr.offset
            )
            table = table.set_column(i, field, fixed)
    return table


def _redacted(table: pa.Table, cfg: CurateConfig) -> pa.Table:
    """With `[pii] action = "redact"`, each PII match in a text is replaced by its token (<EMAIL> ...)."""
    if cfg.pii.action != "redact":
        return table
    from quality.pii import redact

    i = table.schema.get_field_index(C.TEXT)
    return table.set_column(i, table.schema.field(i), redact(table[C.TEXT], cfg.pii))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _manifest(
    ws: Workspace,
    cfg: CurateConfig,
    con,
    decisions: str,
    schema: pa.Schema,
    shards: list[dict],
    fingerprint: str,
) -> dict:
    by_decision = dict(
        con.sql(f"SELECT {C.DECISION}, count(*) FROM {decisions} GROUP BY 1 ORDER BY 1").fetchall()
    )
    by_reason = dict(
        con.sql(
            f"SELECT {C.REASON}, count(*) FROM {decisions} WHERE {C.REASON} IS NOT NULL GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    quarantine = relations.parquet_scan(ws.stage_files(QUARANTINE), QUARANTINE_SCHEMA)
    q_by_reason = dict(
        con.sql(
            f"SELECT split_part({C.Q_REASON}, ':', 1), count(*) FROM {quarantine} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    )
    n_quarantined = sum(q_by_reason.values())
    redacted = 0
    if cfg.pii.action == "redact" and ws.stage_files(PII):
        pii = relations.parquet_scan(ws.stage_files(PII))
        redacted = con.execute(
            f"SELECT count(*) FROM {decisions} d JOIN {pii} p USING ({C.ID}) "
            f"WHERE d.{C.DECISION} = '{C.KEEP}' AND p.{C.PII_COUNT} > 0"
        ).fetchone()[0]
    sources = [
        {k: m[k] for k in ("input", "source", "format", "modality", "records", "quarantined")}
        | {"size": m["fingerprint"]["size"], "rows_read": m.get("rows_read")}
        for m in ingested_inputs(ws)
    ]
    from pipeline.breakdown import breakdown
    from pipeline.stages.dedup import dedup_stats
    from pipeline.stages.semantic import semantic_stats

    semantic = {k: v for k, v in semantic_stats(ws).items() if k != "means"} if cfg.stages.semantic else {}
    return {
        "format": MANIFEST_FORMAT,
        "split": cfg.publish.split,
        "code_version": code_version(),
        "config_hash": config_hash(cfg.model_dump(mode="json", exclude={"workspace"})),
        "fingerprint": fingerprint,
        "counts": {
            "ingested": sum(by_decision.values()) + n_quarantined,
            "records": sum(by_decision.values()),
            "kept": by_decision.get(C.KEEP, 0),
            "dropped": by_decision.get(C.DROP, 0),
            "label": by_decision.get(C.LABEL, 0),
            "quarantined": n_quarantined,
            "pii_redacted": redacted,
            "by_reason": by_reason,
            "quarantine_by_reason": q_by_reason,
        },
        "breakdown": breakdown(ws, cfg, decisions),
        "dedup": dedup_stats(ws),
        "semantic": semantic,
        "rows": sum(s["rows"] for s in shards),
        "schema": [{"name": f.name, "type": str(f.type)} for f in schema],
        "shards": shards,
        "sources": sources,
    }

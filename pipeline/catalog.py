"""The SQL catalog: DuckDB views over the workspace and the published shards.

Views: `records` (every admitted record with every stage's columns and its decision), `decisions`,
`quarantine`, `shards` (the rows of the published shards), `shard_files` (one row per shard from the
manifest), the views stages declare (`embeddings`, `duplicates`, `near_clusters`, `semantic_pairs`,
`image_embeddings`, `dedup_audit`; empty until the stage has run), and the labelling tables `labels`,
`annotations`, `annotators`, `label_agreement`, `label_tasks`, `label_issues`.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from pipeline import relations, stages, versions
from pipeline.workspace import (
    DECISIONS,
    QUARANTINE,
    Workspace,
    read_json,
)
from schemas import columns as C
from schemas.record import DECISION_SCHEMA, QUARANTINE_SCHEMA, RECORD_SCHEMA

# Optional views of the labelling loop: name -> workspace file written by labeling/.
OPTIONAL_VIEWS = {
    "labels": "labels.parquet",  # consensus label per (record, queue)
    "annotations": "annotations.parquet",  # every annotation pulled from Label Studio
    "annotators": "annotators.parquet",  # per annotator: gold accuracy, agreement
    "label_agreement": "label_agreement.parquet",  # per queue: Krippendorff's alpha, Fleiss' kappa
    "label_tasks": "label_tasks.parquet",  # what was pushed to which project, with its prediction
    "label_issues": "label_issues.parquet",  # suspected label errors (confident learning)
}


class CatalogError(ValueError):
    """The workspace is missing or has nothing to query."""


class ReadOnlyError(CatalogError):
    """A statement given to the read-only catalog could write (COPY, CREATE, INSERT, ATTACH, SET ...)."""


def connect(workspace: str | Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the catalog views of a workspace."""
    ws = Workspace(workspace)
    if not ws.root.exists():
        raise CatalogError(f"{ws.root}: no such workspace (run `curate ingest` or `curate run` first)")
    con = relations.connect()
    scan = relations.parquet_scan
    con.execute(
        f"CREATE VIEW quarantine AS SELECT * FROM {scan(ws.stage_files(QUARANTINE), QUARANTINE_SCHEMA)}"
    )
    dec_path = ws.global_path(DECISIONS)
    dec = scan([dec_path] if dec_path.exists() else [], DECISION_SCHEMA)
    con.execute(f"CREATE VIEW decisions AS SELECT * FROM {dec}")
    from pipeline.decide import saved_config

    cfg = saved_config(ws) if (ws.root / "config.json").exists() else None
    con.execute(
        f"""CREATE VIEW records AS SELECT r.*, d.{C.DECISION}, d.{C.REASON}
            FROM {stages.record_row_sql(ws, cfg)} r LEFT JOIN decisions d USING ({C.ID})"""
    )
    for view, (files, schema) in stages.views(ws).items():  # embeddings, duplicates, pairs, audit ...
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM {scan(files, schema)}")
    _shard_views(con, ws)
    versions.register_views(con, ws)  # shards_v<N>, decisions_v<N>, versions
    for view, fname in OPTIONAL_VIEWS.items():
        if (ws.root / fname).exists():
            con.execute(f"CREATE VIEW {view} AS SELECT * FROM {scan([ws.root / fname])}")
    return con


def _shard_views(con: duckdb.DuckDBPyConnection, ws: Workspace) -> None:
    """`shards` and `shard_files` over the version the manifest names (read once: never a mix)."""
    shards: list[dict] = read_json(ws.manifest_path)["shards"] if ws.manifest_path.exists() else []
    files = [ws.root / s["path"] for s in shards]
    missing = [f for f in files if not f.is_file()]
    if missing:
        raise CatalogError(
            f"{missing[0]}: listed in {ws.manifest_path} but missing ({len(missing)} of {len(files)} "
            f"shards); re-publish with `curate publish -w {ws.root}`"
        )
    if files:
        con.register("shards_dataset", pads.dataset([str(f) for f in files], format="arrow"))
    else:
        con.register("shards_dataset", RECORD_SCHEMA.empty_table())
    con.execute("CREATE VIEW shards AS SELECT * FROM shards_dataset")
    table = pa.Table.from_pylist(
        shards,
        schema=pa.schema(
            [("path", pa.string()), ("rows", pa.int64()), ("bytes", pa.int64()), ("sha256", pa.string())]
        ),
    )
    con.register("shard_files_table", table)
    con.execute("CREATE VIEW shard_files AS SELECT * FROM shard_files_table")


_EXPLAIN = re.compile(r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/)*EXPLAIN\s+(ANALY[SZ]E\b)?", re.IGNORECASE | re.DOTALL)


def check_read_only(sql: str) -> None:
    """ReadOnlyError when a statement of `sql` could write or change settings: only queries may run.

    DuckDB's own parser classifies each statement; SELECT (with DESCRIBE, SHOW, SUMMARIZE, VALUES, FROM-first
    and `query()`, which only takes a SELECT) and a plain EXPLAIN of one pass. COPY, CREATE, INSERT, UPDATE,
    DELETE, DROP, ALTER, ATTACH, EXPORT, SET, PRAGMA, CALL, LOAD/INSTALL and EXPLAIN ANALYZE are refused.
    """
    for st in duckdb.extract_statements(sql):
        if st.type == duckdb.StatementType.SELECT:
            continue
        kind = st.type.name
        if st.type == duckdb.StatementType.EXPLAIN:
            m = _EXPLAIN.match(st.query)
            if m and not m.group(1):
                inner = duckdb.extract_statements(st.query[m.end() :])
                if all(i.type == duckdb.StatementType.SELECT for i in inner):
                    continue
            kind = "EXPLAIN ANALYZE" if m and m.group(1) else "EXPLAIN of a non-query"
        raise ReadOnlyError(
            f"curate sql is read-only: refused a {kind} statement (only queries run); "
            "write results with --format csv/json > FILE, or use pipeline.catalog.connect() from Python"
        )


def query(workspace: str | Path, sql: str) -> pa.Table:
    """Run one read-only SQL query against the catalog and return the result as Arrow (ReadOnlyError for
    a statement that could write)."""
    check_read_only(sql)
    con = connect(workspace)
    try:
        return con.sql(sql).to_arrow_table()
    finally:
        con.close()

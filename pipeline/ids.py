"""Unique ids across the workspace: a repeated explicit id is bad input.

Readers already quarantine an id repeated inside one file. An id repeated across files (of one source, or
of two sources with the same name) is found here, over every ingested part: the first occurrence (by file
path, then row) is admitted and every later one becomes a `quarantine` row with reason `duplicate_id`.
Ingested parts are never rewritten: the excluded rows are listed in `<ws>/quarantine/duplicate-ids.parquet`
and every reader of records (`admitted_filter`, `records_sql`) leaves them out.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline import relations
from pipeline.workspace import INGEST, QUARANTINE, Workspace, write_parquet
from schemas import columns as C
from schemas.record import QUARANTINE_SCHEMA, RECORD_SCHEMA

DUPLICATE_IDS = "duplicate-ids"
REASON = "duplicate_id"


def excluded_path(ws: Workspace) -> Path:
    """The quarantine file listing rows left out because their id came earlier in another file."""
    return ws.part_path(QUARANTINE, DUPLICATE_IDS)


def find_duplicate_ids(ws: Workspace) -> pa.Table:
    """Write (or remove) the duplicate-id quarantine file; returns its rows.

    Reads only `id`, `source`, `source_file`, `source_row` of every part.
    """
    parts = ws.stage_files(INGEST)
    path = excluded_path(ws)
    if not parts:
        path.unlink(missing_ok=True)
        return QUARANTINE_SCHEMA.empty_table()
    con = relations.connect()
    scan = relations.parquet_scan(parts)
    table = con.sql(
        f"""
        WITH r AS (SELECT {C.ID}, {C.SOURCE}, {C.SOURCE_FILE}, {C.SOURCE_ROW},
                          row_number() OVER w AS k,
                          first({C.SOURCE_FILE}) OVER w AS first_file,
                          first({C.SOURCE_ROW}) OVER w AS first_row
                   FROM {scan}
                   WINDOW w AS (PARTITION BY {C.ID} ORDER BY {C.SOURCE_FILE}, {C.SOURCE_ROW}))
        SELECT {C.SOURCE}, {C.SOURCE_FILE} AS {C.Q_FILE}, {C.SOURCE_ROW} AS {C.Q_LINE},
               {C.ID} AS {C.Q_EXCERPT},
               '{REASON}: ''' || {C.ID} || ''' first seen in ' || first_file || ' line ' || first_row
               AS {C.Q_REASON}
        FROM r WHERE k > 1
        ORDER BY {C.Q_FILE}, {C.Q_LINE}
        """
    ).to_arrow_table()
    table = table.cast(QUARANTINE_SCHEMA)
    if table.num_rows:
        write_parquet(table, path)
    else:
        path.unlink(missing_ok=True)
    return table


def excluded_rows(ws: Workspace) -> pa.Table:
    """`file`, `line` of every row left out for a repeated id (empty when there are none)."""
    path = excluded_path(ws)
    if not path.exists():
        return pa.table({C.Q_FILE: pa.array([], pa.string()), C.Q_LINE: pa.array([], pa.int64())})
    st = path.stat()
    return _read_excluded(str(path), st.st_size, st.st_mtime_ns)


@lru_cache(maxsize=8)
def _read_excluded(path: str, size: int, mtime_ns: int) -> pa.Table:
    """Read once per version of the file: every stage of every part asks for it."""
    return pq.read_table(path, columns=[C.Q_FILE, C.Q_LINE])


def admitted_filter(batch: pa.Table, excluded: pa.Table) -> pa.Table:
    """`batch` (with `source_file`, `source_row`) without the excluded rows."""
    if excluded.num_rows == 0 or batch.num_rows == 0:
        return batch
    key = pc.binary_join_element_wise(batch[C.SOURCE_FILE], pc.cast(batch[C.SOURCE_ROW], pa.string()), "\x00")
    bad = pc.binary_join_element_wise(excluded[C.Q_FILE], pc.cast(excluded[C.Q_LINE], pa.string()), "\x00")
    return batch.filter(pc.invert(pc.is_in(key, value_set=bad.combine_chunks())))


def records_sql(ws: Workspace, columns: list[str] | None = None) -> str:
    """SQL relation of the admitted ingested records (every part, the duplicate-id rows left out)."""
    cols = ", ".join(f"i.{c}" for c in columns) if columns else "i.*"
    base = relations.parquet_scan(ws.stage_files(INGEST), RECORD_SCHEMA)
    path = excluded_path(ws)
    if not path.exists():
        return f"(SELECT {cols} FROM {base} i)"
    ex = relations.parquet_scan([path])
    return (
        f"(SELECT {cols} FROM {base} i ANTI JOIN {ex} e "
        f"ON e.{C.Q_FILE} = i.{C.SOURCE_FILE} AND e.{C.Q_LINE} = i.{C.SOURCE_ROW})"
    )

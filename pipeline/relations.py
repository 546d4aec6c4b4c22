"""DuckDB relations over workspace files (lazy scans; an absent stage reads as an empty relation)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa

# DuckDB's default memory limit is 80 % of RAM: a publish sorting 1M documents by id held 3.8 GB. With a
# limit it sorts and joins out of core (spilling to a temp folder), so memory stays flat as data grows.
MEMORY_LIMIT = os.environ.get("CURATE_DUCKDB_MEMORY", "1GB")


def connect() -> duckdb.DuckDBPyConnection:
    """An in-process DuckDB connection with settings that keep results deterministic and memory bounded
    (`$CURATE_DUCKDB_MEMORY`, default 1GB; larger work spills to a temp folder)."""
    con = duckdb.connect()
    con.execute("SET preserve_insertion_order = true")
    con.execute(f"SET memory_limit = {sql_str(MEMORY_LIMIT)}")
    con.execute(f"SET temp_directory = {sql_str(Path(tempfile.gettempdir()) / 'curate-duckdb')}")
    return con


def sql_str(value: str | Path) -> str:
    """A SQL string literal."""
    return "'" + str(value).replace("'", "''") + "'"


def parquet_scan(files: list[Path], empty_schema: pa.Schema | None = None) -> str:
    """SQL for a scan over parquet files; with no files, an empty relation of `empty_schema`."""
    if files:
        return "read_parquet([" + ", ".join(sql_str(f) for f in files) + "], union_by_name = true)"
    if empty_schema is None:
        return "(SELECT NULL::VARCHAR AS id WHERE false)"
    cols = ", ".join(f'NULL::{duck_type(f.type)} AS "{f.name}"' for f in empty_schema)
    return f"(SELECT {cols} WHERE false)"


def duck_type(t: pa.DataType) -> str:
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "VARCHAR"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return "BLOB"
    if pa.types.is_int32(t):
        return "INTEGER"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_float32(t):
        return "FLOAT"
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return duck_type(t.value_type) + "[]"
    return "VARCHAR"

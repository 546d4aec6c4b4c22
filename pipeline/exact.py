"""Exact dedup: `content_hash` per record (map), then groups over the whole workspace (global)."""

from __future__ import annotations

import duckdb
import polars as pl
import pyarrow as pa
import xxhash

from quality.nfc import nfc_series
from schemas import columns as C
from schemas.record import EXACT_SCHEMA


def normalise_text(texts: pl.Series) -> pl.Series:
    """The text form that exact dedup compares: Unicode NFC, whitespace runs folded, ends trimmed.

    Polars string kernels over the column; NFC runs only on rows that can change under it and the fold
    only on rows with whitespace other than lone spaces (the others are already in that form)."""
    texts = nfc_series(texts)
    odd = texts.str.contains(r"[^\S ]|  ")
    if odd.any():
        texts = texts.scatter(odd.arg_true(), texts.filter(odd).str.replace_all(r"\s+", " "))
    return texts.str.strip_chars()


def content_hashes(batch: pa.Table) -> pa.Table:
    """`id`, `content_hash`: xxh3-128 of normalised text, of image bytes, or of a record's canonical JSON.

    Empty content (an empty text, no image, no fields) gets a null hash: it is nobody's duplicate.
    """
    df = pl.from_arrow(batch.select([C.ID, C.MODALITY, C.TEXT, C.IMAGE, C.DATA]))
    assert isinstance(df, pl.DataFrame)
    text = normalise_text(df[C.TEXT].fill_null(""))
    content = (
        pl.DataFrame({"m": df[C.MODALITY], "t": text, "i": df[C.IMAGE], "d": df[C.DATA]})
        .select(
            pl.when(pl.col("m") == C.IMAGE_MODALITY)
            .then(pl.col("i"))
            .when(pl.col("m") == C.RECORD_MODALITY)
            .then(pl.col("d").cast(pl.Binary))
            .otherwise(pl.col("t").cast(pl.Binary))
        )
        .to_series()
    )
    h = xxhash.xxh3_128_hexdigest
    hashes = [None if not b or b == b"{}" else h(b) for b in content.to_list()]
    return pa.table({C.ID: batch[C.ID], C.CONTENT_HASH: pa.array(hashes, pa.string())}, schema=EXACT_SCHEMA)


def exact_clusters(con: duckdb.DuckDBPyConnection, hashes_sql: str) -> pa.Table:
    """Groups of equal `content_hash` across all parts; the first id of a group is kept.

    `hashes_sql` is a relation with `id`, `content_hash` (e.g. a read_parquet over every part). Returns
    `id`, `exact_cluster` (the group's hash), `exact_dup_of` (kept id, null for the kept one) for every
    record that has a duplicate.
    """
    return con.sql(
        f"""
        WITH h AS (SELECT {C.ID}, {C.CONTENT_HASH} FROM {hashes_sql} WHERE {C.CONTENT_HASH} IS NOT NULL),
        g AS (SELECT {C.CONTENT_HASH}, min({C.ID}) AS keep_id, count(*) AS n FROM h
              GROUP BY {C.CONTENT_HASH} HAVING count(*) > 1)
        SELECT h.{C.ID}, h.{C.CONTENT_HASH} AS {C.EXACT_CLUSTER},
               CASE WHEN h.{C.ID} = g.keep_id THEN NULL ELSE g.keep_id END AS {C.EXACT_DUP_OF}
        FROM h JOIN g USING ({C.CONTENT_HASH})
        ORDER BY h.{C.ID}
        """
    ).to_arrow_table()

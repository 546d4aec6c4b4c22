"""Near-duplicate text: MinHash signatures per part (map), LSH clusters over all parts (global), keep policy.

The map step `near_text_signatures` writes `id`, `minhash`, `lsh_band_NN`, `near_length` per part; the
global step `near_clusters` groups every part's band keys (optionally with an already published
version's signature files, for incremental runs) and returns `id`, `near_cluster`, `dup_of` for each
record that has a near-duplicate. Rows are never removed: the decision step drops `dup_of` records.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import lsh, minhash
from pipeline.workspace import atomic_path
from schemas import columns as C
from schemas.near import NEAR_CLUSTER_SCHEMA, NearConfig

Parts = Sequence[str | Path | pa.Table]


def lsh_shape(cfg: NearConfig, threshold: float | None = None) -> tuple[int, int]:
    """(bands, rows) of the LSH index: from the config when given, else optimal for the threshold."""
    t = cfg.threshold if threshold is None else threshold
    if cfg.bands and cfg.rows:
        return cfg.bands, cfg.rows
    if cfg.bands:
        return cfg.bands, cfg.num_perm // cfg.bands
    if cfg.rows:
        return cfg.num_perm // cfg.rows, cfg.rows
    return lsh.optimal_bands(t, cfg.num_perm, cfg.fp_weight)


def band_column(j: int) -> str:
    """Name of the column holding band j's LSH keys."""
    return f"{C.LSH_BAND}{j:02d}"


def band_columns(schema: pa.Schema) -> list[str]:
    """The band key columns of a signature table's schema, in band order."""
    return sorted(n for n in schema.names if n.startswith(C.LSH_BAND))


def signature_schema(num_perm: int, bands: int) -> pa.Schema:
    """Schema of a signature part: id, minhash (fixed-size list of uint32), one uint64 key column per
    band (lsh_band_00, ...), near_length."""
    return pa.schema(
        [
            pa.field(C.ID, pa.string(), nullable=False),
            pa.field(C.MINHASH, pa.list_(pa.uint32(), num_perm)),
            *[pa.field(band_column(j), pa.uint64()) for j in range(bands)],
            pa.field(C.NEAR_LENGTH, pa.int64()),
        ]
    )


def signature_table(
    ids: pa.Array | pa.ChunkedArray,
    sig: np.ndarray,
    counts: np.ndarray,
    lengths: np.ndarray,
    bands: int,
    rows: int,
) -> pa.Table:
    """Signature rows from MinHash arrays; records without shingles get null minhash and band keys."""
    num_perm = sig.shape[1]
    empty = counts == 0
    keys = minhash.band_keys(sig, bands, rows)
    mh = pa.FixedSizeListArray.from_arrays(pa.array(sig.ravel()), num_perm, mask=pa.array(empty))
    by_band = np.ascontiguousarray(keys.T)
    cols = [pa.array(by_band[j], mask=empty) for j in range(bands)]
    return pa.Table.from_arrays([ids, mh, *cols, pa.array(lengths)], schema=signature_schema(num_perm, bands))


# How signature tables are stored: signatures are random integers, so no compression, dictionary (but ids)
# or statistics (they cost time and save nothing).
SIGNATURE_PARQUET = {"compression": "none", "use_dictionary": [C.ID], "write_statistics": False}


def signatures_on_disk(table: pa.Table) -> pa.Table:
    """A signature table as stored: `minhash` as fixed-size binary (the uint32 values, little-endian), which
    Parquet writes and reads ~20x faster than a list column; SignatureSet reads both."""
    if C.MINHASH in table.column_names:
        i = table.schema.get_field_index(C.MINHASH)
        table = table.set_column(i, C.MINHASH, lsh.minhash_binary(table.column(C.MINHASH)))
    return table


def write_signatures(table: pa.Table, path: str | Path) -> Path:
    """Write a signature (or pHash) table atomically, stored as `signatures_on_disk` says."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        pq.write_table(signatures_on_disk(table), tmp, **SIGNATURE_PARQUET)
    return path


def _as_arrow(batch: pa.Table | pl.DataFrame) -> pa.Table:
    return batch.to_arrow() if isinstance(batch, pl.DataFrame) else batch


def _like(batch: pa.Table | pl.DataFrame, out: pa.Table) -> pa.Table | pl.DataFrame:
    return pl.from_arrow(out) if isinstance(batch, pl.DataFrame) else out  # type: ignore[return-value]


def text_signatures(
    texts: pl.Series,
    ids: pa.Array | pa.ChunkedArray,
    cfg: NearConfig,
    threshold: float | None = None,
    ngram: int | None = None,
) -> pa.Table:
    """Signature table of texts (normalised and shingled as the config says)."""
    bands, rows = lsh_shape(cfg, threshold)
    sig, counts, lengths = minhash.signatures(texts, cfg.num_perm, ngram or cfg.ngram, cfg.shingle, cfg.seed)
    return signature_table(ids, sig, counts, lengths, bands, rows)


def near_text_signatures(batch: pa.Table | pl.DataFrame, cfg: NearConfig) -> pa.Table | pl.DataFrame:
    """Map step: `id`, `minhash`, `lsh_band_NN`, `near_length` for every record of a batch with a `text`.

    A record with no text (or only punctuation) gets null signature and bands: it joins no cluster.
    """
    table = _as_arrow(batch)
    texts = pl.Series(table.column(C.TEXT)).cast(pl.String)
    return _like(batch, text_signatures(texts, table.column(C.ID), cfg))


def keep_policy(
    ids: pa.Array | pa.ChunkedArray,
    component: np.ndarray,
    length: np.ndarray,
    quality: pa.Table | pl.DataFrame | None = None,
    published: np.ndarray | None = None,
) -> pl.DataFrame:
    """`id`, `near_cluster`, `dup_of` for clustered records: per component the record kept is the one
    already published (incremental runs), then the highest `quality`, then the longest, then the smallest id.
    """
    df = pl.DataFrame(
        {
            C.ID: pl.Series(ids).cast(pl.String),
            "_comp": component,
            "_len": length,
            "_old": published if published is not None else np.zeros(len(component), dtype=bool),
        }
    )
    if quality is not None:
        q = pl.from_arrow(quality) if isinstance(quality, pa.Table) else quality
        q = q.select(pl.col(C.ID).cast(pl.String), pl.col(C.QUALITY).cast(pl.Float64).alias("_q"))
        df = df.join(q.unique(C.ID, keep="first"), on=C.ID, how="left")
    else:
        df = df.with_columns(pl.lit(None, pl.Float64).alias("_q"))
    df = df.sort(
        ["_comp", "_old", "_q", "_len", C.ID], descending=[False, True, True, True, False], nulls_last=True
    )
    keeper = pl.col(C.ID).first().over("_comp")
    return df.select(
        C.ID,
        keeper.alias(C.NEAR_CLUSTER),
        pl.when(pl.col(C.ID) == keeper).then(None).otherwise(keeper).alias(C.DUP_OF),
        "_old",
    )


def cluster_output(
    rows: np.ndarray,
    table: pa.Table,
    labels: np.ndarray,
    quality: pa.Table | pl.DataFrame | None,
    n_published: int,
) -> pa.Table:
    """Keep policy over verified components, as a NEAR_CLUSTER_SCHEMA table (published records left out)."""
    if len(rows) == 0:
        return NEAR_CLUSTER_SCHEMA.empty_table()
    df = keep_policy(
        table.column(C.ID),
        labels,
        np.asarray(table.column(C.NEAR_LENGTH).fill_null(0)),
        quality,
        rows < n_published,
    )
    df = df.filter(~pl.col("_old")).drop("_old")
    return df.to_arrow().cast(NEAR_CLUSTER_SCHEMA)


def near_clusters(
    parts: Parts,
    cfg: NearConfig,
    quality: pa.Table | pl.DataFrame | None = None,
    published: Parts = (),
    threshold: float | None = None,
) -> pa.Table:
    """Global step: `id`, `near_cluster`, `dup_of` for every record of `parts` with a near-duplicate.

    `parts` are signature tables or their Parquet files (from near_text_signatures or
    record_signatures). `published` are the signature files of an already published version: their
    records are matched against but never reported and always kept (incremental mode). `quality`
    (`id`, `quality`) decides which record of a cluster is kept.
    """
    sigs = lsh.SignatureSet([*published, *parts])
    n_published = int(sigs.offsets[len(published)])
    t = cfg.threshold if threshold is None else threshold
    rows, table, labels = lsh.near_pairs(sigs, t)
    return cluster_output(rows, table, labels, quality, n_published)

"""Near-duplicate structured records: MinHash over field-tagged tokens of configured key fields.

Each key field is normalised and shingled on its own; with field tagging a token hashes differently in
each field (a salt per field name), so `title: data` and `venue: data` do not match. The signature of a
record is the element-wise minimum of its fields' signatures (the MinHash of the union of their
shingles), so records share the text path's LSH, verification and keep policy.
"""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pyarrow as pa

from pipeline import lsh, minhash
from pipeline.near import Parts, _as_arrow, _like, cluster_output, lsh_shape, signature_table
from schemas import columns as C
from schemas.near import NearConfig


def record_fields(data: pl.Series, fields: list[str] | None) -> pl.DataFrame:
    """The key fields of records given as canonical JSON strings, as strings (missing fields empty)."""
    data = data.fill_null("{}")
    if fields is None:
        seen: dict[str, None] = {}
        for row in data.head(1000).to_list():
            seen.update(dict.fromkeys(json.loads(row)))
        fields = list(seen)
    cols = {}
    for f in fields:
        path = "$." + f if f.isidentifier() else f'$["{f}"]'
        cols[f] = data.str.json_path_match(path).fill_null("")
    return pl.DataFrame(cols) if cols else pl.DataFrame({"": pl.Series([""] * len(data))})


def field_signatures(frame: pl.DataFrame, cfg: NearConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MinHash signatures, shingle counts and lengths of records given as one string column per field."""
    sig = counts = lengths = None
    for name in frame.columns:
        salt = minhash.name_salt(name) if cfg.record_tag_fields else 0
        s, c, n = minhash.signatures(frame[name], cfg.num_perm, cfg.record_ngram, "word", cfg.seed, salt)
        if sig is None:
            sig, counts, lengths = s, c, n
        else:
            np.minimum(sig, s, out=sig)
            counts += c
            lengths += n
    assert sig is not None and counts is not None and lengths is not None
    return sig, counts, lengths


def record_signatures(batch: pa.Table | pl.DataFrame, cfg: NearConfig) -> pa.Table | pl.DataFrame:
    """Map step for records: `id`, `minhash`, `lsh_bands`, `near_length` from the `data` JSON's key fields
    (cfg.record_fields, default all), banded for cfg.record_threshold."""
    table = _as_arrow(batch)
    frame = record_fields(pl.Series(table.column(C.DATA)).cast(pl.String), cfg.record_fields)
    sig, counts, lengths = field_signatures(frame, cfg)
    bands, rows = lsh_shape(cfg, cfg.record_threshold)
    return _like(batch, signature_table(table.column(C.ID), sig, counts, lengths, bands, rows))


def record_clusters(
    parts: Parts, cfg: NearConfig, quality: pa.Table | pl.DataFrame | None = None, published: Parts = ()
) -> pa.Table:
    """Global step for records: `id`, `near_cluster`, `dup_of` at estimated Jaccard >= record_threshold."""
    sigs = lsh.SignatureSet([*published, *parts])
    rows, table, labels = lsh.near_pairs(sigs, cfg.record_threshold)
    return cluster_output(rows, table, labels, quality, int(sigs.offsets[len(published)]))

"""Semantic duplicates over the whole workspace: pairs of same-language records whose vectors are closer
than `[semantic] eps` (SemDeDup-style, compared inside k-means clusters). Writes the verified pairs;
`dedup` joins them with the exact and near links and chooses one keeper per group.

Languages the embedder does not cover (`[semantic] languages`) and records of unknown language are not
compared; the counts are kept in the output's metadata for the run summary.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.stages.spec import Stage
from pipeline.workspace import Workspace, read_rows
from schemas import columns as C
from schemas.config import CurateConfig
from schemas.embed import SemanticConfig

STATS_KEY = b"curate.stats"
PAIRS_SCHEMA = pa.schema(
    [pa.field(C.ID_A, pa.string()), pa.field(C.ID_B, pa.string()), pa.field(C.SIMILARITY, pa.float32())]
)


def vectors_with_lang(ws: Workspace, ids: pa.Array | None = None) -> pa.Table:
    """`id`, `embedding`, `lang`, `lang_score` of every embedded record (or of `ids`); language null where
    unknown."""
    import polars as pl

    from pipeline.semantic import read_vectors

    files = ws.stage_files("embed")
    vectors = read_vectors(files) if ids is None or not files else read_rows(files, [C.ID, C.EMBEDDING], ids)
    vectors = vectors.filter(vectors[C.EMBEDDING].is_valid())
    lang_files = ws.stage_files("lang")
    if lang_files:
        langs = read_rows(lang_files, [C.ID, C.LANG, C.LANG_SCORE], ids)
        joined = pl.from_arrow(vectors.select([C.ID])).join(
            pl.from_arrow(langs), on=C.ID, how="left", maintain_order="left"
        )
        lang, score = joined[C.LANG].to_arrow(), joined[C.LANG_SCORE].to_arrow()
    else:
        lang, score = pa.nulls(vectors.num_rows, pa.string()), pa.nulls(vectors.num_rows, pa.float32())
    return vectors.append_column(C.LANG, lang.cast(pa.string())).append_column(
        C.LANG_SCORE, score.cast(pa.float32())
    )


def semantic_config(cfg: CurateConfig) -> SemanticConfig:
    """`[semantic]` with eps resolved for the configured embedder (static and transformer vectors differ)."""
    return cfg.semantic.for_embedder(cfg.embed.embedder)


def semantic_step(root: Path, cfg: CurateConfig) -> pa.Table:
    """The verified same-language duplicate pairs (`id_a`, `id_b`, `similarity`); stats in the metadata."""
    from pipeline.semantic import semantic_edges

    ws = Workspace(root)
    if not ws.stage_files("embed"):
        return PAIRS_SCHEMA.empty_table()
    table = vectors_with_lang(ws)
    pairs, stats = semantic_edges(table, semantic_config(cfg))
    pairs = pairs.select(PAIRS_SCHEMA.names).cast(PAIRS_SCHEMA)
    return pairs.replace_schema_metadata({STATS_KEY: json.dumps(stats, sort_keys=True).encode()})


def semantic_stats(ws: Workspace) -> dict:
    """What the last semantic step compared and skipped, per language (empty when it did not run)."""
    path = ws.global_path("semantic")
    if not path.exists():
        return {}
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(STATS_KEY, b"{}"))


STAGE = Stage(
    name="semantic",
    kind="global",
    doc="same-language pairs with cosine >= 1 - eps inside k-means clusters ([semantic])",
    inputs=("embed", "lang"),
    writes=PAIRS_SCHEMA,
    settings=lambda cfg: {
        "semantic": semantic_config(cfg).model_dump(),
        "lang": cfg.lang.model_dump(include={"candidates"}),
    },
    enabled=lambda cfg: cfg.stages.embed and cfg.stages.semantic,
    global_fn=semantic_step,
    joined=(),
    view="semantic_pairs",
)

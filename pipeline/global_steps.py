"""Global steps over every part of the workspace: near-duplicate clusters and semantic clusters."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.image_hash import image_clusters
from pipeline.near import near_clusters
from pipeline.record_near import record_clusters
from pipeline.stages import STAGES
from pipeline.workspace import (
    EMBED,
    NEAR,
    NEAR_IMAGE,
    NEAR_RECORD,
    NEAR_TEXT,
    QUALITY,
    SEMANTIC,
    Workspace,
    is_fresh,
    write_parquet,
)
from schemas import columns as C
from schemas.config import CurateConfig, config_hash
from schemas.near import NEAR_CLUSTER_SCHEMA


def _quality(ws: Workspace) -> pa.Table | None:
    files = ws.stage_files(QUALITY)
    return pa.concat_tables([pq.read_table(f, columns=[C.ID, C.QUALITY]) for f in files]) if files else None


def near_step(ws: Workspace, cfg: CurateConfig) -> pa.Table:
    """Write `<ws>/near.parquet`: `id`, `near_cluster`, `dup_of` for every record with a near-duplicate.

    Inside a cluster the record with the highest quality score is kept when the quality stage ran.
    With `[near] published`, new records are also matched against those workspaces' signatures.
    """
    quality = _quality(ws)
    old = [Workspace(p) for p in cfg.near.published]
    found = []
    for stage, fn in (
        (NEAR_TEXT, near_clusters),
        (NEAR_IMAGE, image_clusters),
        (NEAR_RECORD, record_clusters),
    ):
        files = ws.stage_files(stage)
        if files:
            published = [f for o in old for f in o.stage_files(stage)]
            want = config_hash(STAGES[stage].config(cfg))
            stale = [f for f in published if not is_fresh(f, want)]
            if stale:
                raise ValueError(
                    f"{stale[0]}: signatures made with other [near] settings than this run's; "
                    "use the published version's [near] settings to dedup against it"
                )
            found.append(fn(files, cfg.near, quality=quality, published=published).cast(NEAR_CLUSTER_SCHEMA))
    table = pa.concat_tables(found) if found else NEAR_CLUSTER_SCHEMA.empty_table()
    write_parquet(table, ws.global_path(NEAR))
    return table


def semantic_step(ws: Workspace, cfg: CurateConfig) -> pa.Table:
    """Write `<ws>/semantic.parquet`: `id`, `semantic_cluster`, `semantic_dup_of`, `kmeans_cluster`."""
    from pipeline.semantic import read_vectors, semantic_clusters

    vectors = read_vectors(ws.stage_files(EMBED))
    vectors = vectors.filter(vectors[C.EMBEDDING].is_valid())
    table = semantic_clusters(vectors, cfg.semantic)
    write_parquet(table, ws.global_path(SEMANTIC))
    return table

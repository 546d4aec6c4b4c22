"""Global steps over every part of the workspace: near-duplicate clusters (text, images, records)."""

from __future__ import annotations

import pyarrow as pa

from pipeline.image_hash import image_clusters
from pipeline.near import near_clusters
from pipeline.record_near import record_clusters
from pipeline.stages import NEAR_IMAGE, NEAR_RECORD, NEAR_TEXT
from pipeline.workspace import Workspace, write_parquet
from schemas.config import CurateConfig
from schemas.near import NEAR_CLUSTER_SCHEMA

NEAR = "near"


def near_step(ws: Workspace, cfg: CurateConfig, quality: pa.Table | None = None) -> pa.Table:
    """Write `<ws>/near.parquet`: `id`, `near_cluster`, `dup_of` for every record with a near-duplicate."""
    found = []
    for stage, fn in ((NEAR_TEXT, near_clusters), (NEAR_IMAGE, image_clusters), (NEAR_RECORD, record_clusters)):
        files = ws.stage_files(stage)
        if files:
            found.append(fn(files, cfg.near, quality=quality).cast(NEAR_CLUSTER_SCHEMA))
    table = pa.concat_tables(found) if found else NEAR_CLUSTER_SCHEMA.empty_table()
    write_parquet(table, ws.global_path(NEAR))
    return table

"""Near-duplicate clusters over the whole workspace: LSH over the text and record signatures, Hamming
search over image hashes. Writes one component label per clustered record; `dedup` chooses the keeper.

With `[near] published`, records are also matched against the signatures stored in those (already
published) workspaces; a cluster holding a published record names it in `near_published`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.stages.spec import Stage
from pipeline.workspace import Workspace, is_fresh
from schemas import columns as C
from schemas.config import CurateConfig, config_hash

NEAR_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string(), nullable=False),
        pa.field(C.NEAR_CLUSTER, pa.string()),
        pa.field(C.NEAR_PUBLISHED, pa.string()),
    ]
)
KINDS = ("near_text", "near_image", "near_record")


def published_files(cfg: CurateConfig, kind: str) -> list[Path]:
    """Signature files of `kind` in the `[near] published` workspaces; refused when made with other
    settings."""
    from pipeline.stages import STAGES

    want = config_hash(STAGES[kind].settings(cfg))
    files = [f for p in cfg.near.published for f in Workspace(p).stage_files(kind)]
    stale = [f for f in files if not is_fresh(f, want)]
    if stale:
        raise ValueError(
            f"{stale[0]}: signatures made with other [near] settings than this run's; "
            "use the published version's [near] settings to dedup against it"
        )
    return files


def _label(ids: np.ndarray, comp: np.ndarray, old: np.ndarray) -> pa.Table:
    """`id`, `near_cluster` (the component's smallest new id), `near_published` (its smallest published id)
    for the new (not published) rows."""
    import polars as pl

    df = pl.DataFrame({C.ID: pl.Series(ids, dtype=pl.String), "c": comp, "old": old})
    firsts = df.group_by("c").agg(
        pl.col(C.ID).filter(~pl.col("old")).min().alias(C.NEAR_CLUSTER),
        pl.col(C.ID).filter(pl.col("old")).min().alias(C.NEAR_PUBLISHED),
    )
    out = df.filter(~pl.col("old")).join(firsts, on="c", how="left", maintain_order="left")
    return out.select(C.ID, C.NEAR_CLUSTER, C.NEAR_PUBLISHED).to_arrow().cast(NEAR_SCHEMA)


def _components(kind: str, files: list[Path], published: list[Path], cfg: CurateConfig) -> pa.Table:
    from pipeline import lsh
    from pipeline.image_hash import image_components

    if kind == "near_image":
        ids, comp, old, _ = image_components(files, cfg.near, published)
    else:
        t = cfg.near.threshold if kind == "near_text" else cfg.near.record_threshold
        sigs = lsh.SignatureSet([*published, *files])
        rows, table, comp = lsh.near_pairs(sigs, t, columns=(C.ID,))
        ids = table.column(C.ID)
        old = rows < int(sigs.offsets[len(published)])
    return _label(ids, comp, old)


def near_step(root: Path, cfg: CurateConfig) -> pa.Table:
    """`id`, `near_cluster`, `near_published` for every record with a verified near-duplicate."""
    ws = Workspace(root)
    found = [
        _components(kind, files, published_files(cfg, kind), cfg)
        for kind in KINDS
        if (files := ws.stage_files(kind))
    ]
    return pa.concat_tables(found) if found else NEAR_SCHEMA.empty_table()


STAGE = Stage(
    name="near",
    kind="global",
    doc="connected components of verified near-duplicate pairs (MinHash-LSH, pHash Hamming)",
    inputs=KINDS,
    writes=NEAR_SCHEMA,
    settings=lambda cfg: {
        "near": cfg.near.model_dump(),
        # a published workspace's signatures can change under the same path
        "published": [
            [str(f), f.stat().st_size, f.stat().st_mtime_ns]
            for k in KINDS
            for p in cfg.near.published
            for f in Workspace(p).stage_files(k)
        ],
    },
    enabled=lambda cfg: cfg.stages.near,
    global_fn=near_step,
    joined=(),
    view="near_clusters",
)

"""Text embeddings, per part: one vector per text or record, cached by content hash ([embed])."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipeline.stages.spec import Stage
from schemas import columns as C
from schemas.config import CurateConfig

EMBED_KEYS = {"embedder", "model", "dtype", "long_text", "max_length", "static_dims"}

EMBED_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string()),
        pa.field(C.CONTENT_HASH, pa.string()),
        pa.field(C.EMBEDDING, pa.list_(pa.float32(), 1)),  # the width follows the model
    ]
)


def embed_cache_dir(cfg: CurateConfig, root: Path) -> Path:
    """Where vectors are cached by content hash: `[embed] cache_dir`, else `<ws>/embeddings`."""
    return Path(cfg.embed.cache_dir) if cfg.embed.cache_dir else root / "embeddings"


def _embed(t: pa.Table, cfg: CurateConfig, root: Path) -> pa.Table:
    from pipeline.embed_cache import embed_table

    t = t.filter(pa.compute.not_equal(t[C.MODALITY], C.IMAGE_MODALITY))
    # the stage file holds the vectors it computes; only a cache shared by workspaces gets a second copy
    return embed_table(
        t, cfg.embed, cache_dir=embed_cache_dir(cfg, root), store=cfg.embed.cache_dir is not None
    )


STAGE = Stage(
    name="embed",
    kind="map",
    doc="static (model2vec) or transformer vector of each text / record JSON, never computed twice",
    reads=(C.ID, C.MODALITY, C.TEXT, C.DATA),
    after=(("exact", (C.CONTENT_HASH,)),),
    writes=EMBED_SCHEMA,
    settings=lambda cfg: cfg.embed.model_dump(include=EMBED_KEYS),
    enabled=lambda cfg: cfg.stages.embed,
    map_fn=_embed,
    joined=(),
    view="embeddings",
)

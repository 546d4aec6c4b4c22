"""Image embeddings, per part, with a CLIP-style `[embed] image_model`: vectors and `caption_alignment`."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipeline.stages.embed import embed_cache_dir
from pipeline.stages.spec import Stage
from schemas import columns as C
from schemas.config import CurateConfig

IMAGE_EMBED_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string()),
        pa.field(C.CONTENT_HASH, pa.string()),
        pa.field(C.EMBEDDING, pa.list_(pa.float32(), 1)),
        pa.field(C.CAPTION_ALIGNMENT, pa.float32()),
    ]
)


def _embed(t: pa.Table, cfg: CurateConfig, root: Path) -> pa.Table:
    from pipeline.embed_cache import embed_image_table

    return embed_image_table(t, cfg.embed, cache_dir=embed_cache_dir(cfg, root))


STAGE = Stage(
    name="embed_image",
    kind="map",
    doc="image vector in a CLIP space and the cosine of image and caption (`caption_alignment`)",
    modality=C.IMAGE_MODALITY,
    reads=(C.ID, C.MODALITY, C.IMAGE, C.TEXT),
    after=(("exact", (C.CONTENT_HASH,)),),
    writes=IMAGE_EMBED_SCHEMA,
    settings=lambda cfg: cfg.embed.model_dump(include={"image_model", "dtype"}),
    enabled=lambda cfg: cfg.stages.embed and cfg.embed.image_model is not None,
    map_fn=_embed,
    joined=(C.CAPTION_ALIGNMENT,),
    carried=(C.CAPTION_ALIGNMENT,),
    view="image_embeddings",
)

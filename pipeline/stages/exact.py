"""Exact duplicates, per part: `content_hash` of each record's normalised content (groups form in `dedup`)."""

from __future__ import annotations

from pipeline.exact import content_hashes
from pipeline.stages.spec import Stage
from schemas import columns as C
from schemas.record import EXACT_SCHEMA

STAGE = Stage(
    name="exact",
    kind="map",
    doc="xxh3-128 of normalised text, image bytes or canonical record JSON (null for empty content)",
    reads=(C.ID, C.MODALITY, C.TEXT, C.IMAGE, C.DATA),
    writes=EXACT_SCHEMA,
    settings=lambda cfg: {"v": 1},
    map_fn=lambda t, cfg, root: content_hashes(t),
    carried=(C.CONTENT_HASH,),
)

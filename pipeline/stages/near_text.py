"""Near-duplicate text, per part: MinHash signatures and LSH band keys (clusters form in `near`)."""

from __future__ import annotations

from pipeline.near import SIGNATURE_PARQUET, near_text_signatures, signature_schema, signatures_on_disk
from pipeline.stages.spec import Stage
from schemas import columns as C

TEXT_KEYS = {"shingle", "ngram", "threshold", "num_perm", "bands", "rows", "fp_weight", "seed"}

STAGE = Stage(
    name="near_text",
    kind="map",
    doc="MinHash of word/char n-gram shingles of normalised text, banded for the [near] threshold",
    modality=C.TEXT_MODALITY,
    reads=(C.ID, C.MODALITY, C.TEXT),
    writes=signature_schema(1, 0),  # the real width and band count follow [near]
    settings=lambda cfg: cfg.near.model_dump(include=TEXT_KEYS),
    enabled=lambda cfg: cfg.stages.near,
    map_fn=lambda t, cfg, root: near_text_signatures(t, cfg.near),
    on_disk=signatures_on_disk,
    parquet=SIGNATURE_PARQUET,
    joined=(),
)

"""Near-duplicate structured records, per part: MinHash of key-field tokens (clusters form in `near`)."""

from __future__ import annotations

from pipeline.near import SIGNATURE_PARQUET, signature_schema, signatures_on_disk
from pipeline.record_near import record_signatures
from pipeline.stages.spec import Stage
from schemas import columns as C

RECORD_KEYS = {
    "record_fields",
    "record_threshold",
    "record_ngram",
    "record_tag_fields",
    "num_perm",
    "seed",
    "fp_weight",
    "bands",
    "rows",
}

STAGE = Stage(
    name="near_record",
    kind="map",
    doc="MinHash over the tokens of the configured key fields of each record ([near] record_*)",
    modality=C.RECORD_MODALITY,
    reads=(C.ID, C.MODALITY, C.DATA),
    writes=signature_schema(1, 0),
    settings=lambda cfg: cfg.near.model_dump(include=RECORD_KEYS),
    enabled=lambda cfg: cfg.stages.near,
    map_fn=lambda t, cfg, root: record_signatures(t, cfg.near),
    on_disk=signatures_on_disk,
    parquet=SIGNATURE_PARQUET,
    joined=(),
)

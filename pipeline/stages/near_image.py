"""Near-duplicate images, per part: 64-bit perceptual hashes (clusters form in `near`)."""

from __future__ import annotations

from pipeline.image_hash import PHASH_SCHEMA, image_phash
from pipeline.near import SIGNATURE_PARQUET, signatures_on_disk
from pipeline.stages.spec import Stage
from schemas import columns as C

STAGE = Stage(
    name="near_image",
    kind="map",
    doc="pHash (DCT of a 32x32 grey image, identical to imagehash.phash) of each image",
    modality=C.IMAGE_MODALITY,
    reads=(C.ID, C.MODALITY, C.IMAGE, C.IMAGE_PATH),
    writes=PHASH_SCHEMA,
    settings=lambda cfg: {"v": 1},
    enabled=lambda cfg: cfg.stages.near,
    map_fn=lambda t, cfg, root: image_phash(t, cfg.near),
    on_disk=signatures_on_disk,
    parquet=SIGNATURE_PARQUET,
    joined=(),
)

"""PII, per part: `pii_count`, `pii_kinds`; with `[pii] action = "drop"` a record with PII is not
published."""

from __future__ import annotations

from pipeline.stages.spec import Stage, Verdict
from quality.pii import PII_SCHEMA
from schemas import columns as C
from schemas.config import CurateConfig


def _scan(t, cfg: CurateConfig, root):  # noqa: ANN001, ANN202 - MapFn
    from quality.pii import scan

    return scan(t, cfg.pii)


STAGE = Stage(
    name="pii",
    kind="map",
    doc="e-mail, phone (libphonenumber-valid), IP, credit card (Luhn), IBAN (mod-97) in each text ([pii])",
    modality=C.TEXT_MODALITY,
    reads=(C.ID, C.MODALITY, C.TEXT),
    writes=PII_SCHEMA,
    settings=lambda cfg: cfg.pii.model_dump(include={"kinds", "phone_regions"}),
    enabled=lambda cfg: cfg.stages.pii,
    map_fn=_scan,
    carried=(C.PII_COUNT, C.PII_KINDS),
    verdict=lambda cfg: (
        Verdict(rank=50, when=f"coalesce({C.PII_COUNT}, 0) > 0", reason="'pii'")
        if cfg.pii.action == "drop"
        else None
    ),
)

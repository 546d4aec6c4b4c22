"""Heuristic quality rules, per part: one `rule_<name>` score per rule and the first failure as the reason."""

from __future__ import annotations

from pipeline.stages.spec import Stage, Verdict
from quality.rules import RULE_COLUMNS, RULES_SCHEMA, apply_rules
from schemas import columns as C

STAGE = Stage(
    name="rules",
    kind="map",
    doc="Gopher/C4-style text rules, image size/blank checks, record field checks ([rules.*])",
    reads=(C.ID, C.MODALITY, C.TEXT, C.IMAGE, C.WIDTH, C.HEIGHT, C.DATA),
    writes=RULES_SCHEMA,
    settings=lambda cfg: cfg.rules,
    map_fn=lambda t, cfg, root: apply_rules(t, cfg.rules),
    carried=tuple(RULE_COLUMNS),
    verdict=lambda cfg: Verdict(rank=30, when=f"{C.RULE_REASON} IS NOT NULL", reason=C.RULE_REASON),
)

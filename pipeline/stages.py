"""Map stages over workspace parts: read a part, apply a pure stage, write its columns; skip fresh work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.exact import content_hashes
from pipeline.workspace import EXACT, INGEST, RULES, Workspace, is_fresh, write_parquet
from quality.rules import apply_rules
from schemas import columns as C
from schemas.config import CurateConfig, config_hash

# Which record columns each stage needs (a narrow read keeps image bytes out of stages that skip them).
EXACT_COLUMNS = [C.ID, C.MODALITY, C.TEXT, C.IMAGE, C.DATA]
RULES_COLUMNS = [C.ID, C.MODALITY, C.TEXT, C.IMAGE, C.WIDTH, C.HEIGHT, C.DATA]


@dataclass(frozen=True)
class MapStage:
    """A per-part stage: its workspace folder, the input columns it reads and its pure function."""

    name: str
    columns: list[str]
    fn: Callable[[pa.Table, CurateConfig], pa.Table]
    config: Callable[[CurateConfig], object]


STAGES: dict[str, MapStage] = {
    EXACT: MapStage(EXACT, EXACT_COLUMNS, lambda t, cfg: content_hashes(t), lambda cfg: {"v": 1}),
    RULES: MapStage(RULES, RULES_COLUMNS, lambda t, cfg: apply_rules(t, cfg.rules), lambda cfg: cfg.rules),
}


def run_stage_on_part(stage: MapStage, ws: Workspace, part: str, cfg: CurateConfig) -> bool:
    """Run one stage on one part unless its output is fresh; returns True when work was done."""
    out = ws.part_path(stage.name, part)
    h = config_hash(stage.config(cfg))  # type: ignore[arg-type]
    if is_fresh(out, h):
        return False
    batch = pq.read_table(ws.part_path(INGEST, part), columns=stage.columns)
    write_parquet(stage.fn(batch, cfg), out, h)
    return True


def remove_orphans(ws: Workspace, stage: str) -> None:
    """Delete a stage's outputs whose ingest part no longer exists (its input changed)."""
    parts = set(ws.parts())
    for f in ws.stage_files(stage):
        if f.stem not in parts:
            f.unlink()

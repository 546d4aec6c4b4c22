"""Map stages over workspace parts: read a part, apply a pure stage, write its columns; skip fresh work."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.exact import content_hashes
from pipeline.image_hash import image_phash
from pipeline.near import near_text_signatures, write_signatures
from pipeline.record_near import record_signatures
from pipeline.workspace import CONFIG_HASH_KEY, EXACT, INGEST, RULES, Workspace, is_fresh, write_parquet
from quality.rules import apply_rules
from schemas import columns as C
from schemas.config import CurateConfig, config_hash

NEAR_TEXT, NEAR_IMAGE, NEAR_RECORD = "near_text", "near_image", "near_record"


@dataclass(frozen=True)
class MapStage:
    """A per-part stage: its workspace folder, the input columns it reads and its pure function.

    `modality` restricts the stage to one modality's rows (the others are not passed in at all).
    """

    name: str
    columns: list[str]
    fn: Callable[[pa.Table, CurateConfig], pa.Table]
    config: Callable[[CurateConfig], object]
    modality: str | None = None
    writer: Callable[[pa.Table, Path], Path] | None = None


STAGES: dict[str, MapStage] = {
    EXACT: MapStage(
        EXACT, [C.ID, C.MODALITY, C.TEXT, C.IMAGE, C.DATA], lambda t, cfg: content_hashes(t), lambda cfg: {"v": 1}
    ),
    RULES: MapStage(
        RULES,
        [C.ID, C.MODALITY, C.TEXT, C.IMAGE, C.WIDTH, C.HEIGHT, C.DATA],
        lambda t, cfg: apply_rules(t, cfg.rules),
        lambda cfg: cfg.rules,
    ),
    NEAR_TEXT: MapStage(
        NEAR_TEXT,
        [C.ID, C.MODALITY, C.TEXT],
        lambda t, cfg: near_text_signatures(t, cfg.near),
        lambda cfg: cfg.near.model_dump(include={"shingle", "ngram", "threshold", "num_perm", "bands", "rows",
                                                 "fp_weight", "seed"}),
        C.TEXT_MODALITY,
        write_signatures,
    ),
    NEAR_IMAGE: MapStage(
        NEAR_IMAGE,
        [C.ID, C.MODALITY, C.IMAGE, C.IMAGE_PATH],
        lambda t, cfg: image_phash(t, cfg.near),
        lambda cfg: {"v": 1},
        C.IMAGE_MODALITY,
        write_signatures,
    ),
    NEAR_RECORD: MapStage(
        NEAR_RECORD,
        [C.ID, C.MODALITY, C.DATA],
        lambda t, cfg: record_signatures(t, cfg.near),
        lambda cfg: cfg.near.model_dump(
            include={"record_fields", "record_threshold", "record_ngram", "record_tag_fields", "num_perm",
                     "seed", "fp_weight", "bands", "rows"}
        ),
        C.RECORD_MODALITY,
        write_signatures,
    ),
}


def stages_for(cfg: CurateConfig) -> list[MapStage]:
    """The map stages a config turns on, in run order."""
    names = [EXACT, RULES]
    if cfg.stages.near:
        names += [NEAR_TEXT, NEAR_IMAGE, NEAR_RECORD]
    return [STAGES[n] for n in names]


def run_stage_on_part(stage: MapStage, ws: Workspace, part: str, cfg: CurateConfig) -> bool:
    """Run one stage on one part unless its output is fresh; returns True when work was done."""
    out = ws.part_path(stage.name, part)
    h = config_hash(stage.config(cfg))  # type: ignore[arg-type]
    if is_fresh(out, h):
        return False
    batch = pq.read_table(ws.part_path(INGEST, part), columns=stage.columns)
    if stage.modality is not None:
        batch = batch.filter(pc.equal(batch[C.MODALITY], stage.modality))
    result = stage.fn(batch, cfg)
    if stage.writer is None:
        write_parquet(result, out, h)
    else:
        meta = dict(result.schema.metadata or {}) | {CONFIG_HASH_KEY: h.encode()}
        stage.writer(result.replace_schema_metadata(meta), out)
    return True


def remove_orphans(ws: Workspace, stage: str) -> None:
    """Delete a stage's outputs whose ingest part no longer exists (its input changed)."""
    parts = set(ws.parts())
    for f in ws.stage_files(stage):
        if f.stem not in parts:
            f.unlink()

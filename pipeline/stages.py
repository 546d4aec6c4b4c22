"""Map stages over workspace parts: read a part, apply a pure stage, write its columns; skip fresh work.

Stages run in waves: a stage may read an earlier wave's output of the same part (the embedder reads the
content hashes, the quality scorer reads the vectors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pipeline.exact import content_hashes
from pipeline.image_hash import image_phash
from pipeline.near import near_text_signatures, write_signatures
from pipeline.record_near import record_signatures
from pipeline.workspace import (
    CONFIG_HASH_KEY,
    EMBED,
    EXACT,
    INGEST,
    LANG,
    NEAR_IMAGE,
    NEAR_RECORD,
    NEAR_TEXT,
    PII,
    QUALITY,
    RULES,
    Workspace,
    is_fresh,
    write_parquet,
)
from quality.rules import apply_rules
from schemas import columns as C
from schemas.config import CurateConfig, config_hash

Fn = Callable[[pa.Table, CurateConfig, Workspace], pa.Table]


@dataclass(frozen=True)
class MapStage:
    """A per-part stage: its workspace folder, what it reads, its pure function and the config it hashes.

    `modality` restricts the stage to one modality's rows; `joins` are earlier stages whose columns of
    the same part are added to the input (by id).
    """

    name: str
    columns: list[str]
    fn: Fn
    config: Callable[[CurateConfig], Any]
    modality: str | None = None
    writer: Callable[[pa.Table, Path], Path] | None = None
    joins: tuple[tuple[str, tuple[str, ...]], ...] = ()


def _embed(t: pa.Table, cfg: CurateConfig, ws: Workspace) -> pa.Table:
    from quality.embed_cache import embed_table

    return embed_table(t, cfg.embed, cache_dir=embed_cache_dir(cfg, ws))


def _quality(t: pa.Table, cfg: CurateConfig, ws: Workspace) -> pa.Table:
    from quality import classifier
    from quality.cascade import score_table
    from quality.embed_cache import model_key

    model = classifier.load(cfg.quality.model_dir)
    if model_key(model.embed_config) != model_key(cfg.embed):  # vectors of another tier: embed anew
        t = t.drop_columns([C.EMBEDDING])
    return score_table(t, model, cfg.embed)


def _lang(t: pa.Table, cfg: CurateConfig, ws: Workspace) -> pa.Table:
    from quality.langid import detect

    return detect(t, cfg.lang)


def _pii(t: pa.Table, cfg: CurateConfig, ws: Workspace) -> pa.Table:
    from quality.pii import scan

    return scan(t, cfg.pii)


def embed_cache_dir(cfg: CurateConfig, ws: Workspace) -> Path:
    """Where vectors are cached by content hash: the configured folder, else `<ws>/embeddings`."""
    return Path(cfg.embed.cache_dir) if cfg.embed.cache_dir else ws.root / "embeddings"


def _model_stamp(cfg: CurateConfig) -> dict:
    d = Path(cfg.quality.model_dir or "")
    files = sorted(d.glob("*")) if d.is_dir() else []
    return {
        "dir": str(d.resolve()),
        "files": [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files],
        "embed": cfg.embed.model_dump(include={"embedder", "model", "static_dims", "cascade_uncertainty"}),
    }


_EMBED_KEYS = {"embedder", "model", "dtype", "long_text", "max_length", "static_dims"}

STAGES: dict[str, MapStage] = {
    EXACT: MapStage(
        EXACT,
        [C.ID, C.MODALITY, C.TEXT, C.IMAGE, C.DATA],
        lambda t, cfg, ws: content_hashes(t),
        lambda cfg: {"v": 1},
    ),
    RULES: MapStage(
        RULES,
        [C.ID, C.MODALITY, C.TEXT, C.IMAGE, C.WIDTH, C.HEIGHT, C.DATA],
        lambda t, cfg, ws: apply_rules(t, cfg.rules),
        lambda cfg: cfg.rules,
    ),
    NEAR_TEXT: MapStage(
        NEAR_TEXT,
        [C.ID, C.MODALITY, C.TEXT],
        lambda t, cfg, ws: near_text_signatures(t, cfg.near),
        lambda cfg: cfg.near.model_dump(
            include={"shingle", "ngram", "threshold", "num_perm", "bands", "rows", "fp_weight", "seed"}
        ),
        C.TEXT_MODALITY,
        write_signatures,
    ),
    NEAR_IMAGE: MapStage(
        NEAR_IMAGE,
        [C.ID, C.MODALITY, C.IMAGE, C.IMAGE_PATH],
        lambda t, cfg, ws: image_phash(t, cfg.near),
        lambda cfg: {"v": 1},
        C.IMAGE_MODALITY,
        write_signatures,
    ),
    NEAR_RECORD: MapStage(
        NEAR_RECORD,
        [C.ID, C.MODALITY, C.DATA],
        lambda t, cfg, ws: record_signatures(t, cfg.near),
        lambda cfg: cfg.near.model_dump(
            include={
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
        ),
        C.RECORD_MODALITY,
        write_signatures,
    ),
    LANG: MapStage(
        LANG,
        [C.ID, C.MODALITY, C.TEXT],
        _lang,
        lambda cfg: cfg.lang.model_dump(include={"candidates", "max_chars"}),
        C.TEXT_MODALITY,
    ),
    PII: MapStage(
        PII,
        [C.ID, C.MODALITY, C.TEXT],
        _pii,
        lambda cfg: cfg.pii.model_dump(include={"kinds", "phone_regions"}),
        C.TEXT_MODALITY,
    ),
    EMBED: MapStage(
        EMBED,
        [C.ID, C.MODALITY, C.TEXT, C.DATA],
        _embed,
        lambda cfg: cfg.embed.model_dump(include=_EMBED_KEYS),
        joins=((EXACT, (C.CONTENT_HASH,)),),
    ),
    QUALITY: MapStage(
        QUALITY,
        [C.ID, C.MODALITY, C.TEXT],
        _quality,
        _model_stamp,
        C.TEXT_MODALITY,
        joins=((EMBED, (C.EMBEDDING,)),),
    ),
}


def waves(cfg: CurateConfig) -> list[list[MapStage]]:
    """The map stages a config turns on, grouped so each wave only reads earlier waves' outputs."""
    s = cfg.stages
    second = [RULES]
    second += [NEAR_TEXT, NEAR_IMAGE, NEAR_RECORD] if s.near else []
    second += [LANG] if s.lang else []
    second += [PII] if s.pii else []
    second += [EMBED] if s.embed else []
    third = [QUALITY] if cfg.quality.model_dir else []
    return [[STAGES[n] for n in wave] for wave in ([EXACT], second, third) if wave]


def stages_for(cfg: CurateConfig) -> list[MapStage]:
    """The map stages a config turns on, in run order."""
    return [s for wave in waves(cfg) for s in wave]


def run_stage_on_part(stage: MapStage, ws: Workspace, part: str, cfg: CurateConfig) -> bool:
    """Run one stage on one part unless its output is fresh; returns True when work was done."""
    out = ws.part_path(stage.name, part)
    h = config_hash(stage.config(cfg))
    if is_fresh(out, h):
        return False
    batch = pq.read_table(ws.part_path(INGEST, part), columns=stage.columns)
    for name, cols in stage.joins:
        other = pq.read_table(ws.part_path(name, part), columns=[C.ID, *cols])
        batch = _add_columns(batch, other, list(cols))
    if stage.modality is not None:
        batch = batch.filter(pc.equal(batch[C.MODALITY], stage.modality))
    result = stage.fn(batch, cfg, ws)
    if stage.writer is None:
        write_parquet(result, out, h)
    else:
        meta = dict(result.schema.metadata or {}) | {CONFIG_HASH_KEY: h.encode()}
        stage.writer(result.replace_schema_metadata(meta), out)
    return True


def _add_columns(batch: pa.Table, other: pa.Table, cols: list[str]) -> pa.Table:
    """`batch` with `other`'s columns, matched by id, in `batch`'s row order."""
    if not other[C.ID].equals(batch[C.ID]):
        import polars as pl

        joined = pl.from_arrow(batch.select([C.ID])).join(
            pl.from_arrow(other), on=C.ID, how="left", maintain_order="left"
        )
        other = joined.to_arrow()
    for c in cols:
        batch = batch.append_column(c, other[c])
    return batch


def remove_orphans(ws: Workspace, stage: str) -> None:
    """Delete a stage's outputs whose ingest part no longer exists (its input changed)."""
    parts = set(ws.parts())
    for f in ws.stage_files(stage):
        if f.stem not in parts:
            f.unlink()

"""Quality scores, per part: the trained classifier's `quality` / `uncertainty` (`[quality] model_dir`) and
the reference-set score (`[quality] reference`); `quality` below `drop_below` drops the record."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.stages.embed import embed_cache_dir
from pipeline.stages.spec import Stage, Verdict
from schemas import columns as C
from schemas.config import CurateConfig

REASON_LOW_QUALITY = "low_quality"

QUALITY_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string()),
        pa.field(C.QUALITY, pa.float32()),
        pa.field(C.UNCERTAINTY, pa.float32()),
        pa.field(C.REFERENCE_SCORE, pa.float32()),
    ]
)


def _model_stamp(cfg: CurateConfig) -> dict:
    """The classifier's files (name, size, mtime), the reference file and the settings the scores use."""

    def files(p: str | None) -> list:
        d = Path(p or "")
        found = sorted(d.glob("*")) if d.is_dir() else ([d] if p and d.is_file() else [])
        return [(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in found]

    return {
        "model": files(cfg.quality.model_dir),
        "reference": files(cfg.quality.reference),
        "reference_k": cfg.quality.reference_k,
        "embed": cfg.embed.model_dump(include={"embedder", "model", "static_dims", "cascade_uncertainty"}),
    }


@lru_cache(maxsize=4)
def _reference_vectors(path: str, mtime_ns: int, cfg_json: str, cache_dir: str) -> np.ndarray:
    """Unit vectors of the reference file's texts (embedded once, through the vector cache)."""
    from pipeline.embed_cache import embed_table
    from pipeline.ingest import read_source
    from quality.vectors import arrow_to_vectors
    from schemas.embed import EmbedConfig

    ecfg = EmbedConfig.model_validate_json(cfg_json)
    tables = [records for records, _ in read_source(path) if records.num_rows]
    if not tables:
        raise ValueError(f"{path}: [quality] reference holds no readable text")
    x, valid = arrow_to_vectors(embed_table(pa.concat_tables(tables), ecfg, cache_dir)[C.EMBEDDING])
    return x[valid]


def _score(t: pa.Table, cfg: CurateConfig, root: Path) -> pa.Table:
    from pipeline.embed_cache import embed_table, model_key
    from quality import classifier
    from quality.cascade import score_table
    from quality.vectors import arrow_to_vectors

    n = t.num_rows
    q = pa.nulls(n, pa.float32())
    u = pa.nulls(n, pa.float32())
    if cfg.quality.model_dir:
        model = classifier.load(cfg.quality.model_dir)
        scored = t
        if C.EMBEDDING in t.column_names and model_key(model.embed_config) != model_key(cfg.embed):
            scored = t.drop_columns([C.EMBEDDING])  # vectors of another tier: the model embeds anew
        s = score_table(scored, model, cfg.embed)
        q, u = s[C.QUALITY], s[C.UNCERTAINTY]
    ref = pa.nulls(n, pa.float32())
    if cfg.quality.reference:
        cache = embed_cache_dir(cfg, root)
        if C.EMBEDDING not in t.column_names:
            t = t.append_column(C.EMBEDDING, embed_table(t, cfg.embed, cache)[C.EMBEDDING])
        x, valid = arrow_to_vectors(t[C.EMBEDDING])
        path = Path(cfg.quality.reference)
        refs = _reference_vectors(str(path), path.stat().st_mtime_ns, cfg.embed.model_dump_json(), str(cache))
        scores = classifier.reference_score(x, refs, cfg.quality.reference_k)
        ref = pa.array(scores, pa.float32(), mask=~valid)
    return pa.table(
        {C.ID: t[C.ID], C.QUALITY: q, C.UNCERTAINTY: u, C.REFERENCE_SCORE: ref}, schema=QUALITY_SCHEMA
    )


STAGE = Stage(
    name="quality",
    kind="map",
    doc="P(good) of the quality classifier and its uncertainty; mean cosine to the k nearest reference texts",
    modality=C.TEXT_MODALITY,
    reads=(C.ID, C.MODALITY, C.TEXT),
    after=(("embed", (C.EMBEDDING,)),),
    writes=QUALITY_SCHEMA,
    settings=_model_stamp,
    enabled=lambda cfg: bool(cfg.quality.model_dir or cfg.quality.reference),
    map_fn=_score,
    carried=(C.QUALITY, C.UNCERTAINTY, C.REFERENCE_SCORE),
    verdict=lambda cfg: (
        Verdict(rank=60, when=f"{C.QUALITY} < {cfg.quality.drop_below}", reason=f"'{REASON_LOW_QUALITY}'")
        if cfg.quality.model_dir
        else None
    ),
)

"""Scoring texts and tables with a quality model, including the static -> transformer cascade.

Cascade: every record is scored on static vectors; only records whose static-tier uncertainty is at least
`cascade_uncertainty` are embedded again with the transformer and re-scored by the transformer head.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from quality.classifier import QualityModel, score
from schemas import columns as C
from schemas.embed import EmbedConfig

SCORE_SCHEMA = pa.schema([(C.ID, pa.string()), (C.QUALITY, pa.float32()), (C.UNCERTAINTY, pa.float32())])
RESCORED_KEY = b"curate.rescored"  # schema metadata of score_table's output: records the transformer redid


def _runtime(model: QualityModel, cfg: EmbedConfig | None) -> EmbedConfig:
    """The model's embedding config, with run-time settings (device, batch size, static dir) from `cfg`."""
    base = model.embed_config
    if cfg is None:
        return base
    return base.model_copy(
        update={"device": cfg.device, "batch_size": cfg.batch_size, "static_dir": cfg.static_dir}
    )


def score_texts(
    model: QualityModel,
    texts: Sequence[str] | pa.Array | None,
    cfg: EmbedConfig | None = None,
    vectors: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(quality, uncertainty, rescored mask) of texts, embedding them as the model was trained.

    `vectors` may carry the texts' vectors of the model's first tier (e.g. from the embedding cache);
    without `texts` (vectors only) the cascade's transformer pass is skipped.
    """
    from quality.embed import as_texts, embed_texts, encode_transformer

    ecfg = _runtime(model, cfg)
    if texts is None and vectors is None:
        raise ValueError("score_texts needs texts or vectors")
    items = as_texts(texts) if texts is not None else None
    x = vectors if vectors is not None else embed_texts(items or [], ecfg)
    q, u = score(model, x)
    rescored = np.zeros(len(q), bool)
    if items is not None and ecfg.embedder == "cascade" and "transformer" in model.heads and len(q):
        rescored = u >= ecfg.cascade_uncertainty
        if rescored.any():
            idx = np.flatnonzero(rescored)
            xt = encode_transformer(
                [items[i] for i in idx], ecfg.model_copy(update={"embedder": "transformer"})
            )
            q[idx], u[idx] = score(model, xt, tier="transformer")
    return q, u, rescored


def score_table(batch: pa.Table, model: QualityModel, cfg: EmbedConfig | None = None) -> pa.Table:
    """`id`, `quality`, `uncertainty` for `batch[id, embedding?, text?]` (null where there is no content).

    Uses the `embedding` column when present (it must come from the model's tier), else embeds `text`.
    The cascade needs `text` for its transformer pass; schema metadata `curate.rescored` counts those.
    """
    from quality.vectors import arrow_to_vectors

    n = batch.num_rows
    if C.EMBEDDING in batch.column_names:
        x, valid = arrow_to_vectors(batch[C.EMBEDDING])
    else:
        x, valid = None, np.asarray(batch[C.TEXT].is_valid().to_numpy(zero_copy_only=False), bool)
    rows = np.flatnonzero(valid)
    texts = batch[C.TEXT].take(pa.array(rows)) if C.TEXT in batch.column_names else None
    quality = np.zeros(n, np.float32)
    unc = np.zeros(n, np.float32)
    rescored = np.zeros(len(rows), bool)
    if len(rows):
        q, u, rescored = score_texts(model, texts, cfg, None if x is None else x[rows])
        quality[rows], unc[rows] = q, u
    out = pa.table(
        {
            C.ID: batch[C.ID],
            C.QUALITY: pa.array(quality, pa.float32(), mask=~valid),
            C.UNCERTAINTY: pa.array(unc, pa.float32(), mask=~valid),
        },
        schema=SCORE_SCHEMA,
    )
    return out.replace_schema_metadata({RESCORED_KEY: str(int(rescored.sum())).encode()})

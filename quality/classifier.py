"""Embedding quality classifier: calibrated logistic regression on vectors, and a reference-set kNN score.

A model dir holds `model.joblib` (one scikit-learn head per embedder tier: `static`, `transformer`) and
`meta.json` (the embedding config the vectors came from, the positive label, counts, held-out metrics),
so `curate quality score` embeds new texts the same way the seeds were embedded.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from schemas.embed import EmbedConfig

MODEL_FILE = "model.joblib"
META_FILE = "meta.json"


@dataclass
class QualityModel:
    """Classifier heads by tier ("static" / "transformer") plus what is needed to reuse them."""

    heads: dict[str, Any]
    embed: dict[str, Any] = field(default_factory=dict)
    positive: str = "1"
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def embed_config(self) -> EmbedConfig:
        """The embedding config the training vectors came from."""
        return EmbedConfig.model_validate(self.embed)


def tier_of(cfg: EmbedConfig) -> str:
    """The tier whose vectors `embed_texts` returns for `cfg` (cascade returns static vectors)."""
    return "transformer" if cfg.embedder == "transformer" else "static"


def fit_head(x: np.ndarray, y: np.ndarray, c: float = 1.0, seed: int = 0) -> Any:
    """Logistic regression with sigmoid-calibrated probabilities (CV folds capped by the minority class)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y).astype(int)
    counts = np.bincount(y, minlength=2)
    if counts.min() < 2:
        raise ValueError(
            f"need at least 2 examples of each class, got {counts[0]} negative, {counts[1]} positive"
        )
    lr = LogisticRegression(C=c, max_iter=2000, class_weight="balanced", random_state=seed)
    folds = int(min(5, counts.min()))
    model = CalibratedClassifierCV(lr, method="sigmoid", cv=folds)
    model.fit(np.asarray(x, np.float32), y)
    return model


def train(
    x: np.ndarray,
    y: np.ndarray,
    *,
    embed: EmbedConfig | None = None,
    x_transformer: np.ndarray | None = None,
    positive: str = "1",
    c: float = 1.0,
    seed: int = 0,
) -> QualityModel:
    """Train on vectors `x` and 0/1 labels `y` (1 = good); `x_transformer` adds the cascade's second head."""
    embed = embed or EmbedConfig()
    heads = {tier_of(embed): fit_head(x, y, c, seed)}
    if x_transformer is not None:
        heads["transformer"] = fit_head(x_transformer, y, c, seed)
    y = np.asarray(y).astype(int)
    meta = {"n_train": int(len(y)), "n_positive": int(y.sum()), "dims": int(np.asarray(x).shape[1])}
    return QualityModel(heads=heads, embed=embed.model_dump(mode="json"), positive=positive, meta=meta)


def save(model: QualityModel, directory: str | Path) -> Path:
    """Write the model dir atomically (temp dir, then rename)."""
    import joblib

    dest = Path(directory)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.mkdir()
    joblib.dump(model.heads, tmp / MODEL_FILE)
    meta = {"embed": model.embed, "positive": model.positive, "tiers": sorted(model.heads), **model.meta}
    (tmp / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(tmp, dest)
    return dest


def load(directory: str | Path) -> QualityModel:
    """Read a model dir written by `save` (a trusted, local file: joblib unpickles it)."""
    import joblib

    d = Path(directory)
    if not (d / MODEL_FILE).exists():
        raise FileNotFoundError(f"{d}: no {MODEL_FILE}; train one with `curate quality train --out {d}`")
    meta = json.loads((d / META_FILE).read_text(encoding="utf-8"))
    heads = joblib.load(d / MODEL_FILE)
    extra = {k: v for k, v in meta.items() if k not in ("embed", "positive", "tiers")}
    return QualityModel(heads=heads, embed=meta["embed"], positive=meta["positive"], meta=extra)


def uncertainty_of(p: np.ndarray) -> np.ndarray:
    """1 - |2p - 1|: 1 at p = 0.5, 0 at p in {0, 1}."""
    return (1.0 - np.abs(2.0 * p - 1.0)).astype(np.float32)


def score(model: QualityModel, x: np.ndarray, tier: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(quality = P(good), uncertainty) for vectors `x` of the model's tier (or the given `tier`)."""
    tier = tier or tier_of(model.embed_config)
    if tier not in model.heads:
        raise ValueError(f"model has no {tier} head (has {sorted(model.heads)}); retrain with that embedder")
    x = np.asarray(x, np.float32)
    if len(x) == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.float32)
    p = model.heads[tier].predict_proba(x)[:, 1].astype(np.float32)
    return p, uncertainty_of(p)


def reference_score(x: np.ndarray, reference: np.ndarray, k: int = 10, block: int = 4096) -> np.ndarray:
    """Mean cosine of each unit vector in `x` to its k nearest vectors of a "good" reference set."""
    x = np.asarray(x, np.float32)
    ref = np.asarray(reference, np.float32)
    k = max(1, min(k, len(ref)))
    out = np.empty(len(x), np.float32)
    for s in range(0, len(x), block):
        sims = x[s : s + block] @ ref.T
        top = np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:] if k < sims.shape[1] else sims
        out[s : s + block] = top.mean(axis=1)
    return out

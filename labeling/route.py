"""Which records humans label: the most uncertain, spread over k-means clusters of their embeddings.

`uncertainty` turns class probabilities into one score in [0, 1] (least confidence, margin or entropy).
`select` picks at most `budget` rows: uncertainty = the `budget x pool_factor` most uncertain rows, clustered
into `budget` k-means clusters, the most uncertain of each; diversity = one row per cluster (nearest its
centre), used when no scorer ran; random = a seeded sample. `route` is the stage over a frame.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from schemas import columns as C
from schemas.labeling import LabelingConfig

Method = Literal["least_confidence", "margin", "entropy"]
Strategy = Literal["uncertainty", "diversity", "random"]


def uncertainty(proba: np.ndarray, method: Method = "least_confidence") -> np.ndarray:
    """Per-row uncertainty in [0, 1] of an n x k probability matrix (1 = the classes are tied)."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 0.0, 1.0)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"need an n x k probability matrix with k >= 2, got shape {p.shape}")
    p = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    k = p.shape[1]
    if method == "least_confidence":
        u = (1.0 - p.max(axis=1)) * k / (k - 1)
    elif method == "margin":
        top2 = -np.sort(-p, axis=1)[:, :2]
        u = 1.0 - (top2[:, 0] - top2[:, 1])
    elif method == "entropy":
        with np.errstate(divide="ignore", invalid="ignore"):
            h = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=1)
        u = h / np.log(k)
    else:
        raise ValueError(f"unknown uncertainty method {method!r}: least_confidence, margin or entropy")
    return np.clip(u, 0.0, 1.0)


def binary_proba(p: np.ndarray) -> np.ndarray:
    """n x 2 probabilities from a probability of the positive class."""
    p = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0)
    return np.stack([1.0 - p, p], axis=1)


def kmeans(x: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cluster ids and centres of k-means on the rows of `x` (mini-batch beyond 2,000 rows)."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    x = np.asarray(x, dtype=np.float32)
    k = max(1, min(k, len(x)))
    if len(x) > 2_000:
        km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=4096)
    else:
        km = KMeans(n_clusters=k, random_state=seed, n_init=1)
    ids = km.fit_predict(x)
    return ids, km.cluster_centers_


def diverse_pick(x: np.ndarray, k: int, scores: np.ndarray | None = None, seed: int = 0) -> np.ndarray:
    """Indices of one row per k-means cluster: the highest score, or the row nearest the centre."""
    n = len(x)
    if n == 0 or k <= 0:
        return np.zeros(0, dtype=np.int64)
    if k >= n:
        order = np.argsort(-scores, kind="stable") if scores is not None else np.arange(n)
        return order.astype(np.int64)
    ids, centres = kmeans(x, k, seed)
    if scores is None:
        key = -np.linalg.norm(np.asarray(x, np.float32) - centres[ids], axis=1)
    else:
        key = np.asarray(scores, dtype=np.float64)
    order = np.lexsort((-key, ids))  # by cluster, best first inside it
    first = np.ones(n, dtype=bool)
    first[1:] = ids[order][1:] != ids[order][:-1]
    picks = order[first]
    # most uncertain (or most central) first, so a smaller budget takes a prefix
    return picks[np.argsort(-key[picks], kind="stable")].astype(np.int64)


def select(
    n: int,
    budget: int,
    strategy: Strategy = "uncertainty",
    scores: np.ndarray | None = None,
    embeddings: np.ndarray | None = None,
    pool_factor: float = 4.0,
    seed: int = 0,
) -> np.ndarray:
    """Indices (in pick order) of at most `budget` of `n` rows to send to humans."""
    budget = max(0, min(budget, n))
    if budget == 0:
        return np.zeros(0, dtype=np.int64)
    if strategy == "uncertainty" and scores is None:
        strategy = "diversity"  # no scorer ran: diversity alone
    if strategy in ("uncertainty", "diversity") and embeddings is None:
        if strategy == "diversity":
            strategy = "random"
        else:
            return np.argsort(-np.asarray(scores), kind="stable")[:budget].astype(np.int64)
    if strategy == "random":
        return np.random.default_rng(seed).choice(n, size=budget, replace=False).astype(np.int64)
    x = np.asarray(embeddings)
    if strategy == "diversity":
        return diverse_pick(x, budget, None, seed)
    s = np.asarray(scores, dtype=np.float64)
    pool = np.argsort(-s, kind="stable")[: int(min(n, max(budget, round(budget * pool_factor))))]
    picked = diverse_pick(x[pool], budget, s[pool], seed)
    return pool[picked]


def scores_of(frame: pl.DataFrame, cfg: LabelingConfig) -> np.ndarray | None:
    """Uncertainty of each row from whichever scorer ran: `uncertainty`, else `quality` as P(keep)."""
    if C.UNCERTAINTY in frame.columns and frame[C.UNCERTAINTY].null_count() < frame.height:
        return frame[C.UNCERTAINTY].fill_null(0.0).cast(pl.Float64).to_numpy()
    if C.QUALITY in frame.columns and frame[C.QUALITY].null_count() < frame.height:
        q = frame[C.QUALITY].cast(pl.Float64)
        u = uncertainty(binary_proba(q.fill_null(0.5).to_numpy()), cfg.uncertainty)
        return np.where(q.is_null().to_numpy(), 0.0, u)
    return None


def route(frame: pl.DataFrame, cfg: LabelingConfig, embeddings: np.ndarray | None = None) -> pl.DataFrame:
    """Add `uncertainty` (when a scorer ran) and `label_rank` (1.. for the rows picked, else null)."""
    scores = scores_of(frame, cfg)
    picks = select(frame.height, cfg.budget, cfg.strategy, scores, embeddings, cfg.pool_factor, cfg.seed)
    rank = np.full(frame.height, -1, dtype=np.int64)
    rank[picks] = np.arange(1, len(picks) + 1)
    out = frame.with_columns(pl.Series(C.LABEL_RANK, rank).replace(-1, None).cast(pl.Int32))
    if scores is not None and C.UNCERTAINTY not in frame.columns:
        out = out.with_columns(pl.Series(C.UNCERTAINTY, scores, dtype=pl.Float64))
    return out

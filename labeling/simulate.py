"""The active-learning loop with a simulated annotator who answers from known labels (optionally noisy).

A stratified held-out split measures accuracy; the rest is the unlabelled pool. Round 0 labels `budget`
records (random, or one per k-means cluster); each round retrains the classifier on the labels so far,
records (labels, accuracy), and routes the next `budget` records by the strategy (`labeling.route.select`).
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Literal

import numpy as np

from labeling import route
from labeling.learner import Dataset, fit_predict_proba

CURVE_COLUMNS = ("round", "labels", "accuracy", "strategy", "noise", "seed")


def split(y: np.ndarray, test_size: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (pool, test) index arrays."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(y))
    pool, test = train_test_split(idx, test_size=test_size, random_state=seed, stratify=y)
    return np.sort(pool), np.sort(test)


def annotate(y_true: np.ndarray, k: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """The simulated annotator's answers: the true label, or with probability `noise` another class."""
    answers = y_true.copy()
    flip = rng.random(len(y_true)) < noise
    if flip.any() and k > 1:
        shift = rng.integers(1, k, size=int(flip.sum()))
        answers[flip] = (y_true[flip] + shift) % k
    return answers


def accuracy(ds: Dataset, train: np.ndarray, labels: np.ndarray, test: np.ndarray, seed: int = 0) -> float:
    """Held-out accuracy of the classifier trained on `labels` of rows `train`."""
    k = len(ds.classes)
    p = fit_predict_proba(ds.kind, ds.x[train], labels, ds.x[test], k, seed)
    return float((p.argmax(axis=1) == ds.y[test]).mean())


def run(
    ds: Dataset,
    strategy: Literal["uncertainty", "diversity", "random"] = "uncertainty",
    budget: int = 20,
    rounds: int = 10,
    noise: float = 0.0,
    seed: int = 0,
    test_size: float = 0.3,
    method: route.Method = "least_confidence",
    pool_factor: float = 4.0,
) -> list[dict[str, object]]:
    """One curve row per round: labels used so far and held-out accuracy after retraining on them."""
    rng = np.random.default_rng(seed)
    pool, test = split(ds.y, test_size, seed)
    k = len(ds.classes)
    labelled = np.zeros(0, dtype=np.int64)
    answers = np.zeros(0, dtype=np.int64)
    rest_proba: np.ndarray | None = None  # the last model's probabilities on the unlabelled pool
    rows: list[dict[str, object]] = []
    for r in range(rounds):
        rest = np.setdiff1d(pool, labelled, assume_unique=True)
        if len(rest) == 0:
            break
        sub_seed = int(rng.integers(1 << 31))
        if rest_proba is None or strategy != "uncertainty":
            first = "random" if strategy == "random" else "diversity"
            picks = route.select(len(rest), budget, first, None, ds.dense_x[rest], pool_factor, sub_seed)
        else:
            scores = route.uncertainty(rest_proba, method)
            picks = route.select(
                len(rest), budget, "uncertainty", scores, ds.dense_x[rest], pool_factor, sub_seed
            )
        new = rest[picks]
        labelled = np.concatenate([labelled, new])
        answers = np.concatenate([answers, annotate(ds.y[new], k, noise, rng)])
        rest = np.setdiff1d(rest, new, assume_unique=True)
        # one retrain per round: held-out accuracy, and the scores that route the next round
        p = fit_predict_proba(ds.kind, ds.x[labelled], answers, ds.x[np.concatenate([test, rest])], k, seed)
        acc = float((p[: len(test)].argmax(axis=1) == ds.y[test]).mean())
        rest_proba = p[len(test) :]
        rows.append({"round": r, "labels": int(len(labelled)), "accuracy": acc, "strategy": strategy,
                     "noise": noise, "seed": seed})  # fmt: skip
    return rows


def full_accuracy(ds: Dataset, seed: int = 0, test_size: float = 0.3) -> float:
    """Held-out accuracy with every pool record labelled (the ceiling the curves are compared to)."""
    pool, test = split(ds.y, test_size, seed)
    return accuracy(ds, pool, ds.y[pool], test, seed)


def labels_to_reach(rows: list[dict[str, object]], target: float) -> int | None:
    """Labels at the first round whose accuracy reaches `target` (None if none does)."""
    for row in rows:
        if float(row["accuracy"]) >= target:  # type: ignore[arg-type]
            return int(row["labels"])  # type: ignore[call-overload]
    return None


def write_curve(rows: list[dict[str, object]], path: str | Path) -> Path:
    """Write the curve as CSV (columns round, labels, accuracy, strategy, noise, seed) atomically."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".tmp-{p.name}")
    with tmp.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(CURVE_COLUMNS))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, p)
    return p

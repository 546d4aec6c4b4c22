"""Label errors by confident learning: labels that a cross-validated model confidently disagrees with.

Out-of-fold class probabilities come from K-fold cross-validation of the loop's classifier; cleanlab's
`find_label_issues` flags the labels, `get_label_quality_scores` ranks them. Flagged records go to the
`review` queue for a second look.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from labeling.learner import fit_predict_proba
from schemas import columns as C

REVIEW_QUEUE = "review"


def out_of_fold_proba(kind: str, x: Any, y: np.ndarray, k: int, folds: int = 5, seed: int = 0) -> np.ndarray:
    """n x k class probabilities, each row predicted by a model that did not see it."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=k)
    folds = int(max(2, min(folds, counts[counts > 0].min())))
    out = np.zeros((len(y), k))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        out[test] = fit_predict_proba(kind, x[train], y[train], x[test], k, seed)
    return out


def find_label_errors(
    kind: str, x: Any, y: np.ndarray, classes: list[str], folds: int = 5, seed: int = 0
) -> pl.DataFrame:
    """Per row: `label_issue` (bool), `label_quality` (0..1, low = suspect), `suggested_label`."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = np.asarray(y)
    k = len(classes)
    proba = out_of_fold_proba(kind, x, y, k, folds, seed)
    proba = np.clip(proba, 1e-6, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    issues = find_label_issues(labels=y, pred_probs=proba, filter_by="prune_by_noise_rate")
    quality = get_label_quality_scores(labels=y, pred_probs=proba)
    return pl.DataFrame(
        {
            C.LABEL_ISSUE: np.asarray(issues, dtype=bool),
            C.LABEL_QUALITY: np.asarray(quality, dtype=np.float64),
            C.SUGGESTED_LABEL: [classes[i] for i in proba.argmax(axis=1)],
        }
    )


def review_rows(ids: list[str], errors: pl.DataFrame) -> pl.DataFrame:
    """(id, queue=review, label_quality, suggested_label) of the flagged rows, worst first."""
    return (
        errors.with_columns(pl.Series(C.ID, ids))
        .filter(pl.col(C.LABEL_ISSUE))
        .sort(C.LABEL_QUALITY)
        .select(C.ID, pl.lit(REVIEW_QUEUE).alias(C.QUEUE), C.LABEL_QUALITY, C.SUGGESTED_LABEL)
    )

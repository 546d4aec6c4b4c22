"""The next round: retrain a classifier per queue on the human labels, re-score, flag label errors.

Writes `<ws>/label_scores/<part>.parquet` (id, uncertainty, prediction, prediction_score), which the next
push reads like any scorer's output, and `<ws>/label_issues.parquet` (confident-learning flags over the
labelled records), whose flagged records the next push sends to `<queue>-review`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from labeling import route
from labeling.label_errors import find_label_errors
from labeling.learner import fit_predict_proba, text_features
from labeling.pull import LABELS
from labeling.push import ISSUES_TABLE, REVIEW_SUFFIX
from pipeline.workspace import Workspace, write_parquet
from schemas import columns as C
from schemas.labeling import LabelingConfig

SCORES_STAGE = "label_scores"
MIN_LABELS = 4


@dataclass
class RetrainResult:
    """Queues retrained, records re-scored, label issues found."""

    queues: list[str] = field(default_factory=list)
    scored: int = 0
    issues: int = 0


def _texts(frame: pl.DataFrame) -> list[str]:
    return frame.select(pl.coalesce(C.TEXT, C.DATA, pl.lit(""))).to_series().to_list()


def retrain(workspace: str | Path, cfg: LabelingConfig | None = None) -> RetrainResult:
    """Retrain per text-like queue on `<ws>/labels.parquet`; write scores and label issues."""
    from labeling import queues

    cfg = cfg or LabelingConfig()
    ws = Workspace(workspace)
    result = RetrainResult()
    lp = ws.global_path(LABELS)
    if not lp.exists():
        return result
    labels = pl.read_parquet(lp).filter(
        ~pl.col(C.QUEUE).str.ends_with(REVIEW_SUFFIX) & pl.col(C.LABEL_VALUE).is_not_null()
    )
    files = ws.stage_files("ingest")
    records = pl.scan_parquet(files).select(C.ID, C.MODALITY, C.TEXT, C.DATA, C.META).collect()
    records = queues.assign(records, cfg.queues)
    scores, issues = [], []
    for (queue,), lab in labels.group_by([C.QUEUE], maintain_order=True):
        q = next((x for x in cfg.queues if x.name == queue), None)
        if q is None or q.task not in ("text_classification", "record_review") or lab.height < MIN_LABELS:
            continue
        classes = sorted(set(lab[C.LABEL_VALUE].to_list()))
        if len(classes) < 2:
            continue
        pool = records.filter(pl.col(C.QUEUE) == queue)
        x, _, _ = text_features(_texts(pool), "auto", cfg.seed)
        pos = {rid: i for i, rid in enumerate(pool[C.ID].to_list())}
        lab = lab.filter(pl.col(C.ID).is_in(list(pos)))
        rows = np.array([pos[r] for r in lab[C.ID].to_list()])
        index = {c: i for i, c in enumerate(classes)}
        y = np.array([index[v] for v in lab[C.LABEL_VALUE].to_list()])
        p = fit_predict_proba("text", x[rows], y, x, len(classes), cfg.seed)
        scores.append(pl.DataFrame({
            C.ID: pool[C.ID], C.UNCERTAINTY: route.uncertainty(p, cfg.uncertainty),
            C.PREDICTION: [classes[i] for i in p.argmax(axis=1)], C.PREDICTION_SCORE: p.max(axis=1),
        }))  # fmt: skip
        if np.bincount(y).min() >= 2:
            err = find_label_errors("text", x[rows], y, classes, folds=5, seed=cfg.seed)
            issues.append(err.with_columns(pl.Series(C.ID, lab[C.ID]), pl.lit(queue).alias(C.QUEUE),
                                           pl.Series(C.LABEL_VALUE, lab[C.LABEL_VALUE])))  # fmt: skip
        result.queues.append(queue)
    if scores:
        all_scores = pl.concat(scores)
        for f in files:  # one scores file per ingest part, like a map stage
            ids = pl.scan_parquet(f).select(C.ID).collect()
            part = ids.join(all_scores, on=C.ID, how="inner")
            write_parquet(part.to_arrow(), ws.part_path(SCORES_STAGE, f.stem))
        result.scored = all_scores.height
    if issues:
        table = pl.concat(issues)
        write_parquet(table.to_arrow(), ws.global_path(ISSUES_TABLE))
        result.issues = int(table[C.LABEL_ISSUE].sum())
    return result

"""A suggestion (Label Studio prediction) for every task, and where it came from (`model_version`).

In order of preference, per record:
  retrained     the classifier retrained on human labels (`<ws>/label_scores`, `curate label round`)
  scorer        a trained scorer's prediction (e.g. `[quality] model_dir`: quality as P(keep))
  knn           once some records of the queue are labelled: the vote of the `knn_k` nearest labelled
                records (embeddings when a stage wrote them, else TF-IDF), weighted by similarity
  weak-rules    keep/drop-like queues: logistic regression fitted on the rules' verdicts as weak labels
                (kept by every rule = keep, failed a rule = drop), when the rules split the queue
  rules         the rules' verdict itself (one class only: nothing to fit)
  prior         nothing known yet: the queue's first choice at chance confidence
"""

from __future__ import annotations

import contextlib

import numpy as np
import polars as pl

from labeling import config_xml
from labeling.features import dense, text_matrix
from schemas import columns as C
from schemas.labeling import DECISION_OF_LABEL, MODEL_VERSION, LabelingConfig, QueueConfig

PREFIX = "curate-"
WEAK_SAMPLE = 4000  # rows of the queue the weak model is fitted on

SUGGEST_SCHEMA = {C.ID: pl.String, C.PREDICTION: pl.String, C.PREDICTION_SCORE: pl.Float64,
                  MODEL_VERSION: pl.String}  # fmt: skip


def polarity(queue: QueueConfig) -> tuple[str, str] | None:
    """(the choice meaning keep, the choice meaning drop) of a queue, or None (e.g. image classes)."""
    try:
        choices = config_xml.choices_of(queue)
    except ValueError:
        return None
    keep = [c for c in choices if DECISION_OF_LABEL.get(c) == C.KEEP]
    drop = [c for c in choices if DECISION_OF_LABEL.get(c) == C.DROP]
    return (keep[0], drop[0]) if keep and drop else None


def _texts(frame: pl.DataFrame) -> list[str]:
    cols = [c for c in (C.TEXT, C.DATA) if c in frame.columns]
    if not cols:
        return [""] * frame.height
    return frame.select(pl.coalesce(*cols, pl.lit(""))).to_series().to_list()


def _features(frame: pl.DataFrame, emb: np.ndarray | None, seed: int) -> np.ndarray:
    """Unit-length feature rows: the given embeddings, else dense TF-IDF of the text."""
    x = emb if emb is not None else dense(text_matrix(_texts(frame)), seed=seed)
    x = np.asarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)


def knn_vote(x_lab: np.ndarray, y_lab: list[str], x: np.ndarray, classes: list[str], k: int
             ) -> tuple[list[str], np.ndarray]:  # fmt: skip
    """Similarity-weighted vote of the k nearest labelled rows (cosine): (label, share of the vote)."""
    sims = x @ x_lab.T
    k = min(k, x_lab.shape[0])
    nn = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    idx = {c: i for i, c in enumerate(classes)}
    y = np.array([idx[v] for v in y_lab])
    votes = np.zeros((len(x), len(classes)))
    w = np.clip(np.take_along_axis(sims, nn, axis=1), 0, None) + 1e-3
    np.add.at(votes, (np.repeat(np.arange(len(x)), k), y[nn].ravel()), w.ravel())
    share = votes / votes.sum(axis=1, keepdims=True)
    best = share.argmax(axis=1)
    return [classes[b] for b in best], share[np.arange(len(x)), best]


def suggest(
    pool: pl.DataFrame,
    ids: list[str],
    queue: QueueConfig,
    cfg: LabelingConfig,
    labels: pl.DataFrame | None = None,
    emb: np.ndarray | None = None,
    retrained: bool = False,
) -> pl.DataFrame:
    """One suggestion per id in `ids` (records of `pool`, the queue's records): id, prediction,
    prediction_score, model_version. `labels`: the queue's human labels (id, label); `emb`: rows of
    `pool`'s embeddings; `retrained`: `pool`'s prediction columns come from the retrained classifier."""
    try:
        choices = config_xml.choices_of(queue)
    except ValueError:
        choices = []
    want = pl.DataFrame({C.ID: ids}, schema={C.ID: pl.String})
    rows = want.join(pool, on=C.ID, how="left", maintain_order="left")
    n = rows.height
    pred: list[str | None] = [None] * n
    score = np.full(n, np.nan)
    version: list[str | None] = [None] * n

    def fill(mask: np.ndarray, labs: list[str] | np.ndarray, sc: np.ndarray, name: str) -> None:
        for i in np.flatnonzero(mask):
            if pred[i] is None and labs[i] is not None:
                pred[i], score[i], version[i] = str(labs[i]), float(sc[i]), PREFIX + name

    if C.PREDICTION in rows.columns:
        p = rows[C.PREDICTION].cast(pl.String).to_list()
        sc = rows[C.PREDICTION_SCORE].fill_null(0.5).to_numpy() if C.PREDICTION_SCORE in rows.columns else (
            np.full(n, 0.5))  # fmt: skip
        ok = np.array([v is not None and v in choices for v in p], dtype=bool)
        fill(ok, p, sc, "retrained" if retrained else "scorer")
    pol = polarity(queue)
    if pol is not None and C.QUALITY in rows.columns:
        q = rows[C.QUALITY].cast(pl.Float64).to_numpy()
        ok = ~np.isnan(q)
        labs = np.where(q >= 0.5, pol[0], pol[1])
        fill(ok, list(labs), np.where(q >= 0.5, q, 1 - q), "quality-model")
    todo = np.array([v is None for v in pred], dtype=bool)
    if not todo.any():
        return _frame(ids, pred, score, version)
    lab = labels.filter(pl.col(C.LABEL_VALUE).is_not_null()) if labels is not None else None
    lab = lab.filter(pl.col(C.LABEL_VALUE).is_in(choices)) if lab is not None and choices else lab
    text_like = queue.task in ("text_classification", "record_review")
    if lab is not None and lab.height and (text_like or emb is not None):
        lab_ids = lab[C.ID].to_list()
        pos = {rid: i for i, rid in enumerate(pool[C.ID].to_list())}
        lab_rows = [pos[r] for r in lab_ids if r in pos]
        y = [v for r, v in zip(lab_ids, lab[C.LABEL_VALUE].to_list(), strict=True) if r in pos]
        want_rows = [pos.get(r) for r in ids]
        have = np.array([w is not None for w in want_rows]) & todo
        if lab_rows and have.any():
            sel = lab_rows + [w for w, h in zip(want_rows, have, strict=True) if h]
            x = _features(pool[sel], emb[sel] if emb is not None else None, cfg.seed)
            classes = sorted(set(y))
            labs, share = knn_vote(x[: len(lab_rows)], y, x[len(lab_rows) :], classes, cfg.knn_k)
            full_l: list = [None] * n
            full_s = np.zeros(n)
            for j, i in enumerate(np.flatnonzero(have)):
                full_l[i], full_s[i] = labs[j], share[j]
            fill(have, full_l, full_s, f"knn-{len(lab_rows)}")
    todo = np.array([v is None for v in pred], dtype=bool)
    if todo.any() and pol is not None and C.RULE_REASON in pool.columns:
        if text_like or emb is not None:
            with contextlib.suppress(ValueError):  # no text to fit on: the rules' verdict below
                _weak(pool, rows, todo, pol, cfg, emb, fill)
        todo = np.array([v is None for v in pred], dtype=bool)
        if todo.any():  # nothing to fit on (images without embeddings): the rules' verdict itself
            kept = rows[C.RULE_REASON].is_null().to_numpy()
            fill(todo, list(np.where(kept, pol[0], pol[1])), np.full(n, 0.6), "rules")
    todo = np.array([v is None for v in pred], dtype=bool)
    if todo.any() and choices:
        k = len(choices)
        fill(todo, [choices[0]] * n, np.full(n, 1.0 / k), "prior")
    return _frame(ids, pred, score, version)


def _weak(pool, rows, todo, pol, cfg, emb, fill) -> None:  # type: ignore[no-untyped-def]
    """Weak labels from the rules: fit on a sample of the queue, predict the rows still without one."""
    weak = pool[C.RULE_REASON].is_null().to_numpy()  # True = every rule passed = keep
    rr = (
        rows[C.RULE_REASON].is_null().to_numpy()
        if C.RULE_REASON in rows.columns
        else np.ones(len(rows), bool)
    )
    if weak.all() or not weak.any():
        labs = np.where(rr, pol[0], pol[1])
        fill(todo, list(labs), np.full(len(rows), 0.6), "rules")
        return
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(cfg.seed)
    n = pool.height
    sample = np.sort(rng.choice(n, size=min(n, WEAK_SAMPLE), replace=False))
    pos = {rid: i for i, rid in enumerate(pool[C.ID].to_list())}
    want = [pos.get(r) for r in rows[C.ID].to_list()]
    rows_idx = [w for w in want if w is not None]
    sel = np.concatenate([sample, np.array(rows_idx, dtype=np.int64)])
    x = _features(pool[sel], emb[sel] if emb is not None else None, cfg.seed)
    y = weak[sample]
    if y.all() or not y.any():
        labs = np.where(rr, pol[0], pol[1])
        fill(todo, list(labs), np.full(len(rows), 0.6), "rules")
        return
    model = LogisticRegression(max_iter=1000, class_weight="balanced", random_state=cfg.seed)
    model.fit(x[: len(sample)], y)
    p_keep = model.predict_proba(x[len(sample) :])[:, list(model.classes_).index(True)]
    full_l: list = [None] * len(rows)
    full_s = np.zeros(len(rows))
    j = 0
    for i, w in enumerate(want):
        if w is not None:
            full_l[i] = pol[0] if p_keep[j] >= 0.5 else pol[1]
            full_s[i] = max(p_keep[j], 1 - p_keep[j])
            j += 1
    fill(todo & np.array([w is not None for w in want]), full_l, full_s, "weak-rules")


def _frame(ids: list[str], pred: list, score: np.ndarray, version: list) -> pl.DataFrame:
    return pl.DataFrame(
        {C.ID: ids, C.PREDICTION: pred, MODEL_VERSION: version,
         C.PREDICTION_SCORE: [None if np.isnan(s) else float(s) for s in score]},
        schema=SUGGEST_SCHEMA,
    ).select(list(SUGGEST_SCHEMA))  # fmt: skip

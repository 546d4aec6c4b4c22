"""From annotations to labels: consensus per record, annotator accuracy on gold, agreement per queue.

Weighted consensus is the one-coin model: annotator j is right with probability a_j (gold accuracy,
smoothed towards 2/3), wrong answers spread evenly over the other classes; the label is the class of
highest posterior and `label_confidence` that posterior (a weighted majority with log-odds weights).
Dawid-Skene fits a full confusion matrix per annotator by EM, with gold answers clamped.
CROWDLAB (cleanlab.multiannotator) combines the votes with a classifier's class probabilities
(`pred_probs`: the retrained model's, else smoothed vote shares) and weighs each annotator by estimated
quality. Each annotator counts once per record (their newest answer); annotators `held` for failing gold
do not count at all. A record whose best label is tied, or whose confidence is below `min_confidence`,
gets no label (`label_status` tie / low_agreement / held_only) and is re-routed by the next push.
Agreement: Krippendorff's alpha (nominal) and Fleiss' kappa (raters per item may vary), over the records
with at least two annotations.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import polars as pl

from schemas import columns as C
from schemas.labeling import HELD, HELD_REASON, LABEL_STATUS

PRIOR_RIGHT, PRIOR_N = 2.0, 3.0  # smoothing of gold accuracy: (right + 2) / (n + 3)


def gold_accuracy(ann: pl.DataFrame) -> pl.DataFrame:
    """Per annotator: annotations, gold annotations, right answers on gold, gold accuracy (null = no gold)."""
    gold = ann.filter(pl.col(C.GOLD_LABEL).is_not_null())
    per = ann.group_by(C.ANNOTATOR).agg(pl.len().alias(C.N_ANNOTATIONS))
    g = gold.group_by(C.ANNOTATOR).agg(
        pl.len().alias("n_gold"), (pl.col(C.LABEL_VALUE) == pl.col(C.GOLD_LABEL)).sum().alias("gold_right")
    )
    out = per.join(g, on=C.ANNOTATOR, how="left").with_columns(
        pl.col("n_gold").fill_null(0).cast(pl.Int64), pl.col("gold_right").fill_null(0).cast(pl.Int64)
    )
    return out.with_columns(
        pl.when(pl.col("n_gold") > 0).then(pl.col("gold_right") / pl.col("n_gold")).alias(C.GOLD_ACCURACY)
    ).sort(C.ANNOTATOR)


def _index(values: list[str]) -> tuple[dict[str, int], list[str]]:
    classes = sorted(set(values))
    return {c: i for i, c in enumerate(classes)}, classes


def _weighted(items: np.ndarray, workers: np.ndarray, labels: np.ndarray, acc: np.ndarray, k: int,
              n_items: int) -> np.ndarray:  # fmt: skip
    """n_items x k posteriors under the one-coin model."""
    a = np.clip(acc, 1e-3, 1 - 1e-3)
    log_right = np.log(a)[workers]
    log_wrong = np.log((1 - a) / max(k - 1, 1))[workers]
    logp = np.zeros((n_items, k))
    np.add.at(logp, items, np.broadcast_to(log_wrong[:, None], (len(items), k)))
    np.add.at(logp, (items, labels), log_right - log_wrong)
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def _dawid_skene(items: np.ndarray, workers: np.ndarray, labels: np.ndarray, n_items: int, n_workers: int,
                 k: int, clamp: dict[int, int], iters: int = 50) -> np.ndarray:  # fmt: skip
    """n_items x k posteriors fitted by Dawid-Skene EM (majority-vote start, gold items clamped)."""
    t = np.full((n_items, k), 1e-9)
    np.add.at(t, (items, labels), 1.0)
    t /= t.sum(axis=1, keepdims=True)
    for i, c in clamp.items():
        t[i] = 0
        t[i, c] = 1
    for _ in range(iters):
        prior = t.mean(axis=0) + 1e-6
        conf = np.full((n_workers, k, k), 0.1)  # smoothed confusion counts
        np.add.at(conf, (workers, slice(None), labels), t[items])
        conf /= conf.sum(axis=2, keepdims=True)
        logp = np.tile(np.log(prior), (n_items, 1))
        np.add.at(logp, items, np.log(conf[workers, :, labels]))
        logp -= logp.max(axis=1, keepdims=True)
        new = np.exp(logp)
        new /= new.sum(axis=1, keepdims=True)
        for i, c in clamp.items():
            new[i] = 0
            new[i, c] = 1
        if np.abs(new - t).max() < 1e-6:
            t = new
            break
        t = new
    return t


def held_annotators(acc: pl.DataFrame, min_accuracy: float, min_answers: int) -> pl.DataFrame:
    """`acc` (from gold_accuracy) with `held` (gold accuracy below `min_accuracy` after at least
    `min_answers` gold answers) and `held_reason`."""
    held = (pl.col("n_gold") >= min_answers) & (pl.col(C.GOLD_ACCURACY) < min_accuracy).fill_null(False)
    reason = pl.format(
        "gold accuracy {} on {} gold answers, below min_gold_accuracy " + f"{min_accuracy:g}",
        pl.col(C.GOLD_ACCURACY).round(3),
        pl.col("n_gold"),
    )
    return acc.with_columns(held.alias(HELD), pl.when(held).then(reason).alias(HELD_REASON))


def latest_votes(ann: pl.DataFrame) -> pl.DataFrame:
    """One answer per (record, queue, annotator): the newest (a re-asked annotator does not vote twice)."""
    if "updated_at" not in ann.columns:
        return ann
    return ann.sort("updated_at", nulls_last=False).unique([C.ID, C.QUEUE, C.ANNOTATOR], keep="last",
                                                          maintain_order=True)  # fmt: skip


def _crowdlab(items: np.ndarray, workers: np.ndarray, labels: np.ndarray, n_items: int, n_workers: int,
              k: int, pred_probs: np.ndarray | None) -> np.ndarray:  # fmt: skip
    """n_items x k consensus probabilities from cleanlab's CROWDLAB (multi-annotator) estimate."""
    import warnings

    import pandas as pd
    from cleanlab.multiannotator import get_label_quality_multiannotator

    m = np.full((n_items, n_workers), np.nan)
    m[items, workers] = labels
    votes = np.zeros((n_items, k))
    np.add.at(votes, (items, labels), 1.0)
    if pred_probs is None:  # no classifier: smoothed vote shares
        pred_probs = (votes + 0.5) / (votes.sum(axis=1, keepdims=True) + 0.5 * k)
    seen = np.unique(labels)
    if len(seen) < 2 or n_items < 2:
        return (votes + 1e-9) / (votes + 1e-9).sum(axis=1, keepdims=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = get_label_quality_multiannotator(
            pd.DataFrame(m), np.asarray(pred_probs, dtype=np.float64), return_detailed_quality=False,
            verbose=False,
        )  # fmt: skip
    q = res["label_quality"]
    label = q["consensus_label"].to_numpy().astype(int)
    conf = q["consensus_quality_score"].to_numpy().astype(float)
    out = np.full((n_items, k), 0.0)
    rest = (1 - conf) / max(k - 1, 1)
    out[:] = rest[:, None]
    out[np.arange(n_items), label] = conf
    # a tie in the votes stays a tie unless the classifier breaks it
    return out


def consensus(
    ann: pl.DataFrame,
    method: Literal["weighted", "dawid_skene", "crowdlab"] = "weighted",
    accuracy: pl.DataFrame | None = None,
    *,
    min_confidence: float = 0.0,
    held: set[str] | frozenset[str] = frozenset(),
    pred_probs: dict[str, dict[str, float]] | None = None,
) -> pl.DataFrame:
    """One row per (record, queue): label (null when tied, unsure or only held annotators answered),
    label_confidence, label_status, annotators, n_annotations, category, fix.

    `held`: annotators whose votes do not count. `pred_probs` (crowdlab): record id -> class -> probability.
    """
    ann = latest_votes(ann.filter(pl.col(C.LABEL_VALUE).is_not_null()))
    schema = {C.ID: pl.String, C.QUEUE: pl.String, C.LABEL_VALUE: pl.String, C.LABEL_CONFIDENCE: pl.Float64,
              LABEL_STATUS: pl.String}  # fmt: skip
    if ann.height == 0:
        return pl.DataFrame(schema=schema)
    accuracy = accuracy if accuracy is not None else gold_accuracy(ann)
    all_ann = ann
    ann = ann.filter(~pl.col(C.ANNOTATOR).is_in(list(held)))
    smoothed = accuracy.select(
        C.ANNOTATOR,
        ((pl.col("gold_right") + PRIOR_RIGHT) / (pl.col("n_gold") + PRIOR_N)).alias("acc"),
    )
    out = []
    for (queue,), part in ann.sort(C.ID, C.ANNOTATOR).group_by([C.QUEUE], maintain_order=True):
        cls_idx, classes = _index(part[C.LABEL_VALUE].to_list())
        item_idx, item_ids = _index(part[C.ID].to_list())
        work_idx, work_ids = _index(part[C.ANNOTATOR].to_list())
        items = np.array([item_idx[v] for v in part[C.ID].to_list()])
        workers = np.array([work_idx[v] for v in part[C.ANNOTATOR].to_list()])
        labels = np.array([cls_idx[v] for v in part[C.LABEL_VALUE].to_list()])
        k = max(len(classes), 2)
        if method == "dawid_skene":
            gold = part.filter(pl.col(C.GOLD_LABEL).is_in(classes)).unique(C.ID)
            clamp = {item_idx[i]: cls_idx[g] for i, g in gold.select(C.ID, C.GOLD_LABEL).iter_rows()}
            post = _dawid_skene(items, workers, labels, len(item_ids), len(work_ids), k, clamp)
        elif method == "crowdlab":
            pp = None
            if pred_probs:
                pp = np.full((len(item_ids), k), 1.0 / k)
                for i, rid in enumerate(item_ids):
                    got = pred_probs.get(rid)
                    if got:  # classes the scorer did not name share the rest of the mass
                        row = np.array([got.get(c, np.nan) for c in classes] + [np.nan] * (k - len(classes)))
                        miss = np.isnan(row)
                        row[miss] = max(0.0, 1.0 - np.nansum(row)) / max(int(miss.sum()), 1)
                        pp[i] = (row + 1e-3) / (row + 1e-3).sum()
            post = _crowdlab(items, workers, labels, len(item_ids), len(work_ids), k, pp)
        else:
            acc_map = dict(smoothed.iter_rows())
            acc = np.array([acc_map.get(w, PRIOR_RIGHT / PRIOR_N) for w in work_ids])
            post = _weighted(items, workers, labels, acc, k, len(item_ids))
        best = post.argmax(axis=1)
        conf = post[np.arange(len(item_ids)), best]
        top2 = -np.sort(-post, axis=1)[:, :2]
        tie = np.isclose(top2[:, 0], top2[:, 1], atol=1e-9) if k > 1 else np.zeros(len(best), bool)
        low = conf < min_confidence
        status = np.where(tie, "tie", np.where(low, "low_agreement", "labelled"))
        out.append(
            pl.DataFrame(
                {
                    C.ID: item_ids,
                    C.QUEUE: [queue] * len(item_ids),
                    C.LABEL_VALUE: [None if tie[i] or low[i] else classes[b] for i, b in enumerate(best)],
                    C.LABEL_CONFIDENCE: conf,
                    LABEL_STATUS: status,
                },
                schema=schema,
            )
        )
    labels_df = pl.concat(out) if out else pl.DataFrame(schema=schema)
    # records only held annotators answered: no label
    only_held = (
        all_ann.select(C.ID, C.QUEUE)
        .unique()
        .join(labels_df.select(C.ID, C.QUEUE), on=[C.ID, C.QUEUE], how="anti")  # fmt: skip
        .with_columns(
            pl.lit(None, pl.String).alias(C.LABEL_VALUE),
            pl.lit(None, pl.Float64).alias(C.LABEL_CONFIDENCE),
            pl.lit("held_only").alias(LABEL_STATUS),
        )
    )
    labels_df = pl.concat([labels_df, only_held.select(list(schema))])
    per_record = (
        all_ann.sort("updated_at", nulls_last=False)
        .group_by(C.ID, C.QUEUE)
        .agg(
            pl.col(C.ANNOTATOR).unique().sort().alias(C.ANNOTATORS),
            pl.len().alias(C.N_ANNOTATIONS),
            pl.col(C.CATEGORY).drop_nulls().mode().sort().first().alias(C.CATEGORY),
            pl.col(C.CORRECTION).drop_nulls().last().alias(C.CORRECTION),
            pl.col(C.IS_GOLD).any().alias(C.IS_GOLD),
            pl.col(C.GOLD_LABEL).drop_nulls().first().alias(C.GOLD_LABEL),
        )
    )
    return labels_df.join(per_record, on=[C.ID, C.QUEUE], how="left").sort(C.QUEUE, C.ID)


def annotator_table(ann: pl.DataFrame, labels: pl.DataFrame, acc: pl.DataFrame | None = None) -> pl.DataFrame:
    """Per annotator: counts, gold accuracy (with `held` when given) and agreement with the consensus."""
    acc = acc if acc is not None else gold_accuracy(ann)
    agree = (
        ann.join(labels.select(C.ID, C.QUEUE, pl.col(C.LABEL_VALUE).alias("_c")), on=[C.ID, C.QUEUE])
        .group_by(C.ANNOTATOR)
        .agg((pl.col(C.LABEL_VALUE) == pl.col("_c")).mean().alias(C.AGREEMENT))
    )
    return acc.join(agree, on=C.ANNOTATOR, how="left").sort(C.ANNOTATOR)


def _counts(ann: pl.DataFrame) -> np.ndarray:
    """items x classes matrix of label counts, over records with at least two annotations."""
    multi = ann.filter(pl.len().over(C.ID) >= 2)
    if multi.height == 0:
        return np.zeros((0, 0))
    piv = multi.group_by(C.ID, C.LABEL_VALUE).len()
    items = {v: i for i, v in enumerate(sorted(set(piv[C.ID].to_list())))}
    classes = {v: i for i, v in enumerate(sorted(set(piv[C.LABEL_VALUE].to_list())))}
    m = np.zeros((len(items), len(classes)))
    for rid, lab, n in piv.iter_rows():
        m[items[rid], classes[lab]] = n
    return m


def krippendorff_alpha(counts: np.ndarray) -> float | None:
    """Krippendorff's alpha (nominal) from an items x classes count matrix; None when undefined."""
    m = counts[counts.sum(axis=1) >= 2]
    if m.size == 0:
        return None
    mu = m.sum(axis=1, keepdims=True)
    pairs = m[:, :, None] * m[:, None, :] - np.einsum("ic,ck->ick", m, np.eye(m.shape[1]))
    o = pairs / (mu[:, :, None] - 1)
    o = o.sum(axis=0)  # coincidence matrix
    nc = o.sum(axis=1)
    n = nc.sum()
    d_o = (o.sum() - np.trace(o)) / n
    d_e = (n * n - (nc**2).sum()) / (n * (n - 1))
    if d_e == 0:
        return None
    return float(1 - d_o / d_e)


def fleiss_kappa(counts: np.ndarray) -> float | None:
    """Fleiss' kappa from an items x classes count matrix (raters per item may vary); None when undefined."""
    m = counts[counts.sum(axis=1) >= 2]
    if m.size == 0:
        return None
    n_i = m.sum(axis=1)
    p_i = ((m**2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_bar = p_i.mean()
    p_j = m.sum(axis=0) / n_i.sum()
    p_e = (p_j**2).sum()
    if p_e >= 1:
        return None
    return float((p_bar - p_e) / (1 - p_e))


def agreement(ann: pl.DataFrame) -> pl.DataFrame:
    """Per queue: records, annotations, records with 2+ annotations, Krippendorff's alpha, Fleiss' kappa."""
    rows = []
    ann = ann.filter(pl.col(C.LABEL_VALUE).is_not_null())
    for (queue,), part in ann.group_by([C.QUEUE], maintain_order=True):
        m = _counts(part)
        rows.append(
            {
                C.QUEUE: queue,
                "n_records": part[C.ID].n_unique(),
                C.N_ANNOTATIONS: part.height,
                "n_overlap": int(m.shape[0]),
                C.KRIPPENDORFF_ALPHA: krippendorff_alpha(m) if m.size else None,
                C.FLEISS_KAPPA: fleiss_kappa(m) if m.size else None,
            }
        )
    schema = {C.QUEUE: pl.String, "n_records": pl.Int64, C.N_ANNOTATIONS: pl.Int64, "n_overlap": pl.Int64,
              C.KRIPPENDORFF_ALPHA: pl.Float64, C.FLEISS_KAPPA: pl.Float64}  # fmt: skip
    return pl.DataFrame(rows, schema=schema).sort(C.QUEUE)

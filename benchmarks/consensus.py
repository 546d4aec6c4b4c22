"""Consensus on simulated annotators: majority vote, weighted vote, Dawid-Skene and CROWDLAB.

Items: real SMS messages (../shared/data/sms_spam, ham = keep, spam = drop) with their real labels as the
truth. Annotators of stated accuracies (--accuracies) answer right with that probability, else the other
class. Every annotator first answers the same --gold gold items (their answers grade them).
Two policies, each measured as consensus accuracy on the non-gold items and labels spent (gold included):
  fixed     every item is labelled by --overlap random annotators and takes its best label (a tie: none);
  reroute   every item starts with 2 annotators; an item without a clear consensus (tie, or confidence
            below --min-confidence) is asked of one more annotator, up to --max-overlap (what
            `curate label push` does with ties).
CROWDLAB's class probabilities come from a classifier (TF-IDF + logistic regression, out-of-fold) trained
on the majority-vote labels, as cleanlab recommends. Held annotators (gold accuracy < --min-gold-accuracy)
do not count for the weighted vote and CROWDLAB (as in `curate label pull`).

    .venv/bin/python benchmarks/consensus.py --n 2000
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from labeling import consensus  # noqa: E402
from schemas import columns as C  # noqa: E402

SMS = ROOT.parent / "shared" / "data" / "sms_spam" / "SMSSpamCollection"
CLASSES = ["drop", "keep"]


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def load(n: int, seed: int) -> tuple[list[str], np.ndarray]:
    rows = [ln.split("\t", 1) for ln in SMS.read_text(encoding="utf-8").splitlines()[1:] if "\t" in ln]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(rows), size=min(n, len(rows)), replace=False)
    texts = [rows[i][1] for i in pick]
    y = np.array([1 if rows[i][0] == "ham" else 0 for i in pick])
    return texts, y


def answer(truth: int, acc: float, rng: np.random.Generator) -> int:
    return truth if rng.random() < acc else 1 - truth


def frame(votes: list[tuple[int, int, int]], y: np.ndarray, n_gold: int) -> pl.DataFrame:
    """(item, annotator, answer) votes as the annotations table consensus reads."""
    items = np.array([v[0] for v in votes])
    return pl.DataFrame(
        {
            C.ID: [f"r{i}" for i in items],
            C.QUEUE: ["q"] * len(votes),
            C.ANNOTATOR: [f"a{v[1]}" for v in votes],
            C.LABEL_VALUE: [CLASSES[v[2]] for v in votes],
            C.CATEGORY: [None] * len(votes),
            C.CORRECTION: [None] * len(votes),
            C.IS_GOLD: items < n_gold,
            C.GOLD_LABEL: [CLASSES[y[i]] if i < n_gold else None for i in items],
            "updated_at": [None] * len(votes),
        },
        schema_overrides={
            C.CATEGORY: pl.String,
            C.CORRECTION: pl.String,
            C.GOLD_LABEL: pl.String,
            "updated_at": pl.Datetime("us", "UTC"),
        },  # fmt: skip
    )


def classifier_probs(x, ann: pl.DataFrame, n: int, seed: int) -> dict[str, dict[str, float]]:
    """Out-of-fold P(class) of a classifier trained on the majority-vote labels."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    mv = ann.group_by(C.ID).agg((pl.col(C.LABEL_VALUE) == "keep").mean().alias("k"))
    lab = dict(mv.iter_rows())
    idx = np.array([int(r[1:]) for r in lab])
    yy = np.array([1 if lab[f"r{i}"] >= 0.5 else 0 for i in idx])
    model = LogisticRegression(max_iter=2000, C=4.0, random_state=seed)
    p = cross_val_predict(model, x[idx], yy, cv=5, method="predict_proba")
    return {f"r{i}": {"drop": float(pi[0]), "keep": float(pi[1])} for i, pi in zip(idx, p, strict=True)}


def decide(method: str, ann: pl.DataFrame, x, n: int, args, seed: int, min_conf: float) -> pl.DataFrame:
    if method == "majority":
        g = ann.group_by(C.ID).agg((pl.col(C.LABEL_VALUE) == "keep").mean().alias("k"), pl.len().alias("n"))
        return g.select(
            C.ID,
            pl.when(pl.col("k") > 0.5).then(pl.lit("keep")).when(pl.col("k") < 0.5).then(pl.lit("drop"))
            .alias(C.LABEL_VALUE),
        )  # fmt: skip
    acc = consensus.held_annotators(consensus.gold_accuracy(ann), args.min_gold_accuracy, args.gold)
    held = set(acc.filter(pl.col("held"))[C.ANNOTATOR].to_list()) if method != "dawid_skene" else set()
    probs = classifier_probs(x, ann, n, seed) if method == "crowdlab" else None
    return consensus.consensus(ann, method, acc, min_confidence=min_conf, held=held, pred_probs=probs)  # type: ignore[arg-type]


def run(method: str, policy: str, texts, y, x, args) -> dict:
    rng = np.random.default_rng(args.seed)
    n, n_ann = len(y), len(args.accuracies)
    votes: list[tuple[int, int, int]] = []
    for i in range(args.gold):
        for j, a in enumerate(args.accuracies):
            votes.append((i, j, answer(y[i], a, rng)))
    asked: dict[int, list[int]] = {}
    start = args.overlap if policy == "fixed" else 2
    for i in range(args.gold, n):
        who = list(rng.choice(n_ann, size=start, replace=False))
        asked[i] = who
        votes += [(i, j, answer(y[i], args.accuracies[j], rng)) for j in who]
    t0 = cpu()
    min_conf = args.min_confidence if policy == "reroute" else 0.0  # fixed: every item takes its best label
    labels = decide(method, frame(votes, y, args.gold), x, n, args, args.seed, min_conf)
    while policy == "reroute":
        open_ = labels.filter(pl.col(C.LABEL_VALUE).is_null())[C.ID].to_list()
        more = [
            int(r[1:]) for r in open_ if int(r[1:]) >= args.gold and len(asked[int(r[1:])]) < args.max_overlap
        ]
        if not more:
            break
        for i in more:
            j = int(rng.choice([k for k in range(n_ann) if k not in asked[i]]))
            asked[i].append(j)
            votes.append((i, j, answer(y[i], args.accuracies[j], rng)))
        labels = decide(method, frame(votes, y, args.gold), x, n, args, args.seed, min_conf)
    secs = cpu() - t0
    got = dict(labels.select(C.ID, C.LABEL_VALUE).iter_rows())
    items = range(args.gold, n)
    right = sum(got.get(f"r{i}") == CLASSES[y[i]] for i in items)
    unlabelled = sum(got.get(f"r{i}") is None for i in items)
    return {"method": method, "policy": policy, "accuracy": right / len(items), "no_label": unlabelled,
            "labels_spent": len(votes), "per_item": len(votes) / n, "cpu_s": secs}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="items (SMS messages)")
    ap.add_argument("--accuracies", type=float, nargs="+", default=[0.95, 0.85, 0.75, 0.65, 0.45])
    ap.add_argument("--gold", type=int, default=20, help="gold items every annotator answers")
    ap.add_argument("--overlap", type=int, default=3, help="annotators per item, fixed policy")
    ap.add_argument("--max-overlap", type=int, default=5)
    ap.add_argument("--min-confidence", type=float, default=0.7)
    ap.add_argument("--min-gold-accuracy", type=float, default=0.6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, y = load(args.n, args.seed)
    x = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(texts)
    print(f"{len(y)} SMS ({(y == 0).sum()} spam), annotator accuracies {args.accuracies}, "
          f"{args.gold} gold items, min_confidence {args.min_confidence}, "
          f"min_gold_accuracy {args.min_gold_accuracy}")  # fmt: skip
    t = time.time()
    head = f"{'policy':8} {'method':12} {'accuracy':>8} {'no label':>8} {'labels':>7} {'per item':>8}"
    print(head + f" {'cpu s':>6}")
    for policy in ("fixed", "reroute"):
        for method in ("majority", "weighted", "dawid_skene", "crowdlab"):
            r = run(method, policy, texts, y, x, args)
            print(f"{r['policy']:8} {r['method']:12} {r['accuracy']:8.4f} {r['no_label']:8d} "
                  f"{r['labels_spent']:7d} {r['per_item']:8.2f} {r['cpu_s']:6.1f}")  # fmt: skip
    print(f"wall {time.time() - t:.0f} s")


if __name__ == "__main__":
    main()

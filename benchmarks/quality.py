"""Quality scoring on real labels: our classifier per embedder tier vs heuristic rules vs TF-IDF + LR.

Sets: `sms_spam` (ham = good; stratified 75/25 split) and `turku_web_line_quality` English lines (1 = clean
text, 0 = boilerplate; the split is by document, so lines of one page never sit on both sides). Methods:
- embed-static / embed-transformer: `quality.classifier` (calibrated LR) on that tier's vectors;
- embed-cascade: static head, transformer head for records with static uncertainty >= 0.5;
- reference-kNN (static): mean cosine to the 10 nearest good training examples (no negatives used);
- embed-static+rules: the same classifier on static vectors plus the rule scores as features;
- rules: the heuristic text rules (`quality.rules`), as pass/fail and as fraction of rules passed;
- tfidf-lr: scikit-learn TF-IDF (word 1-2 grams + char 2-5 grams) + logistic regression (the usual baseline).
Prints ROC-AUC and accuracy (at p = 0.5; rules: pass = good) on the held-out part, and embedding speed.

Usage: .venv/bin/python benchmarks/quality.py [--sets sms,turku] [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(
    0, str(ROOT)
)  # the repo's packages, not this folder (benchmarks/quality.py shadows `quality`)


def load_sms(seed: int):
    from sklearn.model_selection import train_test_split

    rows = [
        ln.split("\t", 1)
        for ln in (DATA / "sms_spam" / "SMSSpamCollection").read_text("utf-8").splitlines()[1:]
    ]
    texts = [r[1] for r in rows]
    y = np.array([r[0] == "ham" for r in rows], dtype=int)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=seed)
    return texts, y, tr, te


def load_turku(seed: int):
    texts, y, doc = [], [], []
    for split in ("train", "dev", "test"):
        docs = json.loads((DATA / "turku_web_line_quality" / "en" / f"{split}.json").read_text("utf-8"))
        for n, d in enumerate(docs):
            for line, lab in zip(d["text"], d["labels"], strict=True):
                texts.append(line)
                y.append(int(lab == "1"))
                doc.append(f"{split}-{n}")
    y = np.array(y)
    groups = np.unique(np.array(doc), return_inverse=True)[1]
    rng = np.random.default_rng(seed)
    test_docs = rng.permutation(groups.max() + 1)[: (groups.max() + 1) // 4]
    te = np.flatnonzero(np.isin(groups, test_docs))
    tr = np.flatnonzero(~np.isin(groups, test_docs))
    return texts, y, tr, te


def metrics(y: np.ndarray, score: np.ndarray, pred: np.ndarray | None = None) -> str:
    from sklearn.metrics import accuracy_score, roc_auc_score

    pred = score >= 0.5 if pred is None else pred
    return f"AUC {roc_auc_score(y, score):.3f}  acc {accuracy_score(y, pred):.3f}"


def main() -> None:
    import polars as pl
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union

    from quality import classifier
    from quality.cascade import score_texts
    from quality.embed import embed_texts
    from quality.rules import text_reason, text_scores
    from schemas.config import TextRules
    from schemas.embed import EmbedConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sets", default="sms,turku")
    ap.add_argument("--seeds", default="0", help="comma-separated split seeds")
    args = ap.parse_args()
    static = EmbedConfig(embedder="static", device="cpu")
    trans = EmbedConfig(embedder="transformer", device="cpu")
    cascade = EmbedConfig(embedder="cascade", device="cpu", cascade_uncertainty=0.5)
    embed_texts(["warm up"], static)
    embed_texts(["warm up"], trans)
    for name in args.sets.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            texts, y, tr, te = (load_sms if name == "sms" else load_turku)(seed)
            good_share = y[te].mean()
            print(
                f"\n== {name} (seed {seed}): {len(tr)} train / {len(te)} test, {good_share:.1%} good in test"
            )
            t = time.perf_counter()
            xs = embed_texts(texts, static)
            ts = time.perf_counter() - t
            t = time.perf_counter()
            xt = embed_texts(texts, trans)
            tt = time.perf_counter() - t
            n = len(texts)
            print(
                f"  embedding {n} texts: static {n / ts:.0f}/s, transformer {n / tt:.0f}/s ({tt / ts:.0f}x)"
            )
            m = classifier.train(xs[tr], y[tr], embed=static)
            print(f"  embed-static       {metrics(y[te], classifier.score(m, xs[te])[0])}")
            m = classifier.train(xt[tr], y[tr], embed=trans)
            print(f"  embed-transformer  {metrics(y[te], classifier.score(m, xt[te])[0])}")
            m = classifier.train(xs[tr], y[tr], embed=cascade, x_transformer=xt[tr])
            t = time.perf_counter()
            q, _, redo = score_texts(m, [texts[i] for i in te], cascade, xs[te])
            tc = time.perf_counter() - t + ts * len(te) / len(texts)
            print(f"  embed-cascade      {metrics(y[te], q)}  ({redo.mean():.1%} re-embedded, "
                  f"{len(te) / tc:.0f} texts/s incl. static pass)")  # fmt: skip
            good = tr[y[tr] == 1]
            ref = classifier.reference_score(xs[te], xs[good], k=10)
            print(f"  reference-kNN      AUC {metrics(y[te], ref, ref >= np.median(ref)).split('  ')[0][4:]} "
                  "(static, good examples only)")  # fmt: skip
            scores = text_scores(pl.Series([texts[i] for i in te], dtype=pl.String))
            reason = scores.select(text_reason(TextRules()).alias("r"))["r"]
            passed = reason.is_null().to_numpy()
            frac = _fraction_passed(scores, TextRules())
            feats = _rule_features(text_scores(pl.Series(texts, dtype=pl.String)), tr)
            m = classifier.train(np.hstack([xs, feats])[tr], y[tr], embed=static)
            q = classifier.score(m, np.hstack([xs, feats])[te])[0]
            print(f"  embed-static+rules {metrics(y[te], q)}  (rule scores as extra features)")
            print(f"  rules pass/fail    {metrics(y[te], passed.astype(float), passed)}")
            print(f"  rules fraction     AUC {metrics(y[te], frac).split('  ')[0][4:]}")
            base = make_pipeline(
                make_union(
                    TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
                    TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
                ),
                LogisticRegression(max_iter=2000, C=10, class_weight="balanced"),
            )
            base.fit([texts[i] for i in tr], y[tr])
            p = base.predict_proba([texts[i] for i in te])[:, 1]
            print(f"  tfidf-lr           {metrics(y[te], p)}")


def _rule_features(scores, train_rows: np.ndarray) -> np.ndarray:
    """Rule score columns, log-scaled counts, standardised on the training rows (NaN -> 0)."""
    x = np.nan_to_num(scores.to_numpy().astype(np.float64))
    x = np.sign(x) * np.log1p(np.abs(x))
    mu, sd = x[train_rows].mean(axis=0), x[train_rows].std(axis=0) + 1e-9
    return ((x - mu) / sd).astype(np.float32)


def _fraction_passed(scores, cfg) -> np.ndarray:
    """Share of the text rules each text passes (a graded version of the pass/fail decision)."""
    s = {c: scores[c].to_numpy() for c in scores.columns}
    with np.errstate(invalid="ignore"):
        checks = [
            s["rule_chars"] >= cfg.min_chars,
            s["rule_words"] >= cfg.min_words,
            s["rule_words"] <= cfg.max_words,
            (s["rule_mean_word_length"] >= cfg.min_mean_word_length)
            & (s["rule_mean_word_length"] <= cfg.max_mean_word_length),
            s["rule_symbol_ratio"] <= cfg.max_symbol_ratio,
            s["rule_digit_ratio"] <= cfg.max_digit_ratio,
            ~(s["rule_bullet_line_fraction"] > cfg.max_bullet_line_fraction),
            ~(s["rule_dup_line_fraction"] > cfg.max_dup_line_fraction),
            ~(s["rule_punct_line_fraction"] < cfg.min_punct_line_fraction),
            s["rule_stopwords"] >= cfg.min_stopwords,
        ]
    return np.mean(np.stack(checks), axis=0)


if __name__ == "__main__":
    main()

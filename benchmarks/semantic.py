"""Semantic dedup: calibrate eps on STS-B and MRPC, then precision/recall/F1 of the stage, per embedder tier.

"Duplicate" ground truth: STS-B pairs scored >= 4.5 (of 5), MRPC pairs labelled paraphrase. The threshold
(1 - eps) maximising F1 is picked on the train splits and evaluated on the test splits, first on the pair
cosine alone, then through `semantic_edges` (centred vectors, k-means + threshold) and connected components
over all test sentences, where a pair counts as found when both sentences land in one linked group.
Web documents: benchmarks/semantic_web.py (the figures the defaults are chosen from).

Usage: .venv/bin/python benchmarks/semantic.py [--tiers static,transformer] [--limit N] [--scale]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(
    0, str(ROOT)
)  # the repo's packages, not this folder (benchmarks/quality.py shadows `quality`)


def stsb(split: str) -> tuple[list[str], list[str], np.ndarray]:
    rows = [
        ln.split("\t") for ln in (DATA / "stsb" / f"sts-{split}.csv").read_text(encoding="utf-8").splitlines()
    ]
    return [r[5] for r in rows], [r[6] for r in rows], np.array([float(r[4]) >= 4.5 for r in rows])


def mrpc(split: str) -> tuple[list[str], list[str], np.ndarray]:
    text = (DATA / "mrpc" / f"msr_paraphrase_{split}.txt").read_text(encoding="utf-8-sig")
    rows = [ln.split("\t") for ln in text.splitlines()[1:] if ln.strip()]
    return [r[3] for r in rows], [r[4] for r in rows], np.array([r[0] == "1" for r in rows])


def prf(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    tp = float((pred & truth).sum())
    p = tp / max(pred.sum(), 1)
    r = tp / max(truth.sum(), 1)
    return p, r, 2 * p * r / max(p + r, 1e-12)


def best_threshold(cos: np.ndarray, truth: np.ndarray) -> float:
    grid = np.round(np.arange(0.70, 0.995, 0.005), 3)
    f1 = [prf(cos >= t, truth)[2] for t in grid]
    return float(grid[int(np.argmax(f1))])


def sentence_table(x: np.ndarray) -> pa.Table:
    """`id`, `embedding`, `lang` (all en) of sentence vectors."""
    from quality.vectors import vectors_to_arrow

    n = len(x)
    return pa.table(
        {"id": [f"{i:06d}" for i in range(n)], "embedding": vectors_to_arrow(x), "lang": ["en"] * n}
    )


def groups(table: pa.Table, cfg) -> np.ndarray:
    """Linked-group label per row of `table` under semantic_edges (-1: no semantic duplicate)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from pipeline.semantic import semantic_edges

    edges, _ = semantic_edges(table, cfg)
    n = table.num_rows
    i = np.array(edges["id_a"].to_pylist(), dtype=np.int64)
    j = np.array(edges["id_b"].to_pylist(), dtype=np.int64)
    _, comp = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    return np.where(np.bincount(comp)[comp] > 1, comp, -1)


def main() -> None:
    from quality.embed import embed_texts
    from schemas.embed import EmbedConfig, SemanticConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiers", default="static,transformer", help="comma-separated embedder tiers")
    ap.add_argument("--limit", type=int, default=0, help="pairs per split (0 = all)")
    ap.add_argument("--scale", action="store_true", help="only time the stage on 5k..all real sentences")
    args = ap.parse_args()
    if args.scale:
        return scale()
    sets = {"stsb": (stsb("train"), stsb("test")), "mrpc": (mrpc("train"), mrpc("test"))}
    if args.limit:
        sets = {
            k: tuple((a[: args.limit], b[: args.limit], y[: args.limit]) for a, b, y in v)
            for k, v in sets.items()
        }
    for k, v in sets.items():
        (tr, te) = v
        print(f"{k}: train {len(tr[2])} pairs ({tr[2].sum()} dup), test {len(te[2])} ({te[2].sum()} dup)")
    for tier in args.tiers.split(","):
        cfg = EmbedConfig(embedder=tier, device="cpu")
        cache: dict[str, np.ndarray] = {}

        def vec(texts: list[str], cfg: EmbedConfig = cfg, cache: dict[str, np.ndarray] = cache) -> np.ndarray:
            new = list(dict.fromkeys(t for t in texts if t not in cache))
            if new:
                for t, v in zip(new, embed_texts(new, cfg), strict=True):
                    cache[t] = v
            return np.stack([cache[t] for t in texts])

        t0 = time.perf_counter()
        cos = {}
        for name, splits in sets.items():
            for sname, (a, b, _) in zip(("train", "test"), splits, strict=True):
                cos[name, sname] = np.einsum("ij,ij->i", vec(a), vec(b))
        secs = time.perf_counter() - t0
        rate = len(cache) / secs
        print(f"\n== {tier}: {len(cache)} distinct sentences embedded in {secs:.1f} s ({rate:.0f}/s)")
        for name, (train, test) in sets.items():
            thr = best_threshold(cos[name, "train"], train[2])
            p, r, f = prf(cos[name, "test"] >= thr, test[2])
            print(f"{name:5s} best train threshold {thr:.3f} (eps {1 - thr:.3f}) -> test pair-cosine "
                  f"P {p:.3f} R {r:.3f} F1 {f:.3f}")  # fmt: skip
        thr = best_threshold(cos["stsb", "train"], sets["stsb"][0][2])
        for eps in sorted({round(1 - thr, 3), 0.05, 0.10, 0.15}):
            for name, (_, (a, b, y)) in sets.items():
                p, r, f = prf(cos[name, "test"] >= 1 - eps, y)
                sents = list(dict.fromkeys(a + b))
                pos = {s: i for i, s in enumerate(sents)}
                x = vec(sents)
                table = sentence_table(x)
                t1 = time.perf_counter()
                cl = groups(table, SemanticConfig(eps=eps))
                ts = time.perf_counter() - t1
                ia = np.array([pos[s] for s in a])
                ib = np.array([pos[s] for s in b])
                same = np.array([cl[i] >= 0 and cl[i] == cl[j] for i, j in zip(ia, ib, strict=True)])
                sp, sr, sf = prf(same, y)
                print(f"  eps {eps:.3f} {name:5s} test: pair P {p:.3f} R {r:.3f} F1 {f:.3f} | stage "
                      f"({ts:.2f} s, {len(sents)} rows) P {sp:.3f} R {sr:.3f} F1 {sf:.3f}"
                      )  # fmt: skip


def scale() -> None:
    """Stage time against n on real static vectors (STS-B, MRPC and SMS sentences): near-linear or not."""
    from pipeline.semantic import semantic_edges
    from quality.embed import embed_texts
    from schemas.embed import EmbedConfig, SemanticConfig

    sents: list[str] = []
    for split in ("train", "dev", "test"):
        a, b, _ = stsb(split)
        sents += a + b
    for split in ("train", "test"):
        a, b, _ = mrpc(split)
        sents += a + b
    sms = (DATA / "sms_spam" / "SMSSpamCollection").read_text("utf-8").splitlines()[1:]
    sents = list(dict.fromkeys(sents + [ln.split("\t", 1)[1] for ln in sms]))
    x = embed_texts(sents, EmbedConfig(embedder="static"))
    print(f"{len(sents)} distinct real sentences (static vectors, {x.shape[1]} dims)")
    for n in (2500, 5000, 10000, 20000, len(sents)):
        table = sentence_table(x[:n])
        t = time.perf_counter()
        edges, _ = semantic_edges(table, SemanticConfig(eps=0.1))
        secs = time.perf_counter() - t
        print(
            f"  n {n:6d}: {secs:6.2f} s  ({1e6 * secs / n:6.1f} us/row), {edges.num_rows} pairs at eps 0.10"
        )


if __name__ == "__main__":
    main()

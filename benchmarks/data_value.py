"""Proof of value: curated data vs raw data on two real labelled data sets with stated, seeded corruptions.

    .venv/bin/python benchmarks/data_value.py                 # SMS spam + Turku web lines, 3 seeds
    .venv/bin/python benchmarks/data_value.py --quick         # SMS subset, 1 seed (the test suite's form)
    .venv/bin/python benchmarks/data_value.py --out results/  # curves.csv, summary.json, curves.png

Corruptions (per seed): class-conditional label flips (SMS: 5 % of ham, 30 % of spam; Turku: 20 % of
clean, 30 % of boilerplate), heavy-tailed duplicates (5 % of the pool copied Zipf(1.8) times, capped at
40, half of them lightly edited; the sources are flipped records, so the copies carry wrong labels),
15 % junk lines with random labels, 3 % of the test items planted in the pool (half exact, half edited).
Arms, models and factors: see labeling/experiment.py. The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = ROOT.parent / "shared" / "data"


def _sets(quick: bool) -> list:
    from labeling.experiment import Corruption, Settings, load_sms, load_turku

    sms = ("sms_spam", lambda: load_sms(DATA / "sms_spam" / "SMSSpamCollection"),
           Corruption(flip={"ham": 0.05, "spam": 0.3}))  # fmt: skip
    turku = ("turku_en_lines", lambda: load_turku(DATA / "turku_web_line_quality" / "en"),
             Corruption(flip={"clean": 0.2, "boilerplate": 0.3}))  # fmt: skip
    if quick:
        return [(sms[0], sms[1], Settings(name=sms[0], corruption=sms[2], budget=100, max_rows=1500,
                                          grid=(25, 50, 100, 200, 400, 800)))]  # fmt: skip
    return [(n, load, Settings(name=n, corruption=c, budget=300)) for n, load, c in (sms, turku)]


def _median(xs: list) -> float | None:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="SMS subset, one seed, small grid (seconds)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds per data set (default 3; quick: 1)")
    ap.add_argument("--out", type=Path, default=None, help="folder for curves.csv, summary.json, curves.png")
    args = ap.parse_args()
    import numpy as np
    import polars as pl

    from labeling.experiment import plot, run_seed, summarise

    seeds = args.seeds or (1 if args.quick else 3)
    out = args.out or Path(tempfile.mkdtemp(prefix="data_value-"))
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.time(), time.process_time()
    print(f"load {os.getloadavg()[0]:.1f}; writing to {out}", flush=True)
    summaries, rows = {}, []
    for name, load, settings in _sets(args.quick):
        try:
            texts, labels = load()
        except FileNotFoundError as exc:
            print(f"{name}: data set absent ({exc}), skipped")
            continue
        if settings.max_rows and len(texts) > settings.max_rows:
            keep = np.random.default_rng(0).choice(len(texts), settings.max_rows, replace=False)
            texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
        print(f"{name}: {len(texts)} texts, classes {sorted(set(labels))}", flush=True)
        per_seed = []
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(seeds):
                r = run_seed(texts, labels, settings, seed, Path(tmp) / f"s{seed}", log=print)
                per_seed.append(r)
                rows += r["rows"]
        summaries[name] = summarise(per_seed, settings)
    if not rows:
        print(json.dumps({"error": "no data set found under " + str(DATA)}))
        return
    pl.DataFrame(rows).select(
        "dataset", "seed", "arm", "model", "examples", "labels", "accuracy", "macro_f1"
    ).write_csv(out / "curves.csv")
    png = plot(rows, out / "curves.png")
    (out / "summary.json").write_text(json.dumps(summaries, indent=2, default=str), encoding="utf-8")
    # the headline per data set: the curated arm that needs the fewest examples (or labels) to reach raw's
    # final macro-F1 on the embedding model; factors per seed
    result: dict = {"datasets": {}}
    for name, s in summaries.items():
        fin = {(f["arm"], f["model"]): f for f in s["final"]}
        by_model = {}
        for model in ("embed", "tfidf"):
            arms = {}
            for arm in ("curated", "review", "active"):
                fx = [sd["factors"][model]["macro_f1"]["arms"].get(arm, {}) for sd in s["seeds"]]
                keys = ("factor_examples", "factor_labels", "examples", "labels", "factor_examples_vs_peak",
                        "factor_labels_vs_peak")  # fmt: skip
                arms[arm] = {k: [f.get(k) for f in fx] for k in keys}
                for k in (
                    "factor_examples",
                    "factor_labels",
                    "factor_examples_vs_peak",
                    "factor_labels_vs_peak",
                ):
                    arms[arm]["median_" + k] = _median(arms[arm][k])
            raw_f = [sd["factors"][model]["macro_f1"] for sd in s["seeds"]]
            by_model[model] = {
                "arms": arms,
                "raw_curve_falls": [f["raw_falls"] for f in raw_f],
                "raw_final": [round(f["target"], 4) for f in raw_f],
                "raw_peak": [round(f["raw_peak"], 4) for f in raw_f],
                "macro_f1": {a: fin[(a, model)]["macro_f1"] for a in ("raw", "curated", "review", "active")},
                "macro_f1_range": {
                    a: [fin[(a, model)]["f1_min"], fin[(a, model)]["f1_max"]]
                    for a in ("raw", "curated", "review", "active")
                },  # fmt: skip
                "accuracy": {a: fin[(a, model)]["accuracy"] for a in ("raw", "curated", "review", "active")},
            }
        arms = by_model["embed"]["arms"]
        best = max(arms, key=lambda a: max(arms[a]["median_factor_examples"] or 0,
                                           arms[a]["median_factor_labels"] or 0))  # fmt: skip
        result["datasets"][name] = {
            "acc_raw": fin[("raw", "embed")]["accuracy"],
            "acc_curated": fin[("curated", "embed")]["accuracy"],
            "macro_f1_raw": fin[("raw", "embed")]["macro_f1"],
            "macro_f1_curated": fin[("curated", "embed")]["macro_f1"],
            "examples_raw": fin[("raw", "embed")]["examples"],
            "examples_curated": fin[("curated", "embed")]["examples"],
            "best_arm": best,
            "examples_to_match": _median(arms[best]["examples"]),
            "labels_used": _median(arms[best]["labels"]),
            "factor_examples_per_seed": arms[best]["factor_examples"],
            "factor_labels_per_seed": arms[best]["factor_labels"],
            "factor_examples_vs_peak_per_seed": arms[best]["factor_examples_vs_peak"],
            "models": by_model,
            "leaks_caught": [sd["stats"]["leaks_caught"] for sd in s["seeds"]],
            "leaks_planted": [sd["stats"]["leaks_planted"] for sd in s["seeds"]],
            "gate_other_drops": [sd["stats"]["gate_other_drops"] for sd in s["seeds"]],
            "review_asked": [sd["stats"]["review_asked"] for sd in s["seeds"]],
            "wrong_labels": {
                k: [round(sd["stats"][f"wrong_labels_{k}"], 4) for sd in s["seeds"]]
                for k in ("raw", "curated", "reviewed")
            },  # fmt: skip
        }
    first = next(iter(result["datasets"].values()))
    headline = ("acc_raw", "acc_curated", "macro_f1_raw", "macro_f1_curated", "examples_raw",
                "examples_curated", "examples_to_match", "labels_used", "factor_examples_per_seed",
                "factor_labels_per_seed", "best_arm")  # fmt: skip
    result |= {k: first[k] for k in headline}
    result |= {
        "primary": next(iter(result["datasets"])),
        "seeds": seeds,
        "wall_s": round(time.time() - t0, 1),
        "cpu_s": round(time.process_time() - c0, 1),
        "load": round(os.getloadavg()[0], 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "out": str(out),
        "plot": str(png),
    }
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()

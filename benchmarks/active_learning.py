"""Active learning vs random labelling: labels needed to reach 95% of the full-label accuracy.

Runs the same loop (`labeling.simulate.run`, simulated annotator answering from the real labels) with
uncertainty + diversity routing and with random picks, over several seeds, on
../shared/data/sms_spam (ham/spam) and ../shared/data/cifar10_sample (10 classes), and prints, per data
set, the full-label accuracy, the labels each strategy needed (median over seeds) and their ratio.

    .venv/bin/python benchmarks/active_learning.py [--seeds 5] [--out bench_out/active_learning]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# run as a script, benchmarks/ is sys.path[0] and benchmarks/quality.py would shadow the quality package
sys.path[0] = str(Path(__file__).resolve().parents[1])

from labeling import learner, simulate  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = {
    # name: (path, label field, labels per round, rounds)
    "sms_spam": (DATA / "sms_spam" / "SMSSpamCollection", "Label", 5, 24),
    "cifar10_sample": (DATA / "cifar10_sample", "label", 25, 24),
}
STRATEGIES = ("uncertainty", "random")


def needed(rows: list[dict], target: float, cap: int) -> int:
    """Labels to reach `target`; a curve that never does counts as one more round than it ran."""
    n = simulate.labels_to_reach(rows, target)
    return n if n is not None else cap


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=5, help="seeds (splits, picks) per strategy")
    ap.add_argument("--out", type=Path, default=Path("bench_out/active_learning"), help="curve CSVs go here")
    ap.add_argument("--sets", nargs="*", default=list(SETS), help="data sets to run")
    args = ap.parse_args()
    head = f"{'data set':16} {'target':>7} {'full acc':>8} {'strategy':>12} {'labels (median)':>16}"
    print(f"{head} {'per seed':>30}")
    summary = []
    for name in args.sets:
        path, field, budget, rounds = SETS[name]
        t0 = time.perf_counter()
        ds = learner.load(path, field)
        print(f"{name}: {len(ds.y)} records, {len(ds.classes)} classes, features {ds.features}")
        fulls, curves = [], {s: [] for s in STRATEGIES}
        for seed in range(args.seeds):
            fulls.append(simulate.full_accuracy(ds, seed))
            for strategy in STRATEGIES:
                rows = simulate.run(ds, strategy, budget, rounds, 0.0, seed)
                simulate.write_curve(rows, args.out / f"{name}-{strategy}-seed{seed}.csv")
                curves[strategy].append(rows)
        for frac in (0.95, 0.99):
            per = {
                s: [needed(c, frac * f, budget * (rounds + 1)) for c, f in zip(curves[s], fulls, strict=True)]
                for s in STRATEGIES
            }
            med = {s: statistics.median(v) for s, v in per.items()}
            for s in STRATEGIES:
                print(f"{name:16} {frac:>7.0%} {statistics.mean(fulls):>8.3f} {s:>12} {med[s]:>16.0f} "
                      f"{str(per[s]):>30}")  # fmt: skip
            ratio = med["uncertainty"] / med["random"]
            summary.append((name, frac, ratio))
            print(f"{name:16} {frac:>7.0%} uncertainty+diversity / random = {ratio:.2f} (target <= 0.50)")
        print(f"{name}: {time.perf_counter() - t0:.0f} s")
    print("\nsummary (labels needed, uncertainty+diversity / random, median over seeds):")
    for name, frac, ratio in summary:
        print(f"  {name:16} {frac:.0%} of full-label accuracy: {ratio:.2f}")


if __name__ == "__main__":
    main()

"""The active-learning loop with a simulated annotator, label-error detection and consensus, on real data."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from labeling import consensus, learner, simulate
from labeling.label_errors import find_label_errors, review_rows
from schemas import columns as C

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SMS = DATA / "sms_spam" / "SMSSpamCollection"
CIFAR = DATA / "cifar10_sample"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")


@pytest.fixture(scope="module")
def sms() -> learner.Dataset:
    return learner.load(SMS, "Label")


def test_cli_simulate_writes_a_curve_that_learns(tmp_path: Path) -> None:
    from labeling.cli import label_app

    out = tmp_path / "curve.csv"
    args = ["simulate", "--input", str(SMS), "--label-field", "Label", "--strategy", "uncertainty",
            "--budget", "10", "--rounds", "4", "--out", str(out)]  # fmt: skip
    res = CliRunner().invoke(label_app, args)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(out.open()))
    assert {"labels", "accuracy"} <= set(rows[0])
    assert [int(r["labels"]) for r in rows] == [10, 20, 30, 40]
    labels = [ln.split("\t", 1)[0] for ln in SMS.read_text(encoding="utf-8").splitlines()[1:]]
    majority = max(labels.count("ham"), labels.count("spam")) / len(labels)
    assert float(rows[-1]["accuracy"]) > majority  # better than always answering "ham"
    bad = CliRunner().invoke(label_app, [*args[:5], "--strategy", "sideways"])
    assert bad.exit_code != 0 and "--strategy" in bad.output


def test_strategies_share_the_loop_and_reach_the_ceiling(sms: learner.Dataset) -> None:
    full = simulate.full_accuracy(sms)
    curves = {
        s: simulate.run(sms, s, budget=10, rounds=3, seed=1) for s in ("uncertainty", "random", "diversity")
    }
    for rows in curves.values():
        assert [r["labels"] for r in rows] == [10, 20, 30]
        assert all(0 <= r["accuracy"] <= 1 for r in rows)
    assert simulate.labels_to_reach(curves["uncertainty"], 0.9 * full) is not None
    assert simulate.labels_to_reach(curves["uncertainty"], 2.0) is None


def test_simulated_annotator_noise_rate(sms: learner.Dataset) -> None:
    rng = np.random.default_rng(0)
    p = 0.2
    answers = simulate.annotate(sms.y, len(sms.classes), p, rng)
    flipped = (answers != sms.y).mean()
    sd = np.sqrt(p * (1 - p) / len(sms.y))
    assert abs(flipped - p) < 4 * sd
    assert (simulate.annotate(sms.y, 2, 0.0, rng) == sms.y).all()


def test_image_loop_beats_chance() -> None:
    ds = learner.load(CIFAR, "label")
    assert ds.kind == "image" and len(ds.classes) == 10
    rows = simulate.run(ds, "uncertainty", budget=50, rounds=3, seed=0)
    assert rows[-1]["labels"] == 150
    assert rows[-1]["accuracy"] > 1.5 / len(ds.classes)


def test_confident_learning_finds_flipped_labels(sms: learner.Dataset) -> None:
    rng = np.random.default_rng(0)
    idx = rng.choice(len(sms.y), 1500, replace=False)
    y = sms.y[idx].copy()
    flip = rng.choice(len(idx), 60, replace=False)  # made label errors: 4% of the labels inverted
    y[flip] = 1 - y[flip]
    err = find_label_errors(sms.kind, sms.x[idx], y, sms.classes, folds=5, seed=0)
    flagged = np.flatnonzero(err[C.LABEL_ISSUE].to_numpy())
    hits = len(set(flagged.tolist()) & set(flip.tolist()))
    assert hits / len(flip) >= 0.6  # recall
    assert hits / max(len(flagged), 1) >= 0.5  # precision
    assert (err[C.SUGGESTED_LABEL].to_numpy()[flip] == np.array(sms.classes)[sms.y[idx][flip]]).mean() > 0.6
    review = review_rows([f"r{i}" for i in range(len(idx))], err)
    assert review.height == len(flagged) and (review[C.QUEUE] == "review").all()
    assert review[C.LABEL_QUALITY].is_sorted()


def _crowd(y: np.ndarray, classes: list[str], noise: list[float], seed: int, gold_n: int) -> pl.DataFrame:
    """Annotations of simulated annotators with the given error rates; the first `gold_n` items are gold."""
    rng = np.random.default_rng(seed)
    rows = []
    for j, p in enumerate(noise):
        ans = simulate.annotate(y, len(classes), p, rng)
        for i, a in enumerate(ans):
            gold = classes[y[i]] if i < gold_n else None
            rows.append({C.ID: f"r{i}", C.QUEUE: "q", C.ANNOTATOR: f"a{j}", C.LABEL_VALUE: classes[a],
                         C.CATEGORY: None, C.CORRECTION: None, C.IS_GOLD: i < gold_n,
                         C.GOLD_LABEL: gold, "updated_at": None})  # fmt: skip
    return pl.DataFrame(rows)


def test_consensus_weights_good_annotators_over_bad(sms: learner.Dataset) -> None:
    y = sms.y[:600]
    truth = np.array(sms.classes)[y]
    noise = [0.05, 0.4, 0.45]  # one careful annotator, two careless ones
    ann = _crowd(y, sms.classes, noise, seed=3, gold_n=100)
    acc = consensus.gold_accuracy(ann).sort(C.ANNOTATOR)
    for est, p in zip(acc[C.GOLD_ACCURACY].to_list(), noise, strict=True):
        assert abs(est - (1 - p)) < 0.12
    by_id = {f"r{i}": t for i, t in enumerate(truth)}

    def accuracy(labels: pl.DataFrame) -> float:
        return float(np.mean([by_id[i] == lab for i, lab in labels.select(C.ID, C.LABEL_VALUE).iter_rows()]))

    plain_vote = ann.group_by(C.ID).agg(pl.col(C.LABEL_VALUE).mode().sort().first())
    weighted = consensus.consensus(ann, "weighted")
    ds = consensus.consensus(ann, "dawid_skene")
    assert accuracy(weighted) > accuracy(plain_vote) + 0.05
    assert accuracy(ds) > accuracy(plain_vote) + 0.05
    assert weighted[C.LABEL_CONFIDENCE].is_between(0.5, 1).all()
    agree = consensus.agreement(ann)
    assert agree[C.N_ANNOTATIONS][0] == 1800 and agree["n_overlap"][0] == 600
    alpha, kappa = agree[C.KRIPPENDORFF_ALPHA][0], agree[C.FLEISS_KAPPA][0]
    assert 0 < alpha < 0.5 and abs(alpha - kappa) < 0.01  # noisy crowd; alpha ~ kappa with full overlap

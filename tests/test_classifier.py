"""Embedding quality classifier on the real SMS spam collection (ham = good), with held-out splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from schemas import columns as C
from schemas.embed import EmbedConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SMS = DATA / "sms_spam" / "SMSSpamCollection"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")
STATIC = EmbedConfig(embedder="static", device="cpu")


@pytest.fixture(scope="module")
def sms():
    """Texts, 0/1 labels (1 = ham) and a stratified 75/25 split of the real SMS collection."""
    from sklearn.model_selection import train_test_split

    rows = [ln.split("\t", 1) for ln in SMS.read_text(encoding="utf-8").splitlines()[1:]]
    texts = [r[1] for r in rows]
    y = np.array([r[0] == "ham" for r in rows], dtype=int)
    tr, te = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=0)
    return texts, y, tr, te


@pytest.fixture(scope="module")
def static_vectors(sms):
    from quality.embed import embed_texts

    return embed_texts(sms[0], STATIC)


def test_held_out_auc_accuracy_and_calibration(sms, static_vectors):
    from sklearn.metrics import accuracy_score, roc_auc_score

    from quality import classifier

    texts, y, tr, te = sms
    model = classifier.train(static_vectors[tr], y[tr], embed=STATIC)
    q, u = classifier.score(model, static_vectors[te])
    assert q.dtype == np.float32 and q.shape == (len(te),)
    assert roc_auc_score(y[te], q) > 0.97
    majority = max(y[te].mean(), 1 - y[te].mean())
    assert accuracy_score(y[te], q >= 0.5) > majority + 0.05
    np.testing.assert_allclose(u, 1 - np.abs(2 * q - 1), atol=1e-6)
    assert abs(float(q.mean()) - float(y[te].mean())) < 0.05  # calibrated: mean P(ham) tracks the ham rate
    assert u[np.abs(q - 0.5) < 0.1].min(initial=1) >= 0.8 and u[(q < 0.02) | (q > 0.98)].max(initial=0) < 0.05


def test_save_and_load_round_trip(sms, static_vectors, tmp_path):
    from quality import classifier

    _, y, tr, te = sms
    model = classifier.train(static_vectors[tr], y[tr], embed=STATIC, positive="ham")
    classifier.save(model, tmp_path / "m")
    classifier.save(model, tmp_path / "m")  # overwriting an existing model dir works
    back = classifier.load(tmp_path / "m")
    assert back.positive == "ham" and back.embed_config == STATIC
    np.testing.assert_array_equal(
        classifier.score(back, static_vectors[te])[0], classifier.score(model, static_vectors[te])[0]
    )
    with pytest.raises(FileNotFoundError, match="curate quality train"):
        classifier.load(tmp_path / "missing")
    with pytest.raises(ValueError, match="transformer"):
        classifier.score(back, static_vectors[te], tier="transformer")


def test_reference_set_score_ranks_ham_above_spam(sms, static_vectors):
    from sklearn.metrics import roc_auc_score

    from quality.classifier import reference_score

    _, y, tr, te = sms
    good = tr[y[tr] == 1][:500]  # only good examples: no spam is shown
    s = reference_score(static_vectors[te], static_vectors[good], k=10)
    assert s.shape == (len(te),) and np.all(s <= 1.0 + 1e-5)
    assert roc_auc_score(y[te], s) > 0.6  # a weak signal on SMS (see benchmarks/quality.py), but a signal
    sims = static_vectors[te[:50]] @ static_vectors[good].T
    brute = np.sort(sims, axis=1)[:, -3:].mean(axis=1)
    np.testing.assert_allclose(
        reference_score(static_vectors[te[:50]], static_vectors[good], k=3, block=7), brute, atol=1e-5
    )


def test_cascade_rescores_only_uncertain_records_with_the_transformer(sms):
    from quality import classifier
    from quality.cascade import RESCORED_KEY, score_table
    from quality.embed import embed_texts

    texts, y, tr, te = sms
    rng = np.random.default_rng(0)
    seeds = np.r_[
        rng.choice(tr[y[tr] == 0], 60, replace=False), rng.choice(tr[y[tr] == 1], 60, replace=False)
    ]
    cfg = EmbedConfig(embedder="cascade", device="cpu", cascade_uncertainty=0.3)
    xs = embed_texts([texts[i] for i in seeds], cfg)
    xt = embed_texts([texts[i] for i in seeds], cfg.model_copy(update={"embedder": "transformer"}))
    model = classifier.train(xs, y[seeds], embed=cfg, x_transformer=xt)
    assert set(model.heads) == {"static", "transformer"}
    test = te[:100]
    batch = pa.table({C.ID: [f"sms-{i}" for i in test], C.TEXT: [texts[i] for i in test]})
    out = score_table(batch, model)
    q_static, u_static = classifier.score(model, embed_texts(batch[C.TEXT], cfg))
    redo = u_static >= 0.3
    assert 0 < redo.sum() < len(test), "the sample should hold both confident and uncertain records"
    assert int(out.schema.metadata[RESCORED_KEY]) == int(redo.sum())
    q = np.array(out[C.QUALITY].to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(q[~redo], q_static[~redo], atol=1e-6)
    if redo.any():
        xt_test = embed_texts(
            [texts[i] for i in test[redo]], cfg.model_copy(update={"embedder": "transformer"})
        )
        np.testing.assert_allclose(
            q[redo], classifier.score(model, xt_test, tier="transformer")[0], atol=1e-5
        )


def test_cli_train_then_score(sms, tmp_path):
    from typer.testing import CliRunner

    from quality.cli import app

    texts, y, _, te = sms
    runner = CliRunner()
    res = runner.invoke(
        app,
        ["train", "--labels", str(SMS), "--text-field", "SMS", "--label-field", "Label", "--positive", "ham",
         "--out", str(tmp_path / "model"), "--embedder", "static", "--device", "cpu"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert '"holdout_auc"' in res.output
    inp = tmp_path / "in.parquet"
    pq.write_table(pa.table({"id": [f"r{i}" for i in te], "text": [texts[i] for i in te]}), inp)
    out = tmp_path / "scores.parquet"
    res = runner.invoke(app, ["score", str(inp), "--model", str(tmp_path / "model"), "--out", str(out)])
    assert res.exit_code == 0, res.output
    table = pq.read_table(out)
    assert table.column_names == [C.ID, C.QUALITY, C.UNCERTAINTY] and table.num_rows == len(te)
    q = np.array(table[C.QUALITY].to_pylist())
    assert q[y[te] == 1].mean() > q[y[te] == 0].mean() + 0.5
    bad = runner.invoke(
        app,
        [
            "train",
            "--labels",
            str(SMS),
            "--text-field",
            "SMS",
            "--label-field",
            "Label",
            "--out",
            str(tmp_path / "x"),
        ],
    )
    assert bad.exit_code != 0 and "--positive" in bad.output

"""Routing on real data: uncertainty from a real classifier's probabilities, diversity over real embeddings,
queue rules over real records, labelling configs."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from labeling import config_xml, queues, route
from schemas import columns as C
from schemas.labeling import TASK_KINDS, LabelingConfig, QueueConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SMS = DATA / "sms_spam" / "SMSSpamCollection"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")


@pytest.fixture(scope="module")
def sms():
    """Texts, ham/spam labels, static embeddings and a classifier's P(ham) on 2,000 held-out SMS."""
    from sklearn.linear_model import LogisticRegression

    from quality.embed import embed_texts
    from schemas.embed import EmbedConfig

    rows = [ln.split("\t", 1) for ln in SMS.read_text(encoding="utf-8").splitlines()[1:]]
    texts = [r[1] for r in rows]
    y = np.array([r[0] == "ham" for r in rows], dtype=int)
    x = embed_texts(texts, EmbedConfig(embedder="static", device="cpu"))
    train, test = np.arange(0, 150), np.arange(150, 2150)  # a weak model: few labels, real mistakes
    model = LogisticRegression(max_iter=2000).fit(x[train], y[train])
    proba = model.predict_proba(x[test])
    return [texts[i] for i in test], y[test], x[test], proba


def test_uncertainty_methods_rank_real_predictions(sms) -> None:
    _, y, _, proba = sms
    lc, margin, ent = (route.uncertainty(proba, m) for m in ("least_confidence", "margin", "entropy"))
    for u in (lc, margin, ent):
        assert u.min() >= 0 and u.max() <= 1
    # binary: all three order records by closeness to 0.5
    assert (np.argsort(lc, kind="stable") == np.argsort(margin, kind="stable")).mean() > 0.99
    assert np.corrcoef(np.argsort(np.argsort(lc)), np.argsort(np.argsort(ent)))[0, 1] > 0.99
    wrong = proba.argmax(axis=1) != y
    assert wrong.any()
    # the model is unsure where it is wrong
    assert lc[wrong].mean() > 2 * lc[~wrong].mean()
    with pytest.raises(ValueError, match="k >= 2"):
        route.uncertainty(proba[:, :1])


def test_uncertainty_on_ten_classes_of_real_images() -> None:
    from labeling.learner import fit_predict_proba, load

    ds = load(DATA / "cifar10_sample", "label")
    order = np.random.default_rng(0).permutation(len(ds.y))
    train, test = order[:400], order[400:]
    p = fit_predict_proba(ds.kind, ds.x[train], ds.y[train], ds.x[test], len(ds.classes))
    lc, margin, ent = (route.uncertainty(p, m) for m in ("least_confidence", "margin", "entropy"))
    assert not np.allclose(lc, margin)  # with 10 classes the methods differ
    wrong = p.argmax(axis=1) != ds.y[test]
    for u in (lc, margin, ent):
        assert u.min() >= 0 and u.max() <= 1
        assert u[wrong].mean() > u[~wrong].mean()
    flat = np.full((3, 10), 0.1)
    for m in ("least_confidence", "margin", "entropy"):
        assert route.uncertainty(flat, m) == pytest.approx(1.0)


def test_selection_is_uncertain_and_diverse_within_budget(sms) -> None:
    _, _, x, proba = sms
    u = route.uncertainty(proba)
    budget = 20
    picks = route.select(len(u), budget, "uncertainty", u, x, pool_factor=5, seed=0)
    assert len(picks) == budget and len(set(picks.tolist())) == budget
    pool = np.argsort(-u, kind="stable")[: budget * 5]
    assert set(picks.tolist()) <= set(pool.tolist())
    naive = pool[:budget]

    def mean_cos(ix: np.ndarray) -> float:
        v = x[ix]
        s = v @ v.T
        return float((s.sum() - np.trace(s)) / (len(ix) * (len(ix) - 1)))

    assert mean_cos(picks) < mean_cos(naive)  # the batch is not many copies of one kind
    # diversity alone covers the data better than the most uncertain alone
    div = route.select(len(u), budget, "diversity", None, x, seed=0)
    assert mean_cos(div) < mean_cos(naive)
    rnd = route.select(len(u), budget, "random", u, x, seed=0)
    assert len(set(rnd.tolist())) == budget
    assert len(route.select(5, budget, "uncertainty", u[:5], x[:5])) == 5


def test_route_stage_uses_whichever_scorer_ran(sms) -> None:
    texts, _, x, proba = sms
    base = pl.DataFrame({C.ID: [f"r{i}" for i in range(len(texts))], C.MODALITY: "text", C.TEXT: texts})
    cfg = LabelingConfig(budget=15)
    # no scorer: diversity alone, no uncertainty invented
    out = route.route(base, cfg, x)
    assert out.height == base.height and C.UNCERTAINTY not in out.columns
    assert out[C.LABEL_RANK].drop_nulls().sort().to_list() == list(range(1, 16))
    # a quality score (P(keep)): uncertainty computed from it, picks among the uncertain
    scored = base.with_columns(pl.Series(C.QUALITY, proba[:, 1]))
    out = route.route(scored, cfg, x)
    assert C.UNCERTAINTY in out.columns
    chosen = out.filter(pl.col(C.LABEL_RANK).is_not_null())
    assert chosen[C.UNCERTAINTY].min() >= out[C.UNCERTAINTY].quantile(0.9)


def test_queue_rules_route_by_modality_and_field(sms) -> None:
    texts, y, _, _ = sms
    meta = [json.dumps({"kind": "ham" if v else "spam"}) for v in y]
    frame = pl.DataFrame(
        {
            C.ID: [f"r{i}" for i in range(len(texts))] + ["img-1"],
            C.MODALITY: ["text"] * len(texts) + ["image"],
            C.TEXT: texts + [None],
            C.META: meta + [None],
        }
    )
    rules = [
        QueueConfig(name="spam", modality="text", field="meta.kind", values=["spam"]),
        QueueConfig(name="text", modality="text"),
        QueueConfig(name="image", task="caption_check", modality="image"),
    ]
    out = queues.assign(frame, rules)
    counts = dict(out.group_by(C.QUEUE).len().iter_rows())
    assert counts == {"spam": int((y == 0).sum()), "text": int((y == 1).sum()), "image": 1}
    with pytest.raises(ValueError, match="meta.<key>"):
        queues.assign(frame, [QueueConfig(name="x", field="nosuch")])
    with pytest.raises(ValueError, match="configured: spam, text, image"):
        queues.by_name(rules, "nope")


def test_label_configs_are_valid_xml_with_one_label_control() -> None:
    for kind in TASK_KINDS:
        choices = ["cat", "dog"] if kind == "image_classification" else []
        q = QueueConfig(
            name=kind, task=kind, choices=choices, categories=["a"] if kind.startswith("text") else []
        )
        root = ET.fromstring(config_xml.label_config(q))
        labels = [c for c in root.iter("Choices") if c.get("name") == config_xml.LABEL_CONTROL]
        assert len(labels) == 1
        assert [c.get("value") for c in labels[0]] == config_xml.choices_of(q)
        targets = {e.get("name") for e in root if e.get("value", "").startswith("$")}
        assert labels[0].get("toName") in targets
        result = [config_xml.choice_result(q, config_xml.choices_of(q)[0])]
        if kind in ("caption_check", "record_review"):
            result.append(config_xml.text_result(q, "a dog on a sofa"))
        parsed = config_xml.parse_result(result)
        assert parsed[config_xml.LABEL_CONTROL] == config_xml.choices_of(q)[0]
    with pytest.raises(ValueError, match="needs its classes"):
        config_xml.label_config(QueueConfig(name="img", task="image_classification"))
    with pytest.raises(ValueError, match="extra"):
        LabelingConfig.model_validate({"budgett": 3})

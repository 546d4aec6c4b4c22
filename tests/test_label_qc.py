"""Labelling quality control without a server: consensus (ties, held annotators, CROWDLAB), gold from
the data, the gold file format, the Wilson interval of an audit, and the bootstrap suggestions, on real
SMS messages (../shared/data/sms_spam) and simulated annotators of stated accuracies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from labeling import consensus, pull, push, suggest
from pipeline.workspace import Workspace
from schemas import columns as C
from schemas.labeling import LabelingConfig, QueueConfig

SMS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sms_spam" / "SMSSpamCollection"


def sms(n: int) -> tuple[list[str], np.ndarray]:
    if not SMS.exists():
        pytest.skip(f"real data set {SMS} is absent")
    rows = [ln.split("\t", 1) for ln in SMS.read_text(encoding="utf-8").splitlines()[1 : n + 1]]
    return [t for _, t in rows], np.array([1 if lab == "ham" else 0 for lab, _ in rows])


def votes(y: np.ndarray, accs: list[float], per_item: int, n_gold: int, seed: int) -> pl.DataFrame:
    """Annotations of simulated annotators (one-coin) on items r0.. (the first n_gold are gold)."""
    rng = np.random.default_rng(seed)
    cls = ["drop", "keep"]
    rows = []
    for i, t in enumerate(y):
        who = range(len(accs)) if i < n_gold else rng.choice(len(accs), per_item, replace=False)
        for j in who:
            a = t if rng.random() < accs[j] else 1 - t
            rows.append({C.ID: f"r{i}", C.QUEUE: "q", C.ANNOTATOR: f"a{j}", C.LABEL_VALUE: cls[a],
                         C.CATEGORY: None, C.CORRECTION: None, C.IS_GOLD: i < n_gold,
                         C.GOLD_LABEL: cls[t] if i < n_gold else None, "updated_at": None})  # fmt: skip
    return pl.DataFrame(rows, schema_overrides={C.CATEGORY: pl.String, C.CORRECTION: pl.String,
                                                "updated_at": pl.Datetime("us", "UTC")})  # fmt: skip


def accuracy(labels: pl.DataFrame, y: np.ndarray, n_gold: int) -> float:
    got = dict(labels.select(C.ID, C.LABEL_VALUE).iter_rows())
    cls = ["drop", "keep"]
    return float(np.mean([got.get(f"r{i}") == cls[y[i]] for i in range(n_gold, len(y))]))


def test_held_annotators_do_not_count_and_crowdlab_uses_the_classifier() -> None:
    texts, y = sms(800)
    accs = [0.95, 0.8, 0.3]  # the third one answers wrong more often than not
    ann = votes(y, accs, 2, 20, seed=1)
    cfg = LabelingConfig(min_gold_answers=10, min_gold_accuracy=0.6)
    tables = pull.labels_tables(ann, cfg)
    held = tables["annotators"].filter(pl.col("held"))[C.ANNOTATOR].to_list()
    assert held == ["a2"]
    with_held = consensus.consensus(ann, "weighted", min_confidence=0.6)
    assert accuracy(tables["labels"], y, 20) > accuracy(with_held, y, 20)
    # records answered only by the held annotator get no label
    lone = ann.filter(pl.col(C.ANNOTATOR) == "a2").head(3).with_columns(pl.format("lone{}", C.ID).alias(C.ID))
    lab = pull.labels_tables(pl.concat([ann, lone]), cfg)["labels"].filter(
        pl.col(C.ID).str.starts_with("lone")
    )
    assert lab.height == 3 and lab[C.LABEL_VALUE].null_count() == 3
    assert set(lab["label_status"]) == {"held_only"}

    # CROWDLAB with a real classifier's out-of-fold probabilities beats a plain majority vote
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_predict

    x = TfidfVectorizer(sublinear_tf=True, min_df=2).fit_transform(texts)
    p = cross_val_predict(LogisticRegression(max_iter=2000, C=4.0), x, y, cv=5, method="predict_proba")
    probs = {f"r{i}": {"drop": float(a), "keep": float(b)} for i, (a, b) in enumerate(p)}
    crowd = consensus.consensus(ann, "crowdlab", pred_probs=probs)
    majority = ann.group_by(C.ID).agg(pl.col(C.LABEL_VALUE).mode().sort().first())
    assert accuracy(crowd, y, 20) > accuracy(majority, y, 20) + 0.03
    assert crowd[C.LABEL_CONFIDENCE].is_between(0, 1).all()


def test_ties_and_min_confidence_give_no_label() -> None:
    rows = [("r1", "a", "keep"), ("r1", "b", "drop"), ("r2", "a", "keep"), ("r2", "b", "keep"),
            ("r3", "a", "keep"), ("r3", "b", "keep"), ("r3", "c", "drop")]  # fmt: skip
    ann = pl.DataFrame(
        [{C.ID: i, C.QUEUE: "q", C.ANNOTATOR: w, C.LABEL_VALUE: v, C.CATEGORY: None, C.CORRECTION: None,
          C.IS_GOLD: False, C.GOLD_LABEL: None, "updated_at": None} for i, w, v in rows],
        schema_overrides={C.CATEGORY: pl.String, C.CORRECTION: pl.String, C.GOLD_LABEL: pl.String,
                          "updated_at": pl.Datetime("us", "UTC")},
    )  # fmt: skip
    for method in ("weighted", "dawid_skene", "crowdlab"):
        lab = {r[C.ID]: r for r in consensus.consensus(ann, method, min_confidence=0.0).to_dicts()}
        assert lab["r2"][C.LABEL_VALUE] == "keep", method
        if method != "dawid_skene":  # (EM learns that b dissents more, and may break a 1-1 tie)
            assert lab["r1"][C.LABEL_VALUE] is None and lab["r1"]["label_status"] == "tie", method
    loose = {r[C.ID]: r for r in consensus.consensus(ann, "weighted", min_confidence=0.5).to_dicts()}
    strict = {r[C.ID]: r for r in consensus.consensus(ann, "weighted", min_confidence=0.9).to_dicts()}
    assert loose["r3"][C.LABEL_VALUE] == "keep" and 0.5 < loose["r3"][C.LABEL_CONFIDENCE] < 0.9
    assert strict["r3"][C.LABEL_VALUE] is None and strict["r3"]["label_status"] == "low_agreement"
    # gold from data: records gold_agree trusted annotators labelled alike, without dissent
    two = pull.labels_tables(ann, LabelingConfig(gold_agree=2))["gold_from_data"]
    three = pull.labels_tables(ann, LabelingConfig(gold_agree=3))["gold_from_data"]
    assert two[C.ID].to_list() == ["r2"] and three.height == 0


def test_wilson_interval_matches_known_values() -> None:
    lo, hi = pull.wilson(np.array([4, 0, 45]), np.array([4, 10, 50]))
    assert lo == pytest.approx([0.5101, 0.0, 0.7864], abs=1e-4)
    assert hi == pytest.approx([1.0, 0.2775, 0.9565], abs=1e-4)


def write_ingest(ws: Path, texts: list[str]) -> list[str]:
    from schemas.record import RECORD_SCHEMA

    ids = [f"s{i}" for i in range(len(texts))]
    n = len(ids)
    cols = {f.name: [None] * n for f in RECORD_SCHEMA}
    cols |= {C.ID: ids, C.SOURCE: ["sms"] * n, C.MODALITY: [C.TEXT_MODALITY] * n, C.TEXT: texts,
             C.SOURCE_FILE: [str(SMS)] * n, C.SOURCE_ROW: list(range(1, n + 1))}  # fmt: skip
    (ws / "ingest").mkdir(parents=True)
    pq.write_table(pa.table(cols, schema=RECORD_SCHEMA), ws / "ingest" / "sms.parquet")
    return ids


def test_gold_file_by_text_and_clear_errors(tmp_path: Path) -> None:
    texts, y = sms(50)
    ids = write_ingest(tmp_path / "ws", texts)
    ws = Workspace(tmp_path / "ws")
    g = tmp_path / "gold.csv"
    pl.DataFrame({"text": [f"  {texts[3]} ", texts[7], "not in the data"], "label": ["keep", "drop", "keep"]}
                 ).write_csv(g)  # fmt: skip
    cfg = LabelingConfig.model_validate({"gold": str(g)})
    gold = push.read_gold(ws, cfg)
    assert dict(gold.iter_rows()) == {ids[3]: "keep", ids[7]: "drop"}
    (tmp_path / "bad.csv").write_text("id,answer\ns1,keep\n")
    with pytest.raises(ValueError, match=r"bad\.csv needs a 'label' column"):
        push.read_gold(ws, LabelingConfig(gold_path=str(tmp_path / "bad.csv")))
    (tmp_path / "gap.csv").write_text("id,label\ns1,keep\ns2,\n")
    with pytest.raises(ValueError, match=r"gap\.csv: line 3 has no 'label'"):
        push.read_gold(ws, LabelingConfig(gold_path=str(tmp_path / "gap.csv")))


def test_bootstrap_suggestions_rules_then_knn(tmp_path: Path) -> None:
    texts, y = sms(300)
    ids = [f"s{i}" for i in range(len(texts))]
    spammy = np.array(["call" in t.lower() or "free" in t.lower() or "txt" in t.lower() for t in texts])
    pool = pl.DataFrame({C.ID: ids, C.TEXT: texts,
                         C.RULE_REASON: [("spam_words" if s else None) for s in spammy]})  # fmt: skip
    q = QueueConfig(name="t")
    want = ids[:40]
    weak = suggest.suggest(pool, want, q, LabelingConfig())
    assert set(weak["model_version"]) == {"curate-weak-rules"} and weak[C.PREDICTION].null_count() == 0
    rules_only = suggest.suggest(pool.with_columns(pl.lit(None, pl.String).alias(C.RULE_REASON)), want, q,
                                 LabelingConfig())  # fmt: skip
    assert set(rules_only["model_version"]) == {"curate-rules"}
    assert set(suggest.suggest(pool.drop(C.RULE_REASON), want, q, LabelingConfig())["model_version"]) == {
        "curate-prior"}  # fmt: skip
    labels = pl.DataFrame({C.ID: ids[100:300], C.LABEL_VALUE: ["keep" if v else "drop" for v in y[100:300]]})
    k1 = suggest.suggest(pool, want, q, LabelingConfig(knn_k=1), labels)
    k7 = suggest.suggest(pool, want, q, LabelingConfig(knn_k=7), labels)
    assert set(k7["model_version"]) == {"curate-knn-200"}
    truth = np.array(["keep" if v else "drop" for v in y[:40]])
    assert (k7[C.PREDICTION].to_numpy() == truth).mean() > 0.85  # labelled neighbours know spam
    assert set(k1[C.PREDICTION_SCORE].to_list()) == {1.0} and k7[C.PREDICTION_SCORE].min() < 1.0


def test_dedup_audit_pairs_name_their_stage_and_show_both_sides() -> None:
    from labeling import config_xml

    assert push.audit_stage("exact_dup", "text") == "exact"
    assert push.audit_stage("semantic_dup", "text") == "semantic"
    assert [push.audit_stage("near_dup", m) for m in ("text", "image", "record")] == [
        "near",
        "image",
        "record",
    ]
    assert push.audit_stage(None, "text") is None
    cifar = SMS.parents[1] / "cifar10_sample"
    if not cifar.exists():
        pytest.skip(f"real data set {cifar} is absent")
    img = next(p for p in sorted(cifar.rglob("*")) if p.suffix in (".jpg", ".png")).read_bytes()
    row = {C.ID: "copy", C.MODALITY: C.IMAGE_MODALITY, "dedup_stage": "image", C.PREDICTION: "same",
           C.PREDICTION_SCORE: 0.8, "model_version": "curate-dedup-verdict"}  # fmt: skip
    kept = {C.ID: "keeper", C.MODALITY: C.TEXT_MODALITY, C.TEXT: "<b>not html</b>"}
    t = push.task_of(row, push.AUDIT_CONFIG, img, kept, None)
    assert t["data"]["b"].startswith('<img src="data:image/') and t["data"]["kept_id"] == "keeper"
    assert "&lt;b&gt;not html&lt;/b&gt;" in t["data"]["a"]  # text is escaped, never rendered as HTML
    (pred,) = t["predictions"]
    assert pred["model_version"] == "curate-dedup-verdict" and pred["result"][0]["value"]["choices"] == [
        "same"
    ]
    assert 'name="label" toName="a"' in config_xml.label_config(push.AUDIT_CONFIG)

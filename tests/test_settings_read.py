"""Every documented setting is read: a field of the curate.toml model that no code reads is a defect."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from pydantic import BaseModel

from schemas.config import CurateConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))
CODE = [p for d in ("pipeline", "quality", "labeling", "flows") for p in (ROOT / d).rglob("*.py")]


def settings(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, field name) of every field of the config model, nested sections included."""
    out = []
    for name, field in model.model_fields.items():
        out.append((prefix + name, name))
        ann = field.annotation
        for t in (ann, *getattr(ann, "__args__", ())):
            if isinstance(t, type) and issubclass(t, BaseModel):
                out += settings(t, f"{prefix}{name}.")
    return out


def test_every_setting_is_read_by_some_code() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in CODE)
    schemas = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "schemas").glob("*.py"))
    unread = [
        key
        for key, name in settings(CurateConfig)
        # attribute access (cfg.near.threshold), or the name in a model_dump include set / getattr;
        # a setting read through its model (a preset's validator, a method such as for_embedder)
        if not re.search(rf"\.{name}\b|[\"']{name}[\"']", text)
        and not re.search(rf"\.get\([\"']{name}[\"']\)|self\.{name}\b", schemas)
    ]
    assert not unread, f"settings that no code reads: {unread}"


# --- the settings that used to do nothing, each checked by what it changes ---------------------------

import json  # noqa: E402

import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402

from schemas import columns as C  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
SMS = DATA / "sms_spam" / "SMSSpamCollection"


def _sms_rows() -> list[tuple[str, str]]:
    if not SMS.exists():
        pytest.skip(f"real data set {SMS} is absent")
    return [tuple(ln.split("\t", 1)) for ln in SMS.read_text(encoding="utf-8").splitlines()[1:] if "\t" in ln]


def _sms_run(tmp_path: Path, rows: list[tuple[str, str]], **sections: dict) -> CurateConfig:
    """A config over SMS rows written as TSV (`Label`, `SMS`), read as short texts with their label."""
    path = tmp_path / "sms.tsv"
    path.write_text("Label\tSMS\n" + "".join(f"{lab}\t{t}\n" for lab, t in rows), encoding="utf-8")
    src = {
        "path": str(path),
        "modality": "text",
        "text_field": "SMS",
        "id_field": None,
        "label_field": "Label",
    }
    base = {
        "workspace": str(tmp_path / "ws"),
        "sources": [src],
        "rules": {"text": {"preset": "short"}},
        "stages": {"near": False, "pii": False, "semantic": False},
    }
    return CurateConfig.model_validate(base | sections)


def _core(cfg: CurateConfig):  # noqa: ANN202
    from test_decisions import run_core

    return run_core(cfg)


def test_reference_set_scores_every_text_and_k_matters(tmp_path: Path) -> None:
    rows = _sms_rows()
    ref = tmp_path / "good.jsonl"
    ref.write_text("".join(json.dumps({"text": t}) + "\n" for lab, t in rows[:1500] if lab == "ham"))
    cfg = _sms_run(tmp_path, rows[1500:2300], quality={"reference": str(ref), "reference_k": 10})
    ws, _, _ = _core(cfg)
    from pipeline.catalog import connect

    con = connect(ws.root)
    by_label = {
        k: v
        for k, *v in con.execute(
            "SELECT json_extract_string(meta, '$.Label'), avg(reference_score), count(reference_score), "
            "count(*) FROM records GROUP BY 1"
        ).fetchall()
    }
    assert by_label["ham"][1] == by_label["ham"][2] and by_label["spam"][1] == by_label["spam"][2]
    from sklearn.metrics import roc_auc_score

    lab, score = zip(
        *con.execute(
            "SELECT json_extract_string(meta, '$.Label') = 'ham', reference_score FROM records"
        ).fetchall(),
        strict=True,
    )
    auc = roc_auc_score(lab, score)
    assert auc > 0.6, auc  # a weak signal on SMS (as in test_classifier), but ham sits closer
    k10 = con.execute("SELECT id, reference_score FROM records ORDER BY id").fetchall()
    cfg.quality.reference_k = 1
    ws, _, _ = _core(cfg)
    k1 = connect(ws.root).execute("SELECT id, reference_score FROM records ORDER BY id").fetchall()
    assert [i for i, _ in k1] == [i for i, _ in k10]
    assert all(a >= b - 1e-6 for (_, a), (_, b) in zip(k1, k10, strict=True))  # the nearest one is the max
    assert any(a > b + 1e-4 for (_, a), (_, b) in zip(k1, k10, strict=True))


def test_keep_above_and_label_uncertainty_bound_what_goes_to_humans(tmp_path: Path) -> None:
    from labeling.push import RECORD_KEY, push
    from quality import classifier
    from quality.embed import embed_texts
    from schemas.embed import EmbedConfig
    from schemas.labeling import LabelingConfig

    rows = _sms_rows()
    train = rows[:1200]
    x = embed_texts([t for _, t in train], EmbedConfig())
    y = np.array([lab == "ham" for lab, _ in train], int)
    classifier.save(classifier.train(x, y, embed=EmbedConfig(), positive="ham"), tmp_path / "model")
    cfg = _sms_run(tmp_path, rows[1200:2400], quality={"model_dir": str(tmp_path / "model")})
    ws, decisions, _ = _core(cfg)
    from pipeline.catalog import connect

    scores = pl.from_arrow(
        connect(ws.root).sql("SELECT id, quality, uncertainty, reason FROM records").to_arrow_table()
    )
    band = cfg.quality.model_copy(update={"drop_below": 0.2, "keep_above": 0.9, "label_uncertainty": 0.3})
    result = push(ws.root, LabelingConfig(budget=1000, gold_rate=0), server=None, band=band)
    tasks = json.loads(Path(result.queues[0].file).read_text(encoding="utf-8"))  # the import file
    pushed = pl.DataFrame({C.ID: [t["data"][RECORD_KEY] for t in tasks]}).join(scores, on=C.ID)
    dups = [C.REASON_EXACT_DUP, C.REASON_NEAR_DUP, C.REASON_SEMANTIC_DUP]
    in_band = scores.filter(  # duplicates never go to humans: their keeper does
        (pl.col(C.QUALITY) >= 0.2)
        & (pl.col(C.QUALITY) < 0.9)
        & (pl.col(C.UNCERTAINTY) >= 0.3)
        & ~pl.col(C.REASON).is_in(dups).fill_null(False)
    )
    assert 0 < pushed.height == in_band.height < scores.height  # exactly the unsure band, nothing else
    assert set(pushed[C.ID]) == set(in_band[C.ID])


def test_image_model_scores_caption_alignment_in_the_shards(tmp_path: Path) -> None:
    from test_embed import _tiny_clip

    coco = DATA / "coco_mini"
    if not coco.exists():
        pytest.skip(f"real data set {coco} is absent")
    cfg = CurateConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "sources": [
                {
                    "path": str(coco / "val2017"),
                    "captions": str(coco / "annotations" / "captions_val2017.json"),
                }
            ],
            "embed": {"image_model": str(_tiny_clip(tmp_path / "tiny-clip")), "device": "cpu"},
            "stages": {"near": False, "lang": False, "pii": False, "semantic": False},
        }
    )
    ws, _, manifest = _core(cfg)
    from pipeline.catalog import connect

    con = connect(ws.root)
    n, scored = con.execute("SELECT count(*), count(caption_alignment) FROM records").fetchone()
    assert (
        n > 0 and scored == con.execute("SELECT count(*) FROM records WHERE text IS NOT NULL").fetchone()[0]
    )
    assert con.execute("SELECT count(caption_alignment) FROM shards").fetchone()[0] > 0
    assert con.execute("SELECT count(*) FROM image_embeddings").fetchone()[0] == n


def test_decontaminate_against_and_text_field_change_what_is_dropped(tmp_path: Path) -> None:
    """[decontaminate]: `against` turns the gate on, `text_field` picks the eval files' text (ngram and
    near_threshold: tests/test_decontaminate.py::test_gate_settings_change_what_is_dropped)."""
    rows = _sms_rows()[:300]
    ev = tmp_path / "eval.jsonl"
    items = [json.dumps({"id": f"e{i}", "body": t}) + "\n" for i, (_, t) in enumerate(rows[:20])]
    ev.write_text("".join(items))
    on = {"against": [str(ev)], "text_field": "body"}
    _, decisions, _ = _core(_sms_run(tmp_path, rows, decontaminate=on))
    dropped = decisions.filter(pl.col(C.REASON) == C.REASON_CONTAMINATED).height
    assert dropped >= 20  # the 20 eval items (and any exact copies of them in the 300)
    with pytest.raises(Exception, match="no text in field 'nothing'"):  # the eval file has no such field
        _core(_sms_run(tmp_path, rows, decontaminate={**on, "text_field": "nothing"}))
    _, decisions, _ = _core(_sms_run(tmp_path, rows))
    assert decisions.filter(pl.col(C.REASON) == C.REASON_CONTAMINATED).height == 0

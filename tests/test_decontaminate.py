"""The decontamination gate on real SMS: every planted evaluation item (exact and lightly edited) is caught,
at most 1 % of the other records are dropped, and each drop points at its evaluation item.

How the pool is made (seed 0): 1,000 SMS are the evaluation set; the other 4,574 are the pool. 100 evaluation
items of >= 5 words are planted as exact copies and 100 with one light edit (two typos, a word dropped or
inserted, case, a `Fwd:` prefix, two words swapped). SMS holds many natural near-copies (templated spam,
"Sorry, I'll call later"): a pool record whose difflib ratio to an evaluation item is >= 0.8 is a real
near-duplicate and counts neither way; every other dropped record is a false drop."""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from schemas import columns as C

ROOT = Path(__file__).resolve().parents[1]
SMS = ROOT.parent / "shared" / "data" / "sms_spam" / "SMSSpamCollection"


def _sms() -> list[str]:
    if not SMS.exists():
        pytest.skip(f"real data set {SMS} is absent")
    return [ln.split("\t", 1)[1] for ln in SMS.read_text(encoding="utf-8").splitlines()[1:] if "\t" in ln]


def _planted(tmp: Path, seed: int = 0) -> dict:
    from labeling.experiment import light_edit

    texts = _sms()
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(texts))
    ev, pool = [texts[i] for i in perm[:1000]], [texts[i] for i in perm[1000:]]
    long_ = [i for i, t in enumerate(ev) if len(t.split()) >= 5]
    pick = rng.choice(long_, 200, replace=False)
    planted = [ev[i] for i in pick[:100]] + [light_edit(ev[i], rng) for i in pick[100:]]
    (tmp / "eval.jsonl").write_text(
        "".join(json.dumps({"id": f"e{i}", "text": t}) + "\n" for i, t in enumerate(ev))
    )
    rows = [{"id": f"p{i}", "text": t} for i, t in enumerate(pool)]
    rows += [
        {"id": f"x{j}", "text": t, "from": f"e{i}"}
        for j, (t, i) in enumerate(zip(planted, pick, strict=True))
    ]
    (tmp / "pool.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"eval": ev, "pool": pool, "planted": planted, "pick": pick}


def test_gate_catches_planted_eval_items_with_at_most_1pct_false_drops(tmp_path: Path) -> None:
    from pipeline.catalog import connect
    from pipeline.decontaminate import char_matrix
    from pipeline.steps import run_local
    from schemas.config import CurateConfig

    made = _planted(tmp_path)
    cfg = CurateConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "sources": [{"path": str(tmp_path / "pool.jsonl"), "name": "pool", "modality": "text"}],
            "rules": {"text": {"preset": "short"}},
            "stages": {"near": False, "lang": False, "pii": False, "embed": False},
            "decontaminate": {"against": [str(tmp_path / "eval.jsonl")]},
        }
    )
    run_local(cfg)
    con = connect(tmp_path / "ws")
    got = pl.from_arrow(
        con.sql("SELECT id, decision, reason, contaminated_by, contamination FROM records").to_arrow_table()
    )
    assert isinstance(got, pl.DataFrame)
    planted = got.filter(pl.col(C.ID).str.starts_with("pool/x")).sort(C.ID)
    # every planted item caught, dropped as contaminated, pointing at an evaluation item with its text
    assert planted.height == 200 and (planted[C.REASON] == C.REASON_CONTAMINATED).all(), planted.filter(
        pl.col(C.REASON) != C.REASON_CONTAMINATED
    )
    ev = made["eval"]
    for row in planted.iter_rows(named=True):
        j = int(row[C.ID].removeprefix("pool/x"))
        item = int(row[C.CONTAMINATED_BY].split("#", 1)[1].removeprefix("e"))
        assert row[C.CONTAMINATED_BY].startswith("eval.jsonl#")
        # the item it came from, or another item it overlaps as much (templated spam shares long spans)
        text = made["planted"][j].lower()
        assert item == made["pick"][j] or difflib.SequenceMatcher(None, text, ev[item].lower()).ratio() >= 0.6
    # the rest: natural near-copies (difflib ratio >= 0.8 to an evaluation item) are not counted
    pool = made["pool"]
    sims = (char_matrix(pl.Series(pool)) @ char_matrix(pl.Series(ev)).T).tocoo()
    natural = np.zeros(len(pool), bool)
    for r, c in zip(sims.row[sims.data >= 0.3], sims.col[sims.data >= 0.3], strict=True):
        if not natural[r]:
            natural[r] = difflib.SequenceMatcher(None, pool[r].lower(), ev[c].lower()).ratio() >= 0.8
    rest = got.filter(pl.col(C.ID).str.starts_with("pool/p")).with_columns(
        pl.col(C.ID).str.strip_prefix("pool/p").cast(pl.Int64).alias("i")
    )
    dropped = rest[C.CONTAMINATED_BY].is_not_null().to_numpy()
    nat = natural[rest["i"].to_numpy()]
    false_rate = dropped[~nat].mean()
    print(f"planted caught 200/200; natural near-copies {nat.sum()} ({dropped[nat].mean():.0%} dropped); "
          f"false drops {dropped[~nat].sum()}/{(~nat).sum()} = {false_rate:.2%}")  # fmt: skip
    assert false_rate <= 0.01
    # nothing contaminated reaches the shards
    assert con.execute("SELECT count(*) FROM shards WHERE id LIKE 'pool/x%'").fetchone()[0] == 0


def test_gate_settings_change_what_is_dropped(tmp_path: Path) -> None:
    """ngram, near_threshold, text_field and against each change the output (tests/test_settings_read.py)."""
    from pipeline.decontaminate import build_index, match
    from schemas.config import DecontaminateConfig

    ev = [
        "The quarterly report shows revenue grew by twelve percent while costs fell in every region we serve",
        "Call me when you get home tonight",
    ]
    pool = [
        "Intro. the quarterly report shows revenue grew by twelve percent while costs fell in every region",
        "Call me when you get home tonite!",
        "Completely unrelated message about football scores",
    ]
    cfg = DecontaminateConfig(against=["x"])
    found = match(pool, build_index(["a", "b"], ev, cfg), cfg).to_pylist()
    assert [f[C.CONTAMINATION] for f in found] == ["ngram", "near", None]
    assert [f[C.CONTAMINATED_BY] for f in found] == ["a", "b", None]
    long_ngram = DecontaminateConfig(against=["x"], ngram=30)
    assert (
        match(pool, build_index(["a", "b"], ev, long_ngram), long_ngram).to_pylist()[0][C.CONTAMINATION]
        != "ngram"
    )
    strict = DecontaminateConfig(against=["x"], near_threshold=0.99)
    assert match(pool, build_index(["a", "b"], ev, strict), strict).to_pylist()[1][C.CONTAMINATED_BY] is None

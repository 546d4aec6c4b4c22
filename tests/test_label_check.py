"""`curate label check` / `label review` on labels that came with the data, on real SMS spam.

Made label errors: 10 % of the SMS labels inverted at random (seeded); the check must find >= 80 % of them
at >= 80 % precision through a real workspace (real flow, real embeddings, real cleanlab)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from schemas import columns as C

ROOT = Path(__file__).resolve().parents[1]
SMS = ROOT.parent / "shared" / "data" / "sms_spam" / "SMSSpamCollection"
CURATE = str(Path(sys.executable).parent / "curate")
NOISE = 0.10


def curate(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([CURATE, *args], capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


@pytest.fixture(scope="module")
def flipped_ws(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A workspace over all 5,574 SMS with 10 % of the labels inverted, and the truth file."""
    if not SMS.exists():
        pytest.skip(f"real data set {SMS} is absent")
    from pipeline.steps import run_local
    from schemas.config import CurateConfig

    tmp = tmp_path_factory.mktemp("labelcheck")
    rows = [ln.split("\t", 1) for ln in SMS.read_text(encoding="utf-8").splitlines()[1:] if "\t" in ln]
    rng = np.random.default_rng(0)
    flip = rng.random(len(rows)) < NOISE
    other = {"ham": "spam", "spam": "ham"}
    with (tmp / "sms.jsonl").open("w") as f, (tmp / "truth.jsonl").open("w") as g:
        for i, ((lab, text), fl) in enumerate(zip(rows, flip, strict=True)):
            f.write(json.dumps({"id": f"m{i}", "text": text, "label": other[lab] if fl else lab}) + "\n")
            g.write(json.dumps({"id": f"m{i}", "label": lab}) + "\n")
    cfg = CurateConfig.model_validate(
        {
            "workspace": str(tmp / "ws"),
            "sources": [{"path": str(tmp / "sms.jsonl"), "name": "sms", "modality": "text"}],
            "rules": {"text": {"preset": "short"}},
            "stages": {"pii": False},
        }
    )
    run_local(cfg)
    flipped = {f"sms/m{i}" for i in np.flatnonzero(flip)}
    return {"ws": tmp / "ws", "truth": tmp / "truth.jsonl", "flipped": flipped, "n": len(rows)}


def test_label_check_finds_flipped_sms_labels(flipped_ws: dict) -> None:
    out = curate("label", "check", "-w", str(flipped_ws["ws"]), "--label-field", "label", "--scope", "all")
    assert "likely label errors" in out.stdout
    from pipeline.catalog import connect

    con = connect(flipped_ws["ws"])
    rows = con.execute(
        "SELECT id, label_issue, p_wrong, suggested_label FROM label_issues WHERE label_field = 'label'"
    ).fetchall()
    assert len(rows) == flipped_ws["n"]  # every labelled record checked once
    found = {r[0] for r in rows if r[1]}
    hits = len(found & flipped_ws["flipped"])
    recall, precision = hits / len(flipped_ws["flipped"]), hits / len(found)
    print(f"SMS, {NOISE:.0%} of labels inverted: recall {recall:.3f}, precision {precision:.3f}")
    assert recall >= 0.8 and precision >= 0.8, (recall, precision)
    # the likeliest errors come first and are mostly real
    top = con.execute(
        "SELECT id FROM label_issues WHERE label_field = 'label' AND label_issue "
        "ORDER BY p_wrong DESC LIMIT 100"
    ).fetchall()
    assert sum(r[0] in flipped_ws["flipped"] for r in top) >= 90


def test_duplicate_copies_vote_before_training(tmp_path: Path) -> None:
    """Three exact copies labelled spam, spam, ham: the kept one trains as spam whatever its own label."""
    from labeling.label_errors import check_workspace
    from pipeline.steps import run_local
    from schemas.config import CurateConfig

    if not SMS.exists():
        pytest.skip(f"real data set {SMS} is absent")
    rows = [ln.split("\t", 1) for ln in SMS.read_text(encoding="utf-8").splitlines()[1:400] if "\t" in ln]
    seen, lines = set(), []
    for i, (lab, text) in enumerate(rows):
        if text.strip().lower() not in seen:
            seen.add(text.strip().lower())
            lines.append({"id": f"r{i:04d}", "text": text, "label": lab})
    copy = "URGENT! Your mobile number has won a 2000 pound prize. Call 09061234567 to claim now"
    lines += [{"id": "a0", "text": copy, "label": "ham"}, {"id": "a1", "text": copy, "label": "spam"},
              {"id": "a2", "text": copy, "label": "spam"}]  # fmt: skip
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    cfg = CurateConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "sources": [{"path": str(tmp_path / "d.jsonl"), "name": "d", "modality": "text"}],
            "rules": {"text": {"preset": "short"}},
            "stages": {"pii": False, "lang": False},
        }
    )
    run_local(cfg)
    r = check_workspace(tmp_path / "ws", "label")
    group = r.frame.filter(pl.col(C.ID).is_in(["d/a0", "d/a1", "d/a2"]))
    assert group.height == 3 and set(group[C.VOTED_LABEL]) == {"spam"}
    assert group.filter(pl.col(C.ID) == "d/a0")[C.LABEL_ISSUE].item()  # the lone ham copy is the suspect
    labels = pl.read_parquet(tmp_path / "ws" / "data_labels.parquet")
    assert labels.filter(pl.col(C.ID) == "d/a0").row(0, named=True) == {
        C.ID: "d/a0", C.LABEL_VALUE: "spam", C.LABEL_SOURCE: "vote"
    }  # fmt: skip
    from pipeline.publish import publish
    from pipeline.workspace import Workspace

    publish(Workspace(tmp_path / "ws"), cfg)
    from pipeline.catalog import connect

    kept = connect(tmp_path / "ws").execute("SELECT label FROM shards WHERE id = 'd/a0'").fetchall()
    assert kept == [("spam",)]  # a0 is the group's keeper (smallest id) and trains with the vote


def test_label_review_spends_the_budget_on_the_likeliest_errors(flipped_ws: dict) -> None:
    ws = str(flipped_ws["ws"])
    out = curate("label", "review", "-w", ws, "--label-field", "label", "--truth", str(flipped_ws["truth"]),
                 "--noise", "0", "--budget", "150")  # fmt: skip
    assert "labels spent: 150" in out.stdout, out.stdout
    from pipeline.catalog import connect

    con = connect(ws)
    reviewed = con.execute("SELECT id, label FROM shards WHERE label_source = 'review'").fetchall()
    assert len(reviewed) == 150
    truth = {
        json.loads(x)["id"]: json.loads(x)["label"]
        for x in Path(flipped_ws["truth"]).read_text().split("\n")
        if x
    }
    assert all(label == truth[i.split("/", 1)[1]] for i, label in reviewed)  # noise 0: the answers are right
    fixed = sum(i in flipped_ws["flipped"] for i, _ in reviewed)
    assert fixed >= 135  # >= 90 % of the labels spent fixed an error
    assert con.execute("SELECT count(*) FROM shards WHERE label IS NULL").fetchone()[0] == 0
    # a second review asks nothing twice
    again = curate("label", "review", "-w", ws, "--label-field", "label", "--truth", str(flipped_ws["truth"]),
                   "--budget", "10", "--no-publish")  # fmt: skip
    assert "(150 reviewed before)" in again.stdout and "labels spent: 10" in again.stdout


def test_label_review_without_truth_goes_to_a_review_queue(flipped_ws: dict, tmp_path: Path) -> None:
    import shutil

    ws = tmp_path / "ws"
    shutil.copytree(flipped_ws["ws"], ws)
    out = curate("label", "review", "-w", str(ws), "--label-field", "label", "--budget", "20")
    assert "text-review" in out.stdout, out.stdout
    tasks = json.loads((ws / "labelstudio" / "import" / "text-review.json").read_text())
    assert len(tasks) > 0

"""benchmarks/data_value.py --quick (an SMS subset, one seed) as the test suite runs it, and the notebook
that draws its curves (notebooks/03_data_value.ipynb, executed with nbclient)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SMS = ROOT.parent / "shared" / "data" / "sms_spam" / "SMSSpamCollection"
KEYS = ("acc_raw", "acc_curated", "macro_f1_raw", "macro_f1_curated", "examples_raw", "examples_curated",
        "examples_to_match", "labels_used", "factor_examples_per_seed", "factor_labels_per_seed")  # fmt: skip


@pytest.fixture(scope="module")
def quick(tmp_path_factory: pytest.TempPathFactory) -> dict:
    if not SMS.exists():
        pytest.skip(f"real data set {SMS} is absent")
    out = tmp_path_factory.mktemp("data_value")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "data_value.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"out": out, "result": json.loads(proc.stdout.strip().splitlines()[-1]), "stdout": proc.stdout}


def test_quick_benchmark_reports_every_figure(quick: dict) -> None:
    r = quick["result"]
    for k in KEYS:
        assert k in r, k
    assert 0 < r["macro_f1_raw"] <= 1 and 0 < r["macro_f1_curated"] <= 1
    assert len(r["factor_examples_per_seed"]) == 1  # one seed in the quick form
    sms = r["datasets"]["sms_spam"]
    # the decontamination gate removed every planted test item before any arm trained
    assert sms["leaks_caught"] == sms["leaks_planted"] and sms["leaks_planted"][0] > 0
    # curation removed records (duplicates, junk, leaks) and label review fixed labels: the curated arms
    # train on fewer examples, and the reviewed one scores at least as well as raw on macro-F1
    assert r["examples_curated"] < r["examples_raw"]
    f1 = sms["models"]["embed"]["macro_f1"]
    assert f1["review"] >= f1["raw"]
    assert set(sms["models"]) == {"embed", "tfidf"}
    curves = (quick["out"] / "curves.csv").read_text().splitlines()
    arms = {line.split(",")[2] for line in curves[1:]}
    assert arms == {"raw", "curated", "review", "active"}
    assert (quick["out"] / "curves.png").stat().st_size > 10_000


def test_notebook_draws_the_curves(quick: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    path = ROOT / "notebooks" / "03_data_value.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit it without outputs"
    monkeypatch.setenv("DATA_VALUE_OUT", str(quick["out"]))
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()  # fmt: skip
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert "image/png" in text and str(quick["out"]) in text and "x_fewer_examples" in text


def test_curate_eval_on_a_labelled_file(tmp_path: Path) -> None:
    """`curate eval` on 600 real SMS with stated flips: every arm, the factors, the plot."""
    if not SMS.exists():
        pytest.skip(f"real data set {SMS} is absent")
    lines = SMS.read_text(encoding="utf-8").splitlines()[:601]
    (tmp_path / "sms.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    curate = str(Path(sys.executable).parent / "curate")
    env = {**os.environ, "COLUMNS": "200"}
    args = ["--label-field", "Label", "--flip", "ham=0.05,spam=0.3", "--leaks", "0.05", "--seeds", "1",
            "--budget", "40", "--models", "embed", "--out", str(tmp_path / "ev")]  # fmt: skip
    proc = subprocess.run([curate, "eval", str(tmp_path / "sms.tsv"), *args], capture_output=True, text=True,
                          timeout=900, env=env)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-3000:]
    assert "raw final macro-F1" in proc.stdout and "review" in proc.stdout and "active" in proc.stdout
    summary = json.loads((tmp_path / "ev" / "summary.json").read_text())
    stats = summary["seeds"][0]["stats"]
    assert stats["leaks_caught"] == stats["leaks_planted"] > 0 and stats["review_asked"] > 0
    assert (tmp_path / "ev" / "curves.png").exists()
    bad = subprocess.run([curate, "eval", str(tmp_path / "sms.tsv"), "--label-field", "nope"],
                         capture_output=True, text=True, env=env)  # fmt: skip
    assert bad.returncode == 1 and "no column 'nope'" in bad.stderr + bad.stdout

"""`curate eval`: does curating this labelled data pay? Raw vs curated vs curated + label review vs curated +
active learning, learning curves and the factor of examples / labels (kernel: labeling/experiment.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli import app, fail, out


def _flips(spec: str) -> dict[str, float]:
    """`ham=0.2,spam=0.3` -> {"ham": 0.2, "spam": 0.3}."""
    found: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, sep, value = part.partition("=")
        try:
            found[name.strip()] = float(value)
        except ValueError:
            fail(f"--flip {spec!r}: expected class=rate pairs such as ham=0.2,spam=0.3")
        if not sep or not 0 <= found[name.strip()] < 1:
            fail(f"--flip {spec!r}: each rate must be in [0, 1)")
    return found


@app.command("eval")
def eval_cmd(
    input: Annotated[Path, typer.Argument(help="Labelled table: TSV, CSV, JSONL or Parquet.")],
    label_field: Annotated[str, typer.Option("--label-field", help="Column holding the label.")] = "label",
    text_field: Annotated[
        str | None, typer.Option("--text-field", help="Text column (default: the longest text one).")
    ] = None,
    test: Annotated[
        Path | None,
        typer.Option(help="Held-out test file (same columns); default: a stratified --test-size split."),
    ] = None,
    test_size: Annotated[float, typer.Option(help="Share held out for testing when no --test.")] = 0.25,
    truth: Annotated[
        str | None,
        typer.Option(
            help="Column of the input holding true labels (what the simulated annotator answers and the test "
            "split is scored on); default: the labels themselves."
        ),
    ] = None,
    budget: Annotated[int, typer.Option(help="Labels for review and for active learning.")] = 300,
    noise: Annotated[float, typer.Option(help="Error rate of the simulated annotator.")] = 0.05,
    flip: Annotated[
        str,
        typer.Option(
            help="Stated corruption: flip these shares of each class's labels, e.g. ham=0.2,spam=0.3 "
            "(default: none; the data's own errors)."
        ),
    ] = "",
    junk: Annotated[
        float, typer.Option(help="Stated corruption: junk lines added, share of the pool.")
    ] = 0.0,
    dups: Annotated[
        float,
        typer.Option(help="Stated corruption: share of the pool copied (heavy-tailed) with wrong labels."),
    ] = 0.0,
    leaks: Annotated[
        float, typer.Option(help="Test items planted in the pool (the decontamination gate removes them).")
    ] = 0.0,
    seeds: Annotated[int, typer.Option(help="Seeds (splits, corruptions, annotator); medians reported.")] = 3,
    models: Annotated[str, typer.Option(help="Downstream models: embed (default embeddings), tfidf.")] = (
        "embed,tfidf"
    ),
    out_dir: Annotated[
        Path, typer.Option("--out", help="Folder for curves.csv, summary.json and curves.png.")
    ] = Path("eval"),
) -> None:
    """Train the same models on raw data and on curated data (the real flow, then label review within a
    budget, then active learning) and report learning curves and how many times fewer examples / labels
    each curated arm needs to reach the raw model's final score."""
    import numpy as np
    import polars as pl

    from labeling.experiment import MODELS, Corruption, Settings, plot, run_seed, summarise
    from labeling.learner import _read_table

    if not input.exists():
        fail(f"{input}: no such file")
    if not 0 < test_size < 1:
        fail("--test-size must be in (0, 1)")
    if not 0 <= noise < 1:
        fail("--noise must be in [0, 1)")
    chosen = tuple(m.strip() for m in models.split(",") if m.strip())
    if not chosen or any(m not in MODELS for m in chosen):
        fail(f"--models {models!r}: choose from {', '.join(MODELS)}")

    def read(path: Path) -> tuple[list[str], list[str], list[str]]:
        t = _read_table(path, label_field)
        for col in (label_field, truth):
            if col and col not in t.columns:
                fail(f"{path}: no column {col!r}; columns: {', '.join(t.columns)}")
        field = text_field
        if field is None:
            cands = [c for c in t.columns if c not in (label_field, truth) and t[c].dtype == pl.String]
            if not cands:
                fail(f"{path}: no text column besides {label_field!r}; pass --text-field")
            field = max(cands, key=lambda c: t[c].str.len_chars().mean() or 0)
        elif field not in t.columns:
            fail(f"{path}: no column {field!r}; columns: {', '.join(t.columns)}")
        t = t.filter(pl.col(label_field).is_not_null())
        lab = t[label_field].cast(pl.String).to_list()
        return (
            t[field].fill_null("").cast(pl.String).to_list(),
            lab,
            (t[truth].cast(pl.String).to_list() if truth else lab),
        )

    texts, labels, true = read(input)
    test_idx = None
    if test is not None:
        tt, tl, ttrue = read(test)
        test_idx = np.arange(len(texts), len(texts) + len(tt))
        texts, labels, true = texts + tt, labels + tl, true + ttrue
    settings = Settings(
        name=input.stem,
        test_size=test_size,
        budget=budget,
        noise=noise,
        models=chosen,
        corruption=Corruption(flip=_flips(flip), dup_sources=dups, junk=junk, leaks=leaks),
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    per_seed = []
    for seed in range(seeds):
        per_seed.append(
            run_seed(
                texts,
                labels,
                settings,
                seed,
                out_dir / "work" / f"seed{seed}",
                log=out.print,
                true_labels=true,
                test_idx=test_idx,
            )  # fmt: skip
        )
    rows = [r for s in per_seed for r in s["rows"]]
    pl.DataFrame(rows).write_csv(out_dir / "curves.csv")
    summary = summarise(per_seed, settings)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
    png = plot(rows, out_dir / "curves.png")
    for s in summary["seeds"]:
        for model in chosen:
            f = s["factors"][model]["macro_f1"]
            falls = " (raw's curve falls: more raw data made it worse)" if f.get("raw_falls") else ""
            out.print(f"seed {s['seed']} {model}: raw final macro-F1 {f['target']:.3f} with "
                      f"{f['raw_examples']} examples{falls}")  # fmt: skip
            for arm, a in f.get("arms", {}).items():
                reach = (
                    f"reaches it with {a['examples']} examples / {a['labels']} labels: "
                    f"{a['factor_examples']:.1f}x / {a['factor_labels']:.1f}x fewer"
                    if a.get("examples")
                    else "never reaches it"
                )
                peak = (
                    f"; to stay at raw's best ({f['raw_peak']:.3f} at {f['raw_peak_examples']}): "
                    f"{a['factor_examples_vs_peak']:.1f}x fewer examples"
                    if f.get("raw_falls") and a.get("factor_examples_vs_peak")
                    else ""
                )
                out.print(f"  {arm:8s} final {a['final']:.3f}; {reach}{peak}")
    out.print(f"curves: {out_dir / 'curves.csv'}, plot: {png}, summary: {out_dir / 'summary.json'}")

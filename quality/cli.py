"""`curate quality train|score` and `curate models distill`: classifier and static model from the shell."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(
    help="Embedding quality classifier: train on labelled seeds, score records.", no_args_is_help=True
)
models_app = typer.Typer(help="Local embedding models (static tier).", no_args_is_help=True)

FORMATS = ("auto", "tsv", "csv", "jsonl", "parquet")


def _format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    if path.is_dir():
        return "parquet"
    name = path.name.lower().removesuffix(".gz")
    for ext, f in (
        (".parquet", "parquet"),
        (".jsonl", "jsonl"),
        (".json", "jsonl"),
        (".csv", "csv"),
        (".tsv", "tsv"),
    ):
        if name.endswith(ext):
            return f
    with path.open("rb") as fh:  # no known extension: sniff the first line
        head = fh.readline()
    return "tsv" if b"\t" in head else "csv"


def read_rows(path: Path, fmt: str = "auto", columns: list[str] | None = None, optional: bool = False) -> Any:
    """A polars DataFrame from a TSV/CSV/JSONL/Parquet file, or a folder of Parquet parts.

    Only `columns` are kept; a missing one is an error naming the columns there, unless `optional`.
    """
    import polars as pl

    if not path.exists():
        raise typer.BadParameter(f"{path}: no such file or folder")
    f = _format(path, fmt)
    if f == "parquet":
        lazy = pl.scan_parquet(str(path / "*.parquet") if path.is_dir() else str(path))
        have = lazy.collect_schema().names()
        if columns:
            missing = [c for c in columns if c not in have]
            if missing and not optional:
                raise typer.BadParameter(f"{path}: no column {missing[0]!r}; columns are {', '.join(have)}")
            lazy = lazy.select([c for c in columns if c in have])
        return lazy.collect()
    if f == "jsonl":
        df = pl.read_ndjson(path)
    else:
        sep = "\t" if f == "tsv" else ","
        df = pl.read_csv(path, separator=sep, quote_char=None if f == "tsv" else '"', infer_schema=False)
    if columns:
        missing = [c for c in columns if c not in df.columns]
        if missing and not optional:
            raise typer.BadParameter(f"{path}: no column {missing[0]!r}; columns are {', '.join(df.columns)}")
        df = df.select([c for c in columns if c in df.columns])
    return df


def _embed_cfg(embedder: str, model: str | None, device: str, batch_size: int, static_dir: str | None) -> Any:
    from schemas.embed import EmbedConfig

    return EmbedConfig(
        embedder=embedder, model=model, device=device, batch_size=batch_size, static_dir=static_dir
    )


def _positive_label(values: list[str], positive: str | None) -> str:
    distinct = sorted(set(values))
    if positive is not None:
        if positive not in distinct:
            raise typer.BadParameter(
                f"--positive {positive!r} is not a label; labels are {', '.join(distinct)}"
            )
        return positive
    if set(distinct) <= {"0", "1"}:
        return "1"
    raise typer.BadParameter(f"say which label is good with --positive (labels: {', '.join(distinct[:10])})")


@app.command("train")
def train_cmd(
    labels: Annotated[Path, typer.Option("--labels", help="labelled seeds: TSV, CSV, JSONL or Parquet")],
    out: Annotated[Path, typer.Option("--out", help="model dir to write")],
    text_field: Annotated[str, typer.Option("--text-field", help="column holding the text")] = "text",
    label_field: Annotated[str, typer.Option("--label-field", help="column holding the label")] = "label",
    positive: Annotated[
        str | None, typer.Option(help="label value meaning good (default 1 for 0/1 labels)")
    ] = None,
    embedder: Annotated[
        str, typer.Option(help="static | transformer | cascade (cascade trains both heads)")
    ] = "static",
    model: Annotated[
        str | None, typer.Option(help="sentence-transformers model name or path (default MiniLM)")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    batch_size: Annotated[int, typer.Option(help="transformer batch size")] = 128,
    static_dir: Annotated[str | None, typer.Option(help="folder of distilled static models")] = None,
    holdout: Annotated[
        float, typer.Option(min=0.0, max=0.9, help="fraction held out to report AUC/accuracy")
    ] = 0.2,
    fmt: Annotated[str, typer.Option("--format", help="auto | tsv | csv | jsonl | parquet")] = "auto",
    seed: Annotated[int, typer.Option(help="random seed of the split and the classifier")] = 0,
) -> None:
    """Train a calibrated logistic-regression quality classifier on embeddings of labelled texts."""
    import numpy as np

    from quality import classifier
    from quality.embed import embed_texts, encode_transformer

    df = read_rows(labels, fmt, [text_field, label_field]).drop_nulls()
    texts = [str(t) for t in df[text_field].to_list()]
    raw = [str(v) for v in df[label_field].to_list()]
    pos = _positive_label(raw, positive)
    y = np.array([v == pos for v in raw], dtype=int)
    cfg = _embed_cfg(embedder, model, device, batch_size, static_dir)
    x = embed_texts(texts, cfg)
    xt = (
        encode_transformer(texts, cfg.model_copy(update={"embedder": "transformer"}))
        if embedder == "cascade"
        else None
    )
    metrics: dict[str, float] = {}
    if holdout > 0:
        from sklearn.metrics import accuracy_score, roc_auc_score
        from sklearn.model_selection import train_test_split

        idx_tr, idx_te = train_test_split(np.arange(len(y)), test_size=holdout, stratify=y, random_state=seed)
        m = classifier.train(
            x[idx_tr], y[idx_tr], embed=cfg, x_transformer=None if xt is None else xt[idx_tr], seed=seed
        )
        from quality.cascade import score_texts

        q, _, _ = score_texts(m, [texts[i] for i in idx_te], cfg, x[idx_te])
        metrics = {
            "holdout_auc": float(roc_auc_score(y[idx_te], q)),
            "holdout_accuracy": float(accuracy_score(y[idx_te], q >= 0.5)),
            "holdout_n": int(len(idx_te)),
        }
    final = classifier.train(x, y, embed=cfg, x_transformer=xt, positive=pos, seed=seed)
    final.meta.update(metrics, source=str(labels), text_field=text_field, label_field=label_field)
    classifier.save(final, out)
    typer.echo(json.dumps({"model_dir": str(out), "n": int(len(y)), "positive": pos, **metrics}))


@app.command("score")
def score_cmd(
    input: Annotated[Path, typer.Argument(help="records: Parquet file or folder of parts, JSONL, CSV, TSV")],
    model_dir: Annotated[Path, typer.Option("--model", help="model dir from `curate quality train`")],
    out: Annotated[Path, typer.Option("--out", help="Parquet file to write (id, quality, uncertainty)")],
    text_field: Annotated[str, typer.Option("--text-field", help="column holding the text")] = "text",
    id_field: Annotated[
        str, typer.Option("--id-field", help="column holding the id (row number if absent)")
    ] = "id",
    device: Annotated[str, typer.Option(help="auto, cpu, cuda, ...")] = "auto",
    batch_size: Annotated[int, typer.Option(help="transformer batch size")] = 128,
    static_dir: Annotated[str | None, typer.Option(help="folder of distilled static models")] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto | tsv | csv | jsonl | parquet")] = "auto",
) -> None:
    """Write `id`, `quality` (P(good)) and `uncertainty` (1 - |2p - 1|) for every record of INPUT."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.parquet as pq

    from quality import classifier
    from quality.cascade import score_table
    from schemas import columns as C

    model = classifier.load(model_dir)
    df = read_rows(input, fmt, [id_field, text_field], optional=True)
    if text_field not in df.columns:
        raise typer.BadParameter(f"{input}: no column {text_field!r}; name the text column with --text-field")
    ids = (
        df[id_field].cast(pl.String).to_arrow()
        if id_field in df.columns
        else pa.array([str(i) for i in range(df.height)], pa.string())
    )
    batch = pa.table({C.ID: ids, C.TEXT: df[text_field].cast(pl.String).to_arrow()})
    runtime = model.embed_config.model_copy(
        update={"device": device, "batch_size": batch_size, "static_dir": static_dir}
    )
    table = score_table(batch, model, runtime)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, out)
    rescored = int(table.schema.metadata.get(b"curate.rescored", b"0"))
    typer.echo(json.dumps({"out": str(out), "rows": table.num_rows, "rescored_by_transformer": rescored}))


@models_app.command("distill")
def distill_cmd(
    model: Annotated[
        str | None, typer.Option(help="source sentence-transformers model (default MiniLM)")
    ] = None,
    dims: Annotated[int, typer.Option(help="PCA dimensions of the static model")] = 256,
    static_dir: Annotated[
        str | None, typer.Option("--dir", help="where to keep it (default ~/.cache)")
    ] = None,
    force: Annotated[bool, typer.Option(help="distil again even if the cache has it")] = False,
) -> None:
    """Distil the static (model2vec) tier from a transformer once, into the local cache keyed by the model."""
    from quality.static_embed import distill
    from schemas.embed import EmbedConfig

    path = distill(EmbedConfig(model=model, static_dims=dims, static_dir=static_dir), force=force)
    typer.echo(str(path))

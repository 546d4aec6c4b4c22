"""The classifier the labelling loop retrains on human labels, and how a labelled data set is loaded.

Text: logistic regression on static sentence embeddings (quality.embed: model2vec distilled from the
packaged MiniLM), or on TF-IDF with `features="tfidf"` or when that tier is unavailable. Images:
standardised hand-made features (colour, gradients, thumbnail) -> PCA -> logistic regression.
Both give class probabilities for uncertainty routing.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from labeling.features import dense, image_matrix, text_matrix


@dataclass
class Dataset:
    """Features and known labels of a labelled data set (`dense_x` is for k-means)."""

    ids: list[str]
    x: Any
    dense_x: np.ndarray
    y: np.ndarray
    classes: list[str]
    kind: str  # "text" or "image"
    features: str = ""  # static, transformer, tfidf or image


def classifier(kind: str, seed: int = 0) -> Any:
    """An unfitted scikit-learn classifier suited to the features of `kind`."""
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "text":
        return LogisticRegression(C=2.0, max_iter=2000, class_weight="balanced", random_state=seed)
    return make_pipeline(
        StandardScaler(),
        PCA(n_components=0.95, random_state=seed),
        LogisticRegression(C=0.05, max_iter=2000, random_state=seed),
    )


def fit_predict_proba(kind: str, x_train: Any, y_train: np.ndarray, x_eval: Any, k: int, seed: int = 0
                      ) -> np.ndarray:  # fmt: skip
    """n_eval x k class probabilities of a classifier trained on (x_train, y_train); flat if untrainable."""
    present = np.unique(y_train)
    n = x_eval.shape[0]
    out = np.full((n, k), 1.0 / k)
    if len(present) < 2:
        if len(present) == 1:  # one class seen: predict it, with low confidence
            out[:, present[0]] += 0.5 / k
            out /= out.sum(axis=1, keepdims=True)
        return out
    if kind != "text" and len(y_train) < 10:
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
    else:
        model = classifier(kind, seed)
    model.fit(x_train, y_train)
    p = model.predict_proba(x_eval)
    out[:] = 0.0
    out[:, model.classes_] = p
    return out


def _read_table(path: Path, label_field: str) -> pl.DataFrame:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return pl.read_parquet(path)
    if suffix in (".jsonl", ".ndjson"):
        return pl.read_ndjson(path)
    head = path.open(encoding="utf-8", errors="replace").readline()
    sep = "\t" if (suffix == ".tsv" or ("\t" in head and suffix != ".csv")) else ","
    text = path.read_text(encoding="utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(text), delimiter=sep, quoting=csv.QUOTE_NONE if sep == "\t" else 0))
    header, body = rows[0], [r for r in rows[1:] if len(r) == len(rows[0])]
    return pl.DataFrame({h: [r[i] for r in body] for i, h in enumerate(header)})


def embedding_tier_available() -> bool:
    """True when the embedding stage (quality.embed and model2vec) is installed."""
    import importlib.util

    try:
        return all(importlib.util.find_spec(m) is not None for m in ("quality.embed", "model2vec"))
    except ModuleNotFoundError:  # no `quality` package (or something else shadows it)
        return False


def text_features(texts: list[str], features: str = "auto", seed: int = 0) -> tuple[Any, np.ndarray, str]:
    """(classifier features, dense features for k-means, name of the features used) of texts."""
    if features == "auto":
        features = "static" if embedding_tier_available() else "tfidf"
    if features in ("static", "transformer"):
        from quality.embed import embed_texts
        from schemas.embed import EmbedConfig

        v = embed_texts(texts, EmbedConfig(embedder=features))  # type: ignore[arg-type]
        return v, v, features
    if features != "tfidf":
        raise ValueError(f"unknown text features {features!r}: auto, static, transformer or tfidf")
    x = text_matrix(texts)
    return x, dense(x, dims=64, seed=seed), "tfidf"


def load(path: str | Path, label_field: str, text_field: str | None = None, image_field: str = "path",
         features: str = "auto", seed: int = 0) -> Dataset:  # fmt: skip
    """A labelled data set: a table (TSV/CSV/JSONL/Parquet) with text, or a folder with labels.csv of images.

    `features` (text): auto = static embeddings when available else TF-IDF; static; transformer; tfidf.
    """
    p = Path(path)
    if p.is_dir():
        table = _read_table(p / "labels.csv", label_field)
        if image_field not in table.columns:
            raise ValueError(f"{p / 'labels.csv'} has no {image_field!r} column (image paths)")
        images = [(p / f).read_bytes() for f in table[image_field].to_list()]
        x = image_matrix(images)
        dx, kind, used = dense(x, dims=64, seed=seed), "image", "image"
    else:
        table = _read_table(p, label_field)
        if label_field not in table.columns:
            raise ValueError(f"{p} has no column {label_field!r}; columns: {', '.join(table.columns)}")
        if text_field is None:
            cands = [c for c in table.columns if c != label_field and table[c].dtype == pl.String]
            if not cands:
                raise ValueError(f"{p}: no text column besides {label_field!r}; pass --text-field")
            text_field = max(cands, key=lambda c: table[c].str.len_chars().mean() or 0)
        x, dx, used = text_features(table[text_field].to_list(), features, seed)
        kind = "text"
    if label_field not in table.columns:
        raise ValueError(f"{p}: no column {label_field!r}; columns: {', '.join(table.columns)}")
    labels = table[label_field].cast(pl.String).to_list()
    classes = sorted(set(labels))
    index = {c: i for i, c in enumerate(classes)}
    ids = (
        table["id"].cast(pl.String).to_list()
        if "id" in table.columns
        else [str(i) for i in range(len(labels))]
    )
    return Dataset(ids, x, dx, np.array([index[v] for v in labels]), classes, kind, used)

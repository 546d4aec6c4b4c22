"""Embedding cache keyed by `content_hash` and model: a vector is computed once, across runs and sources.

Layout (under `cache_dir`, normally `<ws>/embeddings`)::

    <cache_dir>/<model_key>/<digest>.parquet   content_hash, embedding (fixed-size list)

Each call writes the vectors it had to compute to one new immutable file named by the digest of its hashes;
the lookup is the union of the files' `content_hash` columns (read once per file per process).
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from quality.vectors import arrow_to_vectors, vector_type, vectors_to_arrow
from schemas import columns as C
from schemas.embed import EmbedConfig

EMBEDDED_KEY = b"curate.embedded"  # schema metadata of embed_table's output: vectors computed by this call
MODEL_KEY = b"curate.model"
_INDEX: dict[str, pl.DataFrame] = {}
_INDEX_LOCK = threading.Lock()


def model_key(cfg: EmbedConfig, image: bool = False) -> str:
    """Folder name of one vector space: embedder tier, model, long-text mode, length and stored dtype."""
    from quality.models import model_label

    if image:
        label, tier = str(cfg.image_model), "image"
    elif cfg.embedder in ("static", "cascade"):
        from quality.static_embed import static_key

        label, tier = static_key(cfg), "static"
    else:
        label, tier = model_label(cfg.model), "transformer"
    parts = f"{tier}|{label}|{cfg.long_text}|{cfg.max_length}|{cfg.dtype}"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(label.split("@")[0]).name or label)[:40]
    return f"{tier}-{slug}-{hashlib.blake2b(parts.encode(), digest_size=6).hexdigest()}"


def _series(arr: pa.Array | pa.ChunkedArray) -> pl.Series:
    s = pl.from_arrow(arr.cast(pa.large_string()) if arr.type != pa.large_string() else arr)
    assert isinstance(s, pl.Series)
    return s.alias("h").cast(pl.String)


def _index(folder: Path) -> pl.DataFrame:
    """content_hash -> (file, row) over the folder's cache files; files are immutable, so memoised."""
    frames = []
    for f in sorted(folder.glob("*.parquet")):
        key = str(f)
        with _INDEX_LOCK:
            df = _INDEX.get(key)
        if df is None:
            h = pq.read_table(f, columns=[C.CONTENT_HASH])[C.CONTENT_HASH]
            df = pl.DataFrame({"h": _series(h), "file": key}).with_row_index("r")
            with _INDEX_LOCK:
                _INDEX[key] = df
        frames.append(df)
    if not frames:
        return pl.DataFrame(schema={"r": pl.UInt32, "h": pl.String, "file": pl.String})
    return pl.concat(frames).unique("h", keep="first", maintain_order=True)


def cached_vectors(
    hashes: pa.Array | pa.ChunkedArray,
    compute: Callable[[np.ndarray], np.ndarray],
    folder: Path,
    dtype: str,
) -> tuple[pa.Array, int]:
    """Vectors for each hash (null for null hashes), computing with `compute(row_indices)` only unseen ones.

    Returns the fixed-size-list column aligned to `hashes` and how many vectors were computed.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows = pl.DataFrame({"h": _series(hashes)}).with_row_index("row")
    uniq = rows.drop_nulls("h").unique("h", keep="first", maintain_order=True)
    known = uniq.join(_index(folder), on="h", how="left")
    missing = known.filter(pl.col("file").is_null())
    pieces: list[tuple[pl.Series, np.ndarray]] = []
    computed = 0
    if missing.height:
        v = np.asarray(compute(missing["row"].to_numpy()), dtype=np.float32)
        computed = len(v)
        _write(folder, missing["h"], v, dtype)
        pieces.append((missing["h"], v))
    for (file,), grp in known.filter(pl.col("file").is_not_null()).group_by(["file"], maintain_order=True):
        col = pq.read_table(file, columns=[C.EMBEDDING])[C.EMBEDDING].take(pa.array(grp["r"].to_numpy()))
        pieces.append((grp["h"], arrow_to_vectors(col)[0]))
    if not pieces:  # nothing to embed: the model still gives the column its width
        empty = np.asarray(compute(np.zeros(0, np.int64)))
        dim = empty.shape[1] if empty.ndim == 2 else 0
        return pa.nulls(rows.height, vector_type(dim, dtype)), 0
    mat = np.concatenate([p[1] for p in pieces])
    pos = pl.DataFrame({"h": pl.concat([p[0] for p in pieces])}).with_row_index("u")
    take = rows.join(pos, on="h", how="left", maintain_order="left")["u"]
    fsl = vectors_to_arrow(mat, dtype)
    return fsl.take(
        pa.array(take.to_numpy(allow_copy=True) if take.null_count() == 0 else take.to_list(), pa.uint32())
    ), computed


def _write(folder: Path, hashes: pl.Series, v: np.ndarray, dtype: str) -> Path:
    digest = hashlib.blake2b("\n".join(hashes.to_list()).encode(), digest_size=12).hexdigest()
    dest = folder / f"{digest}.parquet"
    table = pa.table(
        {C.CONTENT_HASH: pa.array(hashes.to_list(), pa.string()), C.EMBEDDING: vectors_to_arrow(v, dtype)}
    )
    tmp = folder / f".{digest}.{uuid.uuid4().hex[:8]}.tmp"
    pq.write_table(table, tmp)
    os.replace(tmp, dest)
    return dest


def _hashes(batch: pa.Table) -> pa.ChunkedArray:
    if C.CONTENT_HASH in batch.column_names:
        return batch[C.CONTENT_HASH]
    import xxhash

    from pipeline.exact import normalise_text

    norm = normalise_text(pl.Series(batch[C.TEXT].to_pylist(), dtype=pl.String).fill_null("")).to_list()
    return pa.chunked_array([pa.array([xxhash.xxh3_128_hexdigest(t.encode()) if t else None for t in norm])])


def _text_rows(batch: pa.Table) -> pa.ChunkedArray:
    """What is embedded per row: the text; a record's JSON when it has no text; nothing for images."""
    text = (
        batch[C.TEXT]
        if C.TEXT in batch.column_names
        else pa.chunked_array([pa.nulls(batch.num_rows, pa.string())])
    )
    if C.DATA in batch.column_names:
        text = pc.coalesce(text, batch[C.DATA])
    if C.MODALITY in batch.column_names:
        is_img = pc.fill_null(pc.equal(batch[C.MODALITY], C.IMAGE_MODALITY), False)
        text = pc.if_else(is_img, pa.scalar(None, pa.string()), text)
    return text


def embed_table(
    batch: pa.Table, cfg: EmbedConfig | None = None, cache_dir: str | Path = "embeddings"
) -> pa.Table:
    """`id`, `content_hash`, `embedding` for text and record rows (null for images and empty content).

    Vectors are looked up in `cache_dir` by content_hash and model; only unseen content is embedded and
    added to the cache. The output's schema metadata `curate.embedded` says how many were computed.
    """
    from quality.embed import embed_texts

    cfg = cfg or EmbedConfig()
    key = model_key(cfg)
    text = _text_rows(batch)
    hashes = _hashes(batch)
    hashes = pc.if_else(pc.is_null(text), pa.scalar(None, pa.string()), hashes)

    def compute(rows: np.ndarray) -> np.ndarray:
        return embed_texts(text.take(pa.array(rows)), cfg)

    col, n = cached_vectors(hashes, compute, Path(cache_dir) / key, cfg.dtype)
    out = pa.table({C.ID: batch[C.ID], C.CONTENT_HASH: hashes, C.EMBEDDING: col})
    return out.replace_schema_metadata({EMBEDDED_KEY: str(n).encode(), MODEL_KEY: key.encode()})


def embed_image_table(batch: pa.Table, cfg: EmbedConfig, cache_dir: str | Path = "embeddings") -> pa.Table:
    """`id`, `content_hash`, `embedding`, `caption_alignment` for image rows with the configured image model.

    Non-image rows get nulls. Image vectors are cached like text ones (keyed by the image's content_hash);
    caption_alignment is the cosine of the image vector and its caption (`text`) in the same space.
    """
    from quality.embed import embed_captions, embed_images

    key = model_key(cfg, image=True)
    is_img = pc.fill_null(pc.equal(batch[C.MODALITY], C.IMAGE_MODALITY), False)
    hashes = pc.if_else(is_img, batch[C.CONTENT_HASH], pa.scalar(None, pa.string()))
    images = batch[C.IMAGE]

    def compute(rows: np.ndarray) -> np.ndarray:
        return embed_images(images.take(pa.array(rows)), cfg)

    col, n = cached_vectors(hashes, compute, Path(cache_dir) / key, cfg.dtype)
    align = pa.nulls(batch.num_rows, pa.float32())
    caps = pc.if_else(is_img, batch[C.TEXT], pa.scalar(None, pa.string()))
    has = np.asarray(pc.and_(pc.is_valid(caps), pc.is_valid(col)).to_numpy(zero_copy_only=False), dtype=bool)
    if has.any():
        rows = np.flatnonzero(has)
        vi, _ = arrow_to_vectors(col.take(pa.array(rows)))
        vt = embed_captions(caps.take(pa.array(rows)), cfg)
        vi = vi / np.maximum(np.linalg.norm(vi, axis=1, keepdims=True), 1e-12)
        sims = np.full(batch.num_rows, np.nan, np.float32)
        sims[rows] = np.einsum("ij,ij->i", vi, vt)
        align = pa.array(sims, pa.float32(), mask=~has)
    out = pa.table({C.ID: batch[C.ID], C.CONTENT_HASH: hashes, C.EMBEDDING: col, C.CAPTION_ALIGNMENT: align})
    return out.replace_schema_metadata({EMBEDDED_KEY: str(n).encode(), MODEL_KEY: key.encode()})

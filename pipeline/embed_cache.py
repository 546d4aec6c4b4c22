"""Embedding cache keyed by `content_hash` and model: a vector is computed once, across runs and sources.

Layout (under `cache_dir`, normally `<ws>/embeddings`)::

    <cache_dir>/<model_key>/<digest>.parquet   content_hash, embedding (fixed-size list, row groups of 256)

Each call that stores writes the vectors it had to compute to one new immutable file named by the digest of
its hashes. The lookup index is kept per folder and process and grows incrementally: each new file adds its
keys (the first 60 bits of each content hash, sorted, 16 bytes an entry) and nothing is re-read per call;
a hit reads only the row groups holding its rows, and the full hash is checked on read.

The embed stage stores each vector once: in the workspace's default cache folder it only looks vectors up
(`store=False`) and keeps the ones it computes in its own stage file; an explicit `[embed] cache_dir`
(shared by workspaces) is written as before.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
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
ROW_GROUP = 256  # rows per row group of a cache file (a hit decodes 256 vectors, not the file)
_INDEXES: dict[str, _Index] = {}
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


def _keys(hashes: pl.Series) -> np.ndarray:
    """int64 key of each hex content hash: its first 15 hex digits (60 bits)."""
    return hashes.str.slice(0, 15).str.to_integer(base=16, strict=False).fill_null(-1).to_numpy()


@dataclass
class _Index:
    """content-hash key -> (file, row) over the immutable cache files of one folder, sorted by key."""

    files: list[str] = field(default_factory=list)
    stats: dict[str, tuple[int, int]] = field(default_factory=dict)
    keys: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    fid: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    row: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    def add(self, path: Path) -> None:
        """Add one file's hashes (a key already present keeps its first file)."""
        st = path.stat()
        h = _series(pq.read_table(path, columns=[C.CONTENT_HASH])[C.CONTENT_HASH])
        k = _keys(h)
        rows = np.arange(len(k), dtype=np.int32)
        k, first = np.unique(k, return_index=True)
        rows = rows[first]
        pos = np.searchsorted(self.keys, k)
        known = np.zeros(len(k), bool)
        if len(self.keys):
            known = self.keys[np.minimum(pos, len(self.keys) - 1)] == k
        k, rows, pos = k[~known], rows[~known], pos[~known]
        self.keys = np.insert(self.keys, pos, k)
        self.fid = np.insert(self.fid, pos, np.full(len(k), len(self.files), np.int32))
        self.row = np.insert(self.row, pos, rows)
        self.files.append(str(path))
        self.stats[str(path)] = (st.st_mtime_ns, st.st_size)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(file index, row) of each key; file index -1 where the key is not indexed."""
        if len(self.keys) == 0:
            return np.full(len(keys), -1, np.int32), np.zeros(len(keys), np.int32)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        hit = self.keys[pos] == keys
        return np.where(hit, self.fid[pos], -1).astype(np.int32), self.row[pos]


def _index(folder: Path) -> _Index:
    """The folder's index, brought up to date: new files are added; a changed or vanished file (not done
    by curate: files are immutable) rebuilds it."""
    paths = sorted(folder.glob("*.parquet"))
    with _INDEX_LOCK:
        idx = _INDEXES.get(str(folder))
        if idx is None or any(
            not Path(f).exists() or (Path(f).stat().st_mtime_ns, Path(f).stat().st_size) != idx.stats[f]
            for f in idx.files
        ):
            idx = _INDEXES[str(folder)] = _Index()
        for p in paths:
            if str(p) not in idx.stats:
                idx.add(p)
        return idx


def _read_hits(
    idx: _Index, fids: np.ndarray, rows: np.ndarray, want: pl.Series
) -> tuple[np.ndarray, np.ndarray]:
    """Vectors of the given (file, row) entries, reading only their row groups; `ok[i]` is False where the
    stored hash is not `want[i]` (a 60-bit key collision: that vector is computed instead)."""
    n = len(fids)
    ok = np.zeros(n, bool)
    out: np.ndarray | None = None
    for f in np.unique(fids):
        sel = np.flatnonzero(fids == f)
        pf = pq.ParquetFile(idx.files[f])
        starts = np.cumsum([0] + [pf.metadata.row_group(g).num_rows for g in range(pf.num_row_groups)])
        groups = np.searchsorted(starts, rows[sel], side="right") - 1
        need = np.unique(groups)
        table = pf.read_row_groups(need.tolist(), columns=[C.CONTENT_HASH, C.EMBEDDING])
        base = np.cumsum(
            np.r_[0, [starts[g + 1] - starts[g] for g in need]]
        )  # where each group starts in table
        local = base[np.searchsorted(need, groups)] + rows[sel] - starts[groups]
        got = table.take(pa.array(local, pa.int64()))
        vecs, _ = arrow_to_vectors(got[C.EMBEDDING])
        if out is None:
            out = np.zeros((n, vecs.shape[1]), np.float32)
        out[sel] = vecs
        ok[sel] = np.asarray(got[C.CONTENT_HASH].to_pylist(), dtype=object) == want.gather(sel).to_numpy()
    return (out if out is not None else np.zeros((n, 0), np.float32)), ok


def cached_vectors(
    hashes: pa.Array | pa.ChunkedArray,
    compute: Callable[[np.ndarray], np.ndarray],
    folder: Path,
    dtype: str,
    store: bool = True,
) -> tuple[pa.Array, int]:
    """Vectors for each hash (null for null hashes), computing with `compute(row_indices)` only unseen ones
    (each distinct hash once); `store` writes the computed ones to the cache folder.

    Returns the fixed-size-list column aligned to `hashes` and how many vectors were computed.
    """
    rows = pl.DataFrame({"h": _series(hashes)}).with_row_index("row")
    uniq = rows.drop_nulls("h").unique("h", keep="first", maintain_order=True)
    hit = np.zeros(uniq.height, bool)
    mat: np.ndarray | None = None
    if folder.is_dir() and uniq.height:
        idx = _index(folder)
        fids, frows = idx.lookup(_keys(uniq["h"]))
        cand = np.flatnonzero(fids >= 0)
        if len(cand):
            vecs, ok = _read_hits(idx, fids[cand], frows[cand], uniq["h"].gather(cand))
            mat = np.zeros((uniq.height, vecs.shape[1]), np.float32)
            mat[cand[ok]] = vecs[ok]
            hit[cand[ok]] = True
    missing = np.flatnonzero(~hit)
    computed = 0
    if len(missing):
        v = np.asarray(compute(uniq["row"].to_numpy()[missing]), dtype=np.float32)
        computed = len(v)
        if store:
            folder.mkdir(parents=True, exist_ok=True)
            _write(folder, uniq["h"].gather(missing), v, dtype)
        if mat is None:
            mat = np.zeros((uniq.height, v.shape[1]), np.float32)
        mat[missing] = v
    if mat is None:  # nothing to embed: the model still gives the column its width
        empty = np.asarray(compute(np.zeros(0, np.int64)))
        dim = empty.shape[1] if empty.ndim == 2 else 0
        return pa.nulls(rows.height, vector_type(dim, dtype)), 0
    pos = uniq.select("h").with_row_index("u")
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
    pq.write_table(table, tmp, row_group_size=ROW_GROUP)
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
    batch: pa.Table,
    cfg: EmbedConfig | None = None,
    cache_dir: str | Path = "embeddings",
    store: bool = True,
) -> pa.Table:
    """`id`, `content_hash`, `embedding` for text and record rows (null for images and empty content).

    Vectors are looked up in `cache_dir` by content_hash and model; only unseen content is embedded (each
    distinct content once) and, with `store`, added to the cache (without: the caller keeps the only copy).
    The output's schema metadata `curate.embedded` says how many were computed.
    """
    from quality.embed import embed_texts

    cfg = cfg or EmbedConfig()
    key = model_key(cfg)
    text = _text_rows(batch)
    hashes = _hashes(batch)
    hashes = pc.if_else(pc.is_null(text), pa.scalar(None, pa.string()), hashes)

    def compute(rows: np.ndarray) -> np.ndarray:
        return embed_texts(text.take(pa.array(rows)), cfg)

    col, n = cached_vectors(hashes, compute, Path(cache_dir) / key, cfg.dtype, store)
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

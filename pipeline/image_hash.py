"""Near-duplicate images: perceptual hash (pHash) per image, Hamming-distance groups by multi-index hashing.

pHash as in imagehash.phash: grey scale, 32x32 Lanczos resize, 2-D DCT-II, the 8x8 lowest frequencies
against their median, 64 bits. Images within `image_hamming` bits are found without comparing all
pairs: the hash is cut into 4 chunks of 16 bits; two hashes within d bits agree within d // 4 bits on at
least one chunk (pigeonhole), so each chunk's near values are probed in a sorted index.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from scipy.fft import dct

from pipeline.lsh import components
from pipeline.near import Parts, _as_arrow, _like, keep_policy
from schemas import columns as C
from schemas.near import NEAR_CLUSTER_SCHEMA, NearConfig

HASH_SIZE = 8
SIDE = 32  # resize side (hash size x high-frequency factor 4)
CHUNKS = 4
CHUNK_BITS = 64 // CHUNKS

PHASH_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string(), nullable=False),
        pa.field(C.PHASH, pa.uint64()),
        pa.field(C.NEAR_LENGTH, pa.int64()),
    ]
)


def _pixels(blob: bytes | None, path: str | None) -> tuple[np.ndarray | None, int]:
    try:
        src = io.BytesIO(blob) if blob else (Path(path) if path else None)
        if src is None:
            return None, 0
        with Image.open(src) as im:
            size = im.width * im.height
            grey = im.convert("L").resize((SIDE, SIDE), Image.Resampling.LANCZOS)
            return np.asarray(grey, dtype=np.float64), size
    except (OSError, ValueError, Image.DecompressionBombError):
        return None, 0


def phash_pixels(pixels: np.ndarray) -> np.ndarray:
    """pHash (uint64, first bit most significant) of a stack of 32x32 grey images, shape (n, 32, 32)."""
    freq = dct(dct(pixels, axis=1), axis=2)[:, :HASH_SIZE, :HASH_SIZE].reshape(len(pixels), -1)
    bits = freq > np.median(freq, axis=1, keepdims=True)
    weights = np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)
    return (bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


def image_phash(batch: pa.Table | pl.DataFrame, cfg: NearConfig) -> pa.Table | pl.DataFrame:
    """Map step for images: `id`, `phash`, `near_length` (pixels) from the `image` bytes (or `image_path`).

    An image that cannot be decoded gets a null hash: it joins no cluster.
    """
    table = _as_arrow(batch)
    blobs = table.column(C.IMAGE).to_pylist() if C.IMAGE in table.column_names else [None] * table.num_rows
    paths = (
        table.column(C.IMAGE_PATH).to_pylist()
        if C.IMAGE_PATH in table.column_names
        else [None] * table.num_rows
    )
    decoded = [_pixels(b, p) for b, p in zip(blobs, paths, strict=True)]
    ok = np.array([px is not None for px, _ in decoded], dtype=bool)
    hashes = np.zeros(table.num_rows, dtype=np.uint64)
    if ok.any():
        hashes[ok] = phash_pixels(np.stack([px for px, _ in decoded if px is not None]))
    sizes = np.array([n for _, n in decoded], dtype=np.int64)
    out = pa.Table.from_arrays(
        [table.column(C.ID), pa.array(hashes, mask=~ok), pa.array(sizes)], schema=PHASH_SCHEMA
    )
    return _like(batch, out)


def _probe_masks(radius: int) -> np.ndarray:
    masks = [0]
    for r in range(1, radius + 1):
        for bits in itertools.combinations(range(CHUNK_BITS), r):
            masks.append(sum(1 << b for b in bits))
    return np.array(masks, dtype=np.uint64)


def hamming_pairs(hashes: np.ndarray, max_distance: int, block: int = 1 << 16) -> np.ndarray:
    """Pairs (E, 2), i < j, of hashes within max_distance bits, by multi-index hashing (no all-pairs scan)."""
    n = len(hashes)
    radius = max_distance // CHUNKS
    masks = _probe_masks(radius)
    found = []
    for c in range(CHUNKS):
        shift = np.uint64(CHUNK_BITS * c)
        chunk = (hashes >> shift) & np.uint64((1 << CHUNK_BITS) - 1)
        order = np.argsort(chunk, kind="stable")
        sorted_chunk = chunk[order]
        for s in range(0, n, block):
            probes = chunk[s : s + block, None] ^ masks[None, :]
            lo = np.searchsorted(sorted_chunk, probes, side="left").ravel()
            hi = np.searchsorted(sorted_chunk, probes, side="right").ravel()
            counts = hi - lo
            if not counts.any():
                continue
            which = np.repeat(np.arange(len(lo)), counts)
            src = s + which // len(masks)
            first = np.concatenate([[0], np.cumsum(counts)[:-1]])
            dst = order[np.repeat(lo, counts) + np.arange(counts.sum()) - np.repeat(first, counts)]
            keep = src < dst
            found.append(np.stack([src[keep], dst[keep]], axis=1))
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    pairs = np.unique(np.concatenate(found), axis=0)
    dist = np.bitwise_count(hashes[pairs[:, 0]] ^ hashes[pairs[:, 1]])
    return pairs[dist <= max_distance].astype(np.int64)


def _read(parts: Sequence[str | Path | pa.Table]) -> pa.Table:
    tables = [p if isinstance(p, pa.Table) else pq.read_table(p, columns=PHASH_SCHEMA.names) for p in parts]
    return (
        pa.concat_tables([t.select(PHASH_SCHEMA.names).cast(PHASH_SCHEMA) for t in tables])
        if tables
        else PHASH_SCHEMA.empty_table()
    )


def image_components(
    parts: Parts, cfg: NearConfig, published: Parts = ()
) -> tuple[pa.ChunkedArray, np.ndarray, np.ndarray, np.ndarray]:
    """Images within cfg.image_hamming bits of another: their ids, component labels, whether each comes
    from `published` (hashes of an already published version), and their pixel counts."""
    old, new = _read(published), _read(parts)
    table = pa.concat_tables([old, new])
    valid = np.flatnonzero(np.asarray(table.column(C.PHASH).is_valid()))
    hashes = np.asarray(table.column(C.PHASH).take(pa.array(valid)).cast(pa.uint64()))
    pairs = hamming_pairs(hashes, cfg.image_hamming)
    if len(pairs) == 0:
        empty = np.zeros(0, np.int64)
        return pa.chunked_array([], pa.string()), empty, np.zeros(0, bool), empty
    nodes = np.unique(pairs)
    labels = components(len(nodes), np.searchsorted(nodes, pairs))
    rows = pa.array(valid[nodes])
    lengths = np.asarray(table.column(C.NEAR_LENGTH).take(rows).fill_null(0))
    return table.column(C.ID).take(rows), labels, valid[nodes] < old.num_rows, lengths


def image_clusters(
    parts: Parts, cfg: NearConfig, quality: pa.Table | pl.DataFrame | None = None, published: Parts = ()
) -> pa.Table:
    """Global step for images: `id`, `near_cluster`, `dup_of` for images within cfg.image_hamming bits.

    Hashes are 8 bytes a record, so all parts are read at once. `published` as in near_clusters.
    """
    ids, labels, old, lengths = image_components(parts, cfg, published)
    if len(labels) == 0:
        return NEAR_CLUSTER_SCHEMA.empty_table()
    df = keep_policy(ids, labels, lengths, quality, old)
    return df.filter(~pl.col("_old")).drop("_old").to_arrow().cast(NEAR_CLUSTER_SCHEMA)

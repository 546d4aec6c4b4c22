"""Semantic dedup (SemDeDup-style): spherical k-means, then cosine >= 1 - eps inside each cluster.

Pairs are only compared inside a k-means cluster (clusters over `max_cluster_size` are split again), in
blocks of `block_rows`, so the work is about n x cluster size and memory is bounded by the block.
Connected components of the duplicate pairs form `semantic_cluster` (the kept record's id); the others
point to it with `semantic_dup_of`. Rows are never removed: records without a vector get nulls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa

from schemas import columns as C
from schemas.embed import SemanticConfig

SEMANTIC_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string()),
        pa.field(C.SEMANTIC_CLUSTER, pa.string()),
        pa.field(C.SEMANTIC_DUP_OF, pa.string()),
        pa.field(C.KMEANS_CLUSTER, pa.int32()),
    ]
)


def read_vectors(files: Sequence[str | Path]) -> pa.Table:
    """`id`, `embedding` of the embed stage's part files (e.g. sorted(<ws>/embed/*.parquet)), concatenated."""
    import pyarrow.parquet as pq

    tables = [pq.read_table(f, columns=[C.ID, C.EMBEDDING]) for f in files]
    if not tables:
        return pa.table(
            {C.ID: pa.array([], pa.string()), C.EMBEDDING: pa.array([], pa.list_(pa.float32(), 1))}
        )
    return pa.concat_tables(tables)


def spherical_kmeans(
    x: np.ndarray, k: int, seed: int = 0, sample: int = 100_000
) -> tuple[np.ndarray, np.ndarray]:
    """Labels and unit-norm centroids of unit vectors `x` (MiniBatchKMeans, then cosine assignment).

    Centroids are fitted on at most `sample` rows (float64, bounded memory); every row is then assigned.
    """
    from sklearn.cluster import MiniBatchKMeans

    k = max(1, min(k, len(x)))
    if k == 1:
        c = x.mean(axis=0, keepdims=True)
    else:
        rng = np.random.default_rng(seed)
        fit = (
            x if len(x) <= max(sample, 20 * k) else x[rng.choice(len(x), max(sample, 20 * k), replace=False)]
        )
        km = MiniBatchKMeans(
            n_clusters=k, random_state=seed, batch_size=max(1024, 3 * k), n_init=1, max_iter=20
        )
        km.fit(fit.astype(np.float64))  # float64 skips scikit-learn's chunked float32 upcast (2x faster here)
        c = km.cluster_centers_.astype(np.float32)
    c /= np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    labels = np.empty(len(x), np.int64)
    for s in range(0, len(x), 8192):
        labels[s : s + 8192] = np.argmax(x[s : s + 8192] @ c.T, axis=1)
    return labels, c


def _groups(x: np.ndarray, labels: np.ndarray, cfg: SemanticConfig) -> list[np.ndarray]:
    """Row indices per cluster, oversized clusters split again by k-means until they fit."""
    order = np.argsort(labels, kind="stable")
    bounds = np.flatnonzero(np.r_[True, labels[order][1:] != labels[order][:-1], True])
    out: list[np.ndarray] = []
    todo = [order[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    while todo:
        g = todo.pop()
        if len(g) <= cfg.max_cluster_size:
            out.append(g)
            continue
        sub, _ = spherical_kmeans(x[g], math.ceil(len(g) / (cfg.max_cluster_size / 2)), cfg.seed)
        if len(np.unique(sub)) == 1:  # identical vectors cannot be split: compare in blocks anyway
            out.append(g)
            continue
        todo.extend(g[sub == s] for s in np.unique(sub))
    return out


def _pairs(x: np.ndarray, g: np.ndarray, threshold: float, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) global row pairs inside group `g` with cosine >= threshold, i < j in group order."""
    xs = x[g]
    ii: list[np.ndarray] = []
    jj: list[np.ndarray] = []
    for s in range(0, len(g), block):
        sims = xs[s : s + block] @ xs[s:].T
        a, b = np.nonzero(sims >= threshold)
        keep = b > a  # b is offset from s, a is the block row: upper triangle only
        ii.append(g[a[keep] + s])
        jj.append(g[b[keep] + s])
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(ii), np.concatenate(jj)


def semantic_pairs(x: np.ndarray, labels: np.ndarray, cfg: SemanticConfig) -> tuple[np.ndarray, np.ndarray]:
    """All within-cluster row pairs of unit vectors `x` with cosine >= 1 - eps."""
    threshold = np.float32(1.0 - cfg.eps)
    found = [_pairs(x, g, threshold, cfg.block_rows) for g in _groups(x, labels, cfg) if len(g) > 1]
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


def semantic_clusters(table: pa.Table, cfg: SemanticConfig | None = None) -> pa.Table:
    """`id`, `semantic_cluster`, `semantic_dup_of`, `kmeans_cluster` for every row of `table[id, embedding]`.

    `semantic_cluster` is the kept record's id for every member of a duplicate group (null for records with
    no semantic duplicate); `semantic_dup_of` is that id for the others; `kmeans_cluster` is the k-means
    cluster. k defaults to ceil(sqrt(n)); the kept record follows `cfg.keep` (first = smallest id).
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from quality.embed_cache import arrow_to_vectors

    cfg = cfg or SemanticConfig()
    n_all = table.num_rows
    ids_all = np.asarray(table[C.ID].to_pylist(), dtype=object)
    km_all = np.full(n_all, -1, np.int64)
    cluster_all = np.full(n_all, None, dtype=object)
    dup_all = np.full(n_all, None, dtype=object)
    if n_all:
        x_all, valid = arrow_to_vectors(table[C.EMBEDDING])
        rows = np.flatnonzero(valid)
    else:
        rows = np.zeros(0, np.int64)
    if len(rows):
        x = x_all[rows]
        x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        k = cfg.k or math.ceil(math.sqrt(len(x)))
        labels, centroids = spherical_kmeans(x, k, cfg.seed)
        km_all[rows] = labels
        i, j = semantic_pairs(x, labels, cfg)
        if len(i):
            n = len(x)
            graph = coo_matrix((np.ones(len(i), np.int8), (i, j)), shape=(n, n))
            _, comp = connected_components(graph, directed=False)
            sizes = np.bincount(comp)
            member = np.flatnonzero(sizes[comp] > 1)
            ids = ids_all[rows]
            if cfg.keep == "central":
                score = -np.einsum("ij,ij->i", x[member], centroids[labels[member]])
                order = member[np.lexsort((ids[member].astype(str), score))]
            else:
                order = member[np.argsort(ids[member].astype(str), kind="stable")]
            uc, first = np.unique(comp[order], return_index=True)  # first member of each group in keep order
            keeper_of = np.full(int(comp.max()) + 1, -1, np.int64)
            keeper_of[uc] = order[first]
            keep_row = keeper_of[comp[member]]
            kept_ids = ids[keep_row]
            cluster_all[rows[member]] = kept_ids
            dup_all[rows[member]] = np.where(keep_row == member, None, kept_ids)
    return pa.table(
        {
            C.ID: table[C.ID],
            C.SEMANTIC_CLUSTER: pa.array(cluster_all.tolist(), pa.string()),
            C.SEMANTIC_DUP_OF: pa.array(dup_all.tolist(), pa.string()),
            C.KMEANS_CLUSTER: pa.array(km_all, pa.int32(), mask=km_all < 0),
        },
        schema=SEMANTIC_SCHEMA,
    )

"""Semantic dedup (SemDeDup-style), safe by default: same-language pairs of mean-centred vectors.

`semantic_edges` compares records only within one language, and only in the languages the embedder covers
(`[semantic] languages`; records of other or unknown language are counted and skipped). Within a language
every vector has that language's mean vector subtracted before the cosine: a mean of token vectors (the
static model, and to a lesser degree the transformer) puts all long texts of one language near one common
direction, so that unrelated 2 KB English pages have a median raw cosine of 0.90 (centred: 0.00; see
benchmarks/semantic_web.py). Pairs are then only compared inside a spherical k-means cluster (clusters over
`max_cluster_size` are split again), in blocks of `block_rows`, so the work is about n x cluster size and
memory is at most one float32 copy of the vectors beside the Arrow column, plus one language's rows and
one block. Connected components of the links larger than
`max_component_size` are cut by raising their threshold (a chain of loose links merges unrelated pages).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import columns as C
from schemas.embed import SemanticConfig

EDGE_SCHEMA = pa.schema(
    [pa.field(C.ID_A, pa.string()), pa.field(C.ID_B, pa.string()), pa.field(C.SIMILARITY, pa.float32())]
)
UNKNOWN_LANGUAGE = "unknown"  # stats key for records with no language, or one identified below min_lang_score
_SLACK = np.float32(1e-5)  # candidates are gathered this far under the threshold, then checked row by row


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


def _pairs(
    x: np.ndarray, g: np.ndarray, threshold: np.float32, block: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(i, j, cosine) of global row pairs inside group `g` with cosine >= threshold, i < j in group order."""
    xs = x[g]
    ii: list[np.ndarray] = []
    jj: list[np.ndarray] = []
    ss: list[np.ndarray] = []
    for s in range(0, len(g), block):
        sims = xs[s : s + block] @ xs[s:].T
        a, b = np.nonzero(sims >= threshold)
        keep = b > a  # b is offset from s, a is the block row: upper triangle only
        ii.append(g[a[keep] + s])
        jj.append(g[b[keep] + s])
        ss.append(sims[a[keep], b[keep]])
    if not ii:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(ss)


def semantic_pairs(x: np.ndarray, labels: np.ndarray, cfg: SemanticConfig) -> tuple[np.ndarray, np.ndarray]:
    """All within-cluster row pairs of unit vectors `x` with cosine >= 1 - eps (no centring, no language)."""
    threshold = np.float32(cfg.threshold())
    found = [_pairs(x, g, threshold, cfg.block_rows)[:2] for g in _groups(x, labels, cfg) if len(g) > 1]
    if not found:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


# --- language gate and vector transform shared by semantic_edges and semantic_similar --------------------
def _languages(table: pa.Table, cfg: SemanticConfig) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """(language code index per row, the language names, covered mask, vector-valid mask).

    A row's language is unknown when `lang` is null or absent, or its `lang_score` is under
    `cfg.min_lang_score` (when the table has a `lang_score`); unknown rows get the name UNKNOWN_LANGUAGE.
    """
    n = table.num_rows
    lang = table[C.LANG] if C.LANG in table.column_names else pa.nulls(n, pa.string())
    lang = lang.cast(pa.string())
    if C.LANG_SCORE in table.column_names:
        low = pc.fill_null(pc.less(table[C.LANG_SCORE].cast(pa.float32()), cfg.min_lang_score), True)
        lang = pc.if_else(low, pa.scalar(None, pa.string()), lang)
    lang = pc.fill_null(lang, UNKNOWN_LANGUAGE)
    enc = (lang.combine_chunks() if isinstance(lang, pa.ChunkedArray) else lang).dictionary_encode()
    names = [str(v) for v in enc.dictionary.to_pylist()]
    code = np.asarray(enc.indices.to_numpy(zero_copy_only=False), np.int64) if n else np.zeros(0, np.int64)
    covered_names = np.array([v in cfg.languages and v != UNKNOWN_LANGUAGE for v in names], bool)
    covered = covered_names[code] if n else np.zeros(0, bool)
    emb = table[C.EMBEDDING]
    valid = np.asarray(emb.is_valid().to_numpy(zero_copy_only=False), bool) if n else np.zeros(0, bool)
    return code, names, covered, valid


def _mean(x: np.ndarray) -> np.ndarray:
    """The centring vector of one language's raw vectors (float64 sum, so row order does not matter)."""
    return x.mean(axis=0, dtype=np.float64).astype(np.float32)


def _transform(x: np.ndarray, mean: np.ndarray | None) -> np.ndarray:
    """Unit vectors of `x` minus `mean`, in place; a row equal to the mean keeps its own direction."""
    if mean is not None:
        raw_norm = np.linalg.norm(x, axis=1)
        x -= mean
        flat = np.linalg.norm(x, axis=1) < 1e-6 * np.maximum(raw_norm, 1e-12)
        x[flat] += mean
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def _rowwise(x: np.ndarray, a: np.ndarray, b: np.ndarray, chunk: int = 65536) -> np.ndarray:
    """Cosine of transformed rows a[k], b[k] (the one arithmetic both public functions use)."""
    out = np.empty(len(a), np.float32)
    for s in range(0, len(a), chunk):
        out[s : s + chunk] = np.einsum("ij,ij->i", x[a[s : s + chunk]], x[b[s : s + chunk]])
    return out


def _cut(
    i: np.ndarray, j: np.ndarray, s: np.ndarray, n: int, threshold: float, cap: int
) -> tuple[np.ndarray, int, int]:
    """Mask of links kept after cutting components over `cap` rows: such a component's threshold moves
    halfway to 1 until it falls apart into pieces that fit (links of identical vectors are never cut).
    Returns (kept mask, components cut, largest component left)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keep = np.ones(len(i), bool)
    edge_thr = np.full(len(i), threshold, np.float64)
    n_cut = -1
    largest = 0
    for _ in range(64):  # each round halves the distance to 1: 0.1 reaches 1e-4 in 10
        graph = coo_matrix((np.ones(int(keep.sum()), np.int8), (i[keep], j[keep])), shape=(n, n))
        _, comp = connected_components(graph, directed=False)
        sizes = np.bincount(comp)
        largest = int(sizes.max()) if len(i) else 0
        over = keep & (sizes > cap)[comp[i]] & (edge_thr < 1 - 1e-4)
        if n_cut < 0:
            n_cut = len(np.unique(comp[i[over]]))
        if not over.any():
            break
        edge_thr[over] = 1 - (1 - edge_thr[over]) / 2
        keep &= s >= edge_thr
    return keep, max(n_cut, 0), largest


def semantic_edges(table: pa.Table, cfg: SemanticConfig) -> tuple[pa.Table, dict]:
    """Verified semantic duplicate pairs of `table` and what was compared, per language.

    `table` has `id` (unique), `embedding` (fixed-size list, may be null), `lang` (may be null) and
    optionally `lang_score`. Only records of one language are paired, only in `cfg.languages`; records of
    other languages, of unknown language (null `lang`, or `lang_score` < `cfg.min_lang_score`) or without a
    vector are skipped. With `cfg.center`, each language's mean vector is subtracted before the cosine.

    Returns (pairs, stats). pairs: `id_a`, `id_b`, `similarity` (float32 cosine >= 1 - eps; id_a < id_b;
    sorted), no keeper chosen. stats (JSON-ready): `languages` {lang: {compared, skipped, pairs}} with
    UNKNOWN_LANGUAGE for unknown ones, totals `compared`, `skipped`, `no_vector`, `pairs`, `threshold`,
    `components_cut` / `links_cut` (components over `max_component_size` whose links were tightened),
    `largest_component`, and `means` {lang: centring vector} that `semantic_similar` accepts.
    """
    threshold = np.float32(cfg.threshold())
    code, names, covered, valid = _languages(table, cfg)
    ids = table[C.ID].combine_chunks() if isinstance(table[C.ID], pa.ChunkedArray) else table[C.ID]
    total = np.bincount(code, minlength=len(names))
    compared = np.bincount(code[covered & valid], minlength=len(names))
    langs = {
        name: {"compared": int(compared[li]), "skipped": int(total[li] - compared[li]), "pairs": 0}
        for li, name in enumerate(names)
    }
    stats: dict = {
        "threshold": float(threshold),
        "center": cfg.center,
        "languages": langs,
        "no_vector": int((~valid).sum()),
        "components_cut": 0,
        "links_cut": 0,
        "largest_component": 0,
        "means": {},
    }
    found_a: list[pa.Array] = []
    found_b: list[pa.Array] = []
    found_s: list[np.ndarray] = []
    if table.num_rows and valid.any():
        from quality.vectors import arrow_to_vectors

        vectors, _ = arrow_to_vectors(table[C.EMBEDDING])
        order = np.argsort(np.where(covered & valid, code, -1), kind="stable")
        bounds = np.searchsorted(np.where(covered & valid, code, -1)[order], np.arange(len(names) + 1))
        for li, name in enumerate(names):
            rows = order[bounds[li] : bounds[li + 1]]  # this language's compared rows, in table order
            if len(rows) < 2:
                continue
            # a writable matrix holding one language only is centred in place; a read-only one is a view of
            # the Arrow buffer, so the copy is the only one
            whole = len(rows) == len(vectors) and vectors.flags.writeable
            x = vectors if whole else vectors[rows]
            mean = _mean(x) if cfg.center else None
            if mean is not None:
                stats["means"][name] = mean.tolist()
            x = _transform(x, mean)
            if cfg.k is None and len(x) <= cfg.max_cluster_size:
                labels = np.zeros(len(x), np.int64)  # small enough to compare every pair: no k-means misses
            else:
                labels, _ = spherical_kmeans(x, cfg.k or math.ceil(math.sqrt(len(x))), cfg.seed)
            got = [
                _pairs(x, g, threshold - _SLACK, cfg.block_rows)
                for g in _groups(x, labels, cfg)
                if len(g) > 1
            ]
            if not got:
                continue
            i = np.concatenate([f[0] for f in got])
            j = np.concatenate([f[1] for f in got])
            s = _rowwise(x, i, j)  # the same arithmetic as semantic_similar, so the two always agree
            ok = s >= threshold
            i, j, s = i[ok], j[ok], s[ok]
            keep, n_cut, largest = _cut(i, j, s, len(x), float(threshold), cfg.max_component_size)
            stats["components_cut"] += n_cut
            stats["links_cut"] += int((~keep).sum())
            stats["largest_component"] = max(stats["largest_component"], largest)
            i, j, s = i[keep], j[keep], s[keep]
            langs[name]["pairs"] = len(i)
            a, b = ids.take(pa.array(rows[i])), ids.take(pa.array(rows[j]))
            swap = pc.greater(a, b)
            found_a.append(pc.if_else(swap, b, a))
            found_b.append(pc.if_else(swap, a, b))
            found_s.append(s)
            del x
    stats["compared"] = sum(v["compared"] for v in langs.values())
    stats["skipped"] = sum(v["skipped"] for v in langs.values())
    stats["pairs"] = sum(v["pairs"] for v in langs.values())
    if not found_a:
        return EDGE_SCHEMA.empty_table(), stats
    edges = pa.table(
        {
            C.ID_A: pa.concat_arrays(found_a).cast(pa.string()),
            C.ID_B: pa.concat_arrays(found_b).cast(pa.string()),
            C.SIMILARITY: pa.array(np.concatenate(found_s), pa.float32()),
        },
        schema=EDGE_SCHEMA,
    )
    return edges.sort_by([(C.ID_A, "ascending"), (C.ID_B, "ascending")]), stats


def semantic_similar(
    table: pa.Table,
    pairs: pa.Table,
    cfg: SemanticConfig,
    means: Mapping[str, Sequence[float]] | None = None,
) -> np.ndarray:
    """Per row of `pairs` (`id_a`, `id_b`, any pairs): True where the two records of `table` count as semantic
    duplicates under the rule of `semantic_edges` (same covered language, both vectors present, cosine of
    the centred vectors >= 1 - eps); False for ids not in `table`.

    The centring vectors are `means` (the `means` of semantic_edges' stats) when given; otherwise they are
    computed from `table`, which must then be the whole table semantic_edges saw (a subset shifts the mean).
    """
    n_pairs = pairs.num_rows
    out = np.zeros(n_pairs, bool)
    if not n_pairs or not table.num_rows:
        return out
    threshold = np.float32(cfg.threshold())
    code, names, covered, valid = _languages(table, cfg)
    ids = table[C.ID].cast(pa.string()).combine_chunks()
    ia, ib = (
        np.asarray(
            pc.fill_null(pc.index_in(pairs[c].cast(pa.string()), value_set=ids), -1).to_numpy(), np.int64
        )
        for c in (C.ID_A, C.ID_B)
    )
    found = (ia >= 0) & (ib >= 0)
    ok = np.zeros(n_pairs, bool)
    ok[found] = (
        (code[ia[found]] == code[ib[found]])
        & covered[ia[found]]
        & valid[ia[found]]
        & valid[ib[found]]
        & (ia[found] != ib[found])
    )
    ok_same = np.flatnonzero(ok)
    if not len(ok_same):
        return out
    from quality.vectors import arrow_to_vectors

    vectors, _ = arrow_to_vectors(table[C.EMBEDDING])
    pair_lang = code[ia[ok_same]]
    for li in np.unique(pair_lang):
        name = names[li]
        sel = ok_same[pair_lang == li]
        if cfg.center:
            if means is not None and name in means:
                mean = np.asarray(means[name], np.float32)
            else:
                mean = _mean(vectors[np.flatnonzero((code == li) & covered & valid)])
        else:
            mean = None
        need, inv = np.unique(np.concatenate([ia[sel], ib[sel]]), return_inverse=True)
        x = _transform(vectors[need], mean)
        out[sel] = _rowwise(x, inv[: len(sel)], inv[len(sel) :]) >= threshold
    return out

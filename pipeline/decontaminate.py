"""Decontamination kernel: which records overlap an item of an evaluation set, and which item.

Three checks, the first that matches names the item: a shared span of `ngram` normalised words (the
GPT-3 / Dolma-style n-gram check, for items at least that long); a near duplicate of the whole item
(cosine of hashed character 3-5-gram counts, which catches short items, typos and light edits); a semantic
duplicate (cosine of the default embeddings). All columnar: words are hashed by polars, n-grams combined
with numpy, cosines by sparse / dense matrix products.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from schemas import columns as C
from schemas.config import DecontaminateConfig

NGRAM, NEAR, SEMANTIC = "ngram", "near", "semantic"
# short texts with typos: a pair whose character cosine is at least EDIT_MIN_COSINE (but under the near
# threshold) is a near duplicate when difflib's similarity ratio of the two lower-cased texts reaches
# EDIT_RATIO (or the near threshold when higher); only texts of at most EDIT_MAX_CHARS (longer ones
# share long spans: the n-gram check)
EDIT_MIN_COSINE, EDIT_RATIO, EDIT_MAX_CHARS = 0.4, 0.85, 400
_MULT = np.uint64(0x9E3779B97F4A7C15)
CHAR_FEATURES = 1 << 20
MATCH_SCHEMA = pa.schema(
    [
        pa.field(C.CONTAMINATED_BY, pa.string()),
        pa.field(C.CONTAMINATION, pa.string()),
        pa.field(C.CONTAMINATION_SCORE, pa.float32()),
    ]
)


def _words(texts: pl.Series) -> pl.DataFrame:
    """(row, hash) of every normalised word of every text, in order (NFKC-free: lower case, runs of
    anything but letters and digits fold to one separator)."""
    norm = texts.fill_null("").str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", " ").str.strip_chars()
    frame = pl.DataFrame({"row": np.arange(len(texts), dtype=np.int64), "w": norm.str.split(" ")})
    exploded = frame.explode("w").filter(pl.col("w").is_not_null() & (pl.col("w") != ""))
    return exploded.select("row", pl.col("w").hash(seed=0).alias("h"))


def ngram_hashes(texts: pl.Series, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, hash) of every run of `n` consecutive normalised words of every text."""
    w = _words(texts)
    rows, h = w["row"].to_numpy(), w["h"].to_numpy().astype(np.uint64)
    m = len(h) - n + 1
    if m <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint64)
    g = np.zeros(m, np.uint64)
    with np.errstate(over="ignore"):
        for j in range(n):
            g = g * _MULT + h[j : j + m]
    same = rows[:m] == rows[n - 1 :]
    return rows[:m][same], g[same]


def char_matrix(texts: pl.Series) -> Any:
    """L2-normalised hashed character 3-5-gram counts of whole texts (lower case, spaces folded)."""
    from sklearn.feature_extraction.text import HashingVectorizer

    norm = texts.fill_null("").str.to_lowercase().str.replace_all(r"\s+", " ").str.strip_chars()
    if len(norm) == 0:
        from scipy.sparse import csr_matrix

        return csr_matrix((0, CHAR_FEATURES), dtype=np.float64)
    vec = HashingVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), n_features=CHAR_FEATURES, alternate_sign=False, norm="l2"
    )
    return vec.transform(norm.to_list())


@dataclass
class EvalIndex:
    """What the checks compare against: the items' pointers, their n-gram hashes, char vectors, vectors."""

    pointers: np.ndarray  # `<file>#<id>` per item
    texts: list[str]  # the items' texts (the edit-ratio check of short texts)
    grams: np.ndarray  # sorted n-gram hashes
    gram_item: np.ndarray  # the item of each hash
    chars: Any  # sparse items x CHAR_FEATURES
    vectors: np.ndarray | None  # items x d unit vectors (semantic check), or None


def build_index(pointers: list[str], texts: list[str], cfg: DecontaminateConfig,
                vectors: np.ndarray | None = None) -> EvalIndex:  # fmt: skip
    """Index evaluation items (`pointers[i]` names item `texts[i]`) for `match`."""
    series = pl.Series(texts, dtype=pl.String)
    rows, grams = ngram_hashes(series, cfg.ngram)
    order = np.argsort(grams, kind="stable")
    return EvalIndex(
        np.array(pointers, dtype=object), list(texts), grams[order], rows[order], char_matrix(series), vectors
    )


def match(texts: pa.Array | pa.ChunkedArray | list, index: EvalIndex, cfg: DecontaminateConfig,
          vectors: np.ndarray | None = None, valid: np.ndarray | None = None) -> pa.Table:  # fmt: skip
    """Per text: `contaminated_by` (the item's pointer, null when clean), `contamination` (ngram, near or
    semantic: the first check that matched) and `contamination_score` (shared n-grams, or the cosine)."""
    series = pl.Series(texts, dtype=pl.String) if not isinstance(texts, pl.Series) else texts
    n = len(series)
    item = np.full(n, -1, np.int64)
    kind = np.full(n, None, dtype=object)
    score = np.full(n, np.nan, np.float32)
    if n == 0 or len(index.pointers) == 0:
        return _table(index, item, kind, score)
    # 1. shared spans of `ngram` words
    if len(index.grams):
        rows, grams = ngram_hashes(series, cfg.ngram)
        pos = np.searchsorted(index.grams, grams)
        hit = pos < len(index.grams)
        hit[hit] = index.grams[pos[hit]] == grams[hit]
        if hit.any():
            hr, hi = rows[hit], index.gram_item[pos[hit]]
            pairs = pl.DataFrame({"r": hr, "i": hi}).group_by("r", "i").len().sort(
                ["r", "len", "i"], descending=[False, True, False]).unique("r", keep="first")  # fmt: skip
            r = pairs["r"].to_numpy()
            item[r], kind[r], score[r] = pairs["i"].to_numpy(), NGRAM, pairs["len"].to_numpy()
    # 2. near duplicates of whole items
    todo = np.flatnonzero(item < 0)
    if len(todo):
        sims = (char_matrix(series.gather(todo)) @ index.chars.T).tocsr()
        best, arg = _row_max(sims)
        ok = best >= cfg.near_threshold
        item[todo[ok]], kind[todo[ok]], score[todo[ok]] = arg[ok], NEAR, best[ok]
        _edit_check(series, todo, sims, ~ok, index, item, kind, score, max(EDIT_RATIO, cfg.near_threshold))
    # 3. semantic duplicates
    if cfg.semantic_threshold is not None and vectors is not None and index.vectors is not None:
        todo = np.flatnonzero((item < 0) & (valid if valid is not None else True))
        for start in range(0, len(todo), 8192):
            chunk = todo[start : start + 8192]
            sims = vectors[chunk] @ index.vectors.T
            arg = sims.argmax(axis=1)
            best = sims[np.arange(len(chunk)), arg]
            ok = best >= cfg.semantic_threshold
            item[chunk[ok]], kind[chunk[ok]], score[chunk[ok]] = arg[ok], SEMANTIC, best[ok]
    return _table(index, item, kind, score)


def _edit_check(series: pl.Series, todo: np.ndarray, sims: Any, open_: np.ndarray, index: EvalIndex,
                item: np.ndarray, kind: np.ndarray, score: np.ndarray, min_ratio: float) -> None:  # fmt: skip
    """Short texts left unmatched whose character cosine to an item is at least EDIT_MIN_COSINE: near
    duplicates when difflib's ratio reaches `min_ratio` (typos in a short message move the cosine a lot)."""
    import difflib

    coo = sims.tocoo()
    cand = (coo.data >= EDIT_MIN_COSINE) & open_[coo.row]
    if not cand.any():
        return
    order = np.lexsort((-coo.data[cand], coo.row[cand]))  # per row, the most similar items first
    rows, cols = coo.row[cand][order], coo.col[cand][order]
    uniq = np.unique(rows)
    text_of = dict(zip(uniq.tolist(), series.gather(todo[uniq]).to_list(), strict=True))
    for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
        i = todo[r]
        a, b = (text_of[r] or "").lower(), index.texts[c].lower()
        if item[i] >= 0 or len(a) > EDIT_MAX_CHARS or len(b) > EDIT_MAX_CHARS:
            continue
        ratio = difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()
        if ratio >= min_ratio:
            item[i], kind[i], score[i] = c, NEAR, ratio


def _row_max(sims: Any) -> tuple[np.ndarray, np.ndarray]:
    """Per row of a sparse matrix: the largest value (0 when the row is empty) and its column."""
    sims = sims.tocsr()
    n = sims.shape[0]
    best = np.zeros(n, np.float64)
    arg = np.zeros(n, np.int64)
    counts = np.diff(sims.indptr)
    rows = np.flatnonzero(counts)
    if len(rows):
        starts = sims.indptr[rows]
        best[rows] = np.maximum.reduceat(sims.data, starts)
        # the column of the first maximum of each row
        owner = np.repeat(np.arange(n), counts)
        is_max = sims.data >= best[owner]
        first = (
            pl.DataFrame({"o": owner[is_max], "c": sims.indices[is_max]}).group_by("o").agg(pl.col("c").min())
        )
        arg[first["o"].to_numpy()] = first["c"].to_numpy()
    return best, arg


def _table(index: EvalIndex, item: np.ndarray, kind: np.ndarray, score: np.ndarray) -> pa.Table:
    names = np.append(index.pointers, None).astype(object)
    return pa.table(
        {
            C.CONTAMINATED_BY: pa.array(names[item].tolist(), pa.string()),
            C.CONTAMINATION: pa.array(kind.tolist(), pa.string()),
            C.CONTAMINATION_SCORE: pa.array(
                np.where(item >= 0, score, np.nan), pa.float32(), mask=item < 0
            ),  # fmt: skip
        },
        schema=MATCH_SCHEMA,
    )

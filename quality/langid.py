"""Language identification (py3langid: naive Bayes over byte n-grams, 97 languages, model in the wheel).

`lang` is an ISO 639-1 code (null for empty text), `lang_score` the normalised probability of that code.

py3langid's own `classify` walks each text's bytes in Python (one text at a time, holding the GIL). Here
the same model runs as one compiled batch kernel (numba, GIL released): Arrow prepares every text as
py3langid does (first `max_chars` characters, lower-cased when all upper case, NFC, UTF-8), the kernel
walks the model's byte-n-gram automaton over all texts and sums the naive-Bayes log-probabilities of the
features found, and numpy turns the scores into py3langid's normalised probabilities. Same model, same
features, same scores up to float32 rounding.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numba
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from schemas import columns as C
from schemas.embed import LangConfig

LANG_SCHEMA = pa.schema(
    [pa.field(C.ID, pa.string()), pa.field(C.LANG, pa.string()), pa.field(C.LANG_SCORE, pa.float32())]
)
_LOCK = threading.Lock()
_LANES = 16  # texts the score kernel walks side by side


def _load_identifier(candidates: tuple[str, ...] | None) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if candidates:
        ident.set_languages(list(candidates))
    return ident


_identifier = lru_cache(maxsize=8)(_load_identifier)


def identifier(cfg: LangConfig | None = None) -> Any:
    """The py3langid identifier for `cfg` (restricted to `candidates` when set), loaded once per process."""
    cfg = cfg or LangConfig()
    with _LOCK:
        return _identifier(tuple(cfg.candidates) if cfg.candidates else None)


@dataclass(frozen=True)
class _Arrays:
    """py3langid's model as flat arrays for the batch kernel."""

    nextmove: np.ndarray  # uint32: automaton transitions, row-compressed
    rowbase: np.ndarray  # int64: first transition of each state's row
    output: np.ndarray  # int32: feature emitted on entering a state, -1 for none
    ptc: np.ndarray  # float32 features x classes: log P(feature | class)
    pc: np.ndarray  # float32 classes: log P(class)
    classes: list[str]
    alias_pairs: list[tuple[int, int]]


@lru_cache(maxsize=8)
def _arrays(candidates: tuple[str, ...] | None) -> _Arrays:
    ident = _load_identifier(candidates)  # not kept: its own copy of the model is not needed here
    return _Arrays(
        nextmove=np.frombuffer(ident.tk_nextmove, dtype=np.uint32),
        rowbase=np.asarray(ident.tk_row, dtype=np.int64) << 8,
        output=np.asarray(ident.tk_output, dtype=np.int32),
        ptc=np.ascontiguousarray(ident.nb_ptc, dtype=np.float32),
        pc=np.asarray(ident.nb_pc, dtype=np.float32),
        classes=list(ident.nb_classes),
        alias_pairs=list(ident._alias_pairs),
    )


def model_arrays(cfg: LangConfig | None = None) -> _Arrays:
    """The model of `cfg` as the kernel's arrays, built once per process."""
    cfg = cfg or LangConfig()
    key = tuple(cfg.candidates) if cfg.candidates else None
    with _LOCK:
        return _arrays(key)


@numba.njit(cache=True, nogil=True, fastmath=True)
def _score_kernel(data, offsets, nextmove, rowbase, output, ptc, pc, scores, found):  # noqa: ANN001, ANN202
    """scores[i] = sum over features f of text i of log1p(count f) * ptc[f] + pc (py3langid's raw score);
    found[i] = 0 when text i has no feature (its scores stay 0).

    The automaton's table is ~40 MB, so each step is a cache miss: _LANES texts are walked side by side
    (independent chains, so their misses overlap), writing the feature of each byte; the features of each
    text are then counted and scored."""
    n_docs = offsets.shape[0] - 1
    n_feat, n_cls = ptc.shape
    counts = np.zeros(n_feat, np.int32)
    touched = np.empty(64, np.int64)
    feat = np.empty(64, np.int32)
    acc = np.empty(n_cls, np.float32)
    pos = np.empty(_LANES, np.int64)
    end = np.empty(_LANES, np.int64)
    st = np.empty(_LANES, np.int64)
    for lo in range(0, n_docs, _LANES):
        hi = min(lo + _LANES, n_docs)
        base = offsets[lo]
        nb = offsets[hi] - base
        if feat.shape[0] < nb:
            feat = np.empty(2 * nb, np.int32)
            touched = np.empty(2 * nb, np.int64)
        lanes = hi - lo
        for g in range(lanes):
            pos[g] = offsets[lo + g]
            end[g] = offsets[lo + g + 1]
            st[g] = 0
        active = True
        while active:
            active = False
            for g in range(lanes):
                p = pos[g]
                if p < end[g]:
                    s = nextmove[rowbase[st[g]] + data[p]]
                    st[g] = s
                    feat[p - base] = output[s]
                    pos[g] = p + 1
                    active = True
        for i in range(lo, hi):
            k = 0
            for j in range(offsets[i] - base, offsets[i + 1] - base):
                f = feat[j]
                if f >= 0:
                    if counts[f] == 0:
                        touched[k] = f
                        k += 1
                    counts[f] += 1
            if k == 0:
                found[i] = 0
                continue
            found[i] = 1
            acc[:] = pc
            for t in range(k):
                f = touched[t]
                w = np.float32(np.log1p(np.float32(counts[f])))
                counts[f] = 0
                for c in range(n_cls):
                    acc[c] += w * ptc[f, c]
            scores[i, :] = acc


def _prepared(texts: pa.Array | pa.ChunkedArray, max_chars: int) -> pa.LargeStringArray:
    """What py3langid reads of each text: the first `max_chars` characters of the trimmed text, lower-cased
    when it is all upper case, NFC (Arrow kernels over the column)."""
    from quality.nfc import nfc_series

    head = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(texts.cast(pa.string())), 0, max_chars)
    upper = pc.fill_null(pc.utf8_is_upper(head), False)
    if pc.any(upper).as_py():
        head = pc.if_else(upper, pc.utf8_lower(head), head)
    if isinstance(head, pa.ChunkedArray):
        head = head.combine_chunks() if head.num_chunks else pa.array([], pa.string())
    s = pl.from_arrow(head)
    assert isinstance(s, pl.Series)
    return nfc_series(s.cast(pl.String)).to_arrow().cast(pa.large_string())


def detect_texts(
    texts: pa.Array | pa.ChunkedArray | list[str | None], cfg: LangConfig | None = None
) -> pa.Table:
    """`lang`, `lang_score` for each text (its first `max_chars` characters); nulls for empty text."""
    cfg = cfg or LangConfig()
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, pa.string())
    model = model_arrays(cfg)
    head = _prepared(arr, cfg.max_chars)
    n = len(head)
    _, off_buf, data_buf = head.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[head.offset : head.offset + n + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    scores = np.zeros((n, len(model.classes)), np.float32)
    found = np.zeros(n, np.uint8)
    if n:
        _score_kernel(data, offsets, model.nextmove, model.rowbase, model.output, model.ptc, model.pc, scores,
                      found)  # fmt: skip
    # py3langid's norm_probs: temperature sqrt(bytes), softmax; aliased labels fold into their first column
    nbytes = np.diff(offsets).astype(np.float32)
    scores *= (1.0 / np.sqrt(np.maximum(nbytes, 1.0)))[:, None]
    scores -= scores.max(axis=1, keepdims=True)
    np.exp(scores, out=scores)
    scores /= scores.sum(axis=1, keepdims=True)
    for i, j in model.alias_pairs:
        scores[:, i] += scores[:, j]
        scores[:, j] = 0.0
    best = scores.argmax(axis=1)
    conf = scores[np.arange(n), best]
    empty = np.asarray(pc.fill_null(pc.equal(pc.utf8_length(head), 0), True).to_numpy(zero_copy_only=False))
    labels = pa.array(model.classes, pa.string()).take(pa.array(best, pa.int64()))
    return pa.table(
        {
            C.LANG: pc.if_else(pa.array(empty), pa.scalar(None, pa.string()), labels),
            C.LANG_SCORE: pa.array(conf, pa.float32(), mask=empty),
        }
    )


def detect(batch: pa.Table, cfg: LangConfig | None = None) -> pa.Table:
    """`id`, `lang`, `lang_score` for the `text` of every row of `batch`."""
    res = detect_texts(batch[C.TEXT], cfg)
    return pa.table(
        {C.ID: batch[C.ID], C.LANG: res[C.LANG], C.LANG_SCORE: res[C.LANG_SCORE]}, schema=LANG_SCHEMA
    )


def language_ok(table: pa.Table, cfg: LangConfig | None = None) -> pa.ChunkedArray:
    """Per row of `table[lang, lang_score]`: True where the language policy passes (all if `keep` is unset).

    A text whose score is under `min_score`, or with no text, fails a set `keep` list.
    """
    cfg = cfg or LangConfig()
    if not cfg.keep:
        return pa.chunked_array([pa.array(np.ones(table.num_rows, bool))])
    known = pc.fill_null(pc.greater_equal(table[C.LANG_SCORE], cfg.min_score), False)
    listed = pc.fill_null(pc.is_in(table[C.LANG], pa.array(cfg.keep, pa.string())), False)
    return pc.and_(known, listed)

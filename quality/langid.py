"""Language identification (py3langid: naive Bayes over byte n-grams, 97 languages, model in the wheel).

`lang` is an ISO 639-1 code (null for empty text), `lang_score` the normalised probability of that code.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import columns as C
from schemas.embed import LangConfig

LANG_SCHEMA = pa.schema(
    [pa.field(C.ID, pa.string()), pa.field(C.LANG, pa.string()), pa.field(C.LANG_SCORE, pa.float32())]
)
_LOCK = threading.Lock()


@lru_cache(maxsize=8)
def _identifier(candidates: tuple[str, ...] | None) -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    ident = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if candidates:
        ident.set_languages(list(candidates))
    return ident


def identifier(cfg: LangConfig | None = None) -> Any:
    """The py3langid identifier for `cfg` (restricted to `candidates` when set), loaded once per process."""
    cfg = cfg or LangConfig()
    with _LOCK:
        return _identifier(tuple(cfg.candidates) if cfg.candidates else None)


def detect_texts(
    texts: pa.Array | pa.ChunkedArray | list[str | None], cfg: LangConfig | None = None
) -> pa.Table:
    """`lang`, `lang_score` for each text (its first `max_chars` characters); nulls for empty text."""
    cfg = cfg or LangConfig()
    arr = texts if isinstance(texts, pa.Array | pa.ChunkedArray) else pa.array(texts, pa.string())
    head = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(arr.cast(pa.string())), 0, cfg.max_chars)
    ident = identifier(cfg)
    values = head.to_pylist()
    langs: list[str | None] = [None] * len(values)
    scores = np.zeros(len(values), np.float32)
    for i, t in enumerate(values):  # the identifier walks each text's bytes; no batched API exists
        if t:
            langs[i], scores[i] = ident.classify(t)
    mask = np.array([v is None for v in langs], bool)
    return pa.table(
        {C.LANG: pa.array(langs, pa.string()), C.LANG_SCORE: pa.array(scores, pa.float32(), mask=mask)}
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

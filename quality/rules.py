"""Heuristic quality rules (Gopher/C4-style for text; size/shape/blankness for images; completeness for
records). Each rule writes its own `rule_<name>` score column; `rule_reason` is the first rule that failed."""

from __future__ import annotations

import io

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, ImageStat

from schemas import columns as C
from schemas.config import ImageRules, RecordRules, RulesConfig, TextRules

# Stop words of the languages most common on the web; "stop-word presence" tells prose from menus and lists.
STOPWORDS = sorted(
    {
        "the",
        "be",
        "to",
        "of",
        "and",
        "that",
        "have",
        "with",
        "is",
        "are",
        "for",
        "this",  # en
        "der",
        "die",
        "und",
        "das",
        "ist",
        "nicht",
        "mit",
        "ein",
        "eine",
        "zu",
        "den",  # de
        "le",
        "la",
        "les",
        "et",
        "est",
        "des",
        "que",
        "une",
        "pour",
        "dans",
        "du",  # fr
        "el",
        "los",
        "las",
        "del",
        "por",
        "con",
        "una",
        "es",
        "en",
        "y",  # es
        "il",
        "che",
        "di",
        "per",
        "non",
        "un",
        "della",  # it
        "os",
        "não",
        "com",
        "uma",
        "do",
        "da",  # pt
        "het",
        "een",
        "van",
        "op",  # nl
        "ja",
        "on",
        "ei",
        "että",
        "se",  # fi
        "och",
        "att",
        "är",
        "som",
        "på",  # sv
    }
)
_STOP_RE = r"(?i)\b(?:" + "|".join(STOPWORDS) + r")\b"  # what rule_stopwords counts (the definition)
# the same count, ~4x faster: the case-insensitive match of lower-case stop words is a case-sensitive match
# on the lower-cased text (long s folds to s under (?i) but does not lower-case to it)
_STOP_LOWER_RE = r"\b(?:" + "|".join(STOPWORDS) + r")\b"

R = C.RULE_PREFIX
TEXT_RULES = [
    "chars",
    "words",
    "mean_word_length",
    "symbol_ratio",
    "digit_ratio",
    "bullet_line_fraction",
    "dup_line_fraction",
    "punct_line_fraction",
    "stopwords",
]
IMAGE_RULES = ["min_side", "aspect_ratio", "pixel_std"]
RECORD_RULES = ["missing_required", "null_fraction"]
RULE_COLUMNS = [R + n for n in TEXT_RULES + IMAGE_RULES + RECORD_RULES]
RULES_SCHEMA = pa.schema(
    [pa.field(C.ID, pa.string())]
    + [pa.field(c, pa.float64()) for c in RULE_COLUMNS]
    + [pa.field(C.RULE_REASON, pa.string())]
)


def text_scores(texts: pl.Series) -> pl.DataFrame:
    """Score columns of the text rules for a batch of texts."""
    t = pl.col("t")
    lines = (
        t.str.split("\n")
        .list.eval(pl.element().str.strip_chars())
        .list.eval(pl.element().filter(pl.element().str.len_chars() > 0))
    )
    df = pl.DataFrame({"t": texts.fill_null("")})
    df = df.with_columns(
        stripped=t.str.strip_chars().str.len_chars(),
        words=t.str.count_matches(r"\S+"),
        nonspace=t.str.len_chars() - t.str.count_matches(r"\s"),
        symbols=t.str.count_matches(r"#|\.\.\.|…"),
        digits=t.str.count_matches(r"\d"),
        nchars=t.str.len_chars(),
        lines=lines,
    ).with_columns(nlines=pl.col("lines").list.len())
    safe = lambda e: pl.when(pl.col("nlines") > 0).then(e).otherwise(None)  # noqa: E731
    return df.select(
        pl.col("stripped").alias(R + "chars"),
        pl.col("words").alias(R + "words"),
        (pl.col("nonspace") / pl.col("words")).alias(R + "mean_word_length"),
        (pl.col("symbols") / pl.col("words")).alias(R + "symbol_ratio"),
        (pl.col("digits") / pl.col("nchars")).alias(R + "digit_ratio"),
        safe(pl.col("lines").list.eval(pl.element().str.contains(r"^[•\-*·▪►]")).list.mean()).alias(
            R + "bullet_line_fraction"
        ),
        safe(1 - pl.col("lines").list.n_unique() / pl.col("nlines")).alias(R + "dup_line_fraction"),
        safe(
            pl.col("lines").list.eval(pl.element().str.contains(r"[.!?。！？…\"'”’)\]:;]$")).list.mean()
        ).alias(R + "punct_line_fraction"),
        t.str.replace_all("ſ", "s", literal=True)
        .str.to_lowercase()
        .str.count_matches(_STOP_LOWER_RE)
        .alias(R + "stopwords"),
    ).with_columns(pl.all().cast(pl.Float64))


def text_reason(cfg: TextRules) -> pl.Expr:
    """The first text rule that fails, as an expression over the score columns."""
    c = lambda n: pl.col(R + n)  # noqa: E731
    checks = [
        (c("chars") < cfg.min_chars, "empty"),
        (c("words") < cfg.min_words, "too_few_words"),
        (c("words") > cfg.max_words, "too_many_words"),
        (
            (c("mean_word_length") < cfg.min_mean_word_length)
            | (c("mean_word_length") > cfg.max_mean_word_length),
            "mean_word_length",
        ),
        (c("symbol_ratio") > cfg.max_symbol_ratio, "symbol_ratio"),
        (c("digit_ratio") > cfg.max_digit_ratio, "digit_ratio"),
        (c("bullet_line_fraction") > cfg.max_bullet_line_fraction, "bullet_lines"),
        (c("dup_line_fraction") > cfg.max_dup_line_fraction, "dup_lines"),
        (c("punct_line_fraction") < cfg.min_punct_line_fraction, "punct_lines"),
        (c("stopwords") < cfg.min_stopwords, "no_stopwords"),
    ]
    return _first(checks)


def _first(checks: list[tuple[pl.Expr, str]]) -> pl.Expr:
    expr = pl.when(checks[0][0].fill_null(False)).then(pl.lit(checks[0][1]))
    for cond, name in checks[1:]:
        expr = expr.when(cond.fill_null(False)).then(pl.lit(name))
    return expr.otherwise(pl.lit(None, dtype=pl.String))


def pixel_std(blob: bytes | None) -> float | None:
    """Grey-level standard deviation of a small decoded copy of the image (near 0 means blank)."""
    if blob is None:
        return None
    with Image.open(io.BytesIO(blob)) as img:
        img.draft("L", (64, 64))
        grey = img.convert("L")
        grey.thumbnail((64, 64))
        return float(ImageStat.Stat(grey).stddev[0])


def _rows_of(batch: pa.Table, modality: str) -> np.ndarray:
    """Indices of the rows of `modality`."""
    return np.flatnonzero(
        np.asarray(pc.fill_null(pc.equal(batch[C.MODALITY], modality), False).to_numpy(zero_copy_only=False))
    )


def image_scores(batch: pa.Table) -> pl.DataFrame:
    """Score columns of the image rules (null for non-images)."""
    df = pl.from_arrow(batch.select([C.MODALITY, C.WIDTH, C.HEIGHT]))
    assert isinstance(df, pl.DataFrame)
    rows = _rows_of(batch, C.IMAGE_MODALITY)  # only image rows are decoded
    stds: list[float | None] = [None] * batch.num_rows
    blobs = batch[C.IMAGE].take(pa.array(rows, pa.int64())).to_pylist()
    for r, blob in zip(rows.tolist(), blobs, strict=True):
        stds[r] = pixel_std(blob)
    w, h = pl.col(C.WIDTH).cast(pl.Float64), pl.col(C.HEIGHT).cast(pl.Float64)
    return df.select(
        pl.min_horizontal(w, h).alias(R + "min_side"),
        (pl.max_horizontal(w, h) / pl.min_horizontal(w, h)).alias(R + "aspect_ratio"),
        pl.Series(R + "pixel_std", stds, dtype=pl.Float64),
    )


def image_reason(cfg: ImageRules) -> pl.Expr:
    """The first image rule that fails."""
    return _first(
        [
            (pl.col(R + "min_side") < min(cfg.min_width, cfg.min_height), "too_small"),
            (pl.col(R + "aspect_ratio") > cfg.max_aspect_ratio, "aspect_ratio"),
            (pl.col(R + "pixel_std") < cfg.min_pixel_std, "blank_image"),
        ]
    )


def record_scores(batch: pa.Table, cfg: RecordRules) -> pl.DataFrame:
    """Score columns of the record rules: required fields missing, fraction of null or empty fields."""
    missing: list[float | None] = [None] * batch.num_rows
    nulls: list[float | None] = [None] * batch.num_rows
    rows = _rows_of(batch, C.RECORD_MODALITY)  # only record rows are parsed
    data = batch[C.DATA].take(pa.array(rows, pa.int64())).to_pylist()
    for r, d in zip(rows.tolist(), data, strict=True):
        if d is None:
            continue
        obj = orjson.loads(d)
        empty = [k for k, v in obj.items() if v is None or (isinstance(v, str) and not v.strip())]
        missing[r] = float(sum(1 for f in cfg.required_fields if f not in obj or f in empty))
        nulls[r] = len(empty) / len(obj) if obj else 1.0
    return pl.DataFrame(
        {R + "missing_required": missing, R + "null_fraction": nulls},
        schema={R + "missing_required": pl.Float64, R + "null_fraction": pl.Float64},
    )


def record_reason(cfg: RecordRules) -> pl.Expr:
    """The first record rule that fails."""
    return _first(
        [
            (pl.col(R + "missing_required") > 0, "missing_required"),
            (pl.col(R + "null_fraction") > cfg.max_null_fraction, "mostly_null"),
        ]
    )


def _series(col: pa.ChunkedArray | pa.Array) -> pl.Series:
    s = pl.from_arrow(col)
    assert isinstance(s, pl.Series)
    return s.cast(pl.String)


def apply_rules(batch: pa.Table, cfg: RulesConfig) -> pa.Table:
    """`id`, one `rule_<name>` column per rule, and `rule_reason` (first failed rule, null if none)."""
    m = _series(batch[C.MODALITY]).alias("m")
    texts = _series(batch[C.TEXT])
    tscores = text_scores(texts).with_columns(
        pl.when(m == C.TEXT_MODALITY).then(pl.all()).otherwise(None).name.keep()
    )
    scores = pl.concat([tscores, image_scores(batch), record_scores(batch, cfg.record)], how="horizontal")
    out = (
        scores.with_columns(m)
        .with_columns(
            pl.when(pl.col("m") == C.TEXT_MODALITY)
            .then(text_reason(cfg.text))
            .when(pl.col("m") == C.IMAGE_MODALITY)
            .then(image_reason(cfg.image))
            .otherwise(record_reason(cfg.record))
            .alias(C.RULE_REASON)
        )
        .drop("m")
    )
    table = out.select(RULE_COLUMNS + [C.RULE_REASON]).to_arrow()
    return table.add_column(0, C.ID, batch[C.ID])

"""Config of the embedding stage, semantic dedup, quality classifier, language and PII filters."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EmbedConfig(_Strict):
    """Which embedder turns records into vectors, and how."""

    embedder: Literal["static", "transformer", "cascade"] = Field(
        "static",
        description="static: model2vec distilled from `model` (default: 100x+ faster, within 0.02 AUC and "
        "0.05 semantic-dup F1 of the transformer here, see README); "
        "transformer: the sentence-transformers model itself; cascade: static vectors, and the quality score "
        "of uncertain records is redone on transformer vectors",
    )
    model: str | None = Field(
        None, description="sentence-transformers model name or local path; none = packaged all-MiniLM-L6-v2"
    )
    image_model: str | None = Field(
        None,
        description="CLIP-style sentence-transformers model for images (and caption_alignment); none = off",
    )
    device: str = Field("auto", description="auto (CUDA when present, else CPU), cpu, cuda, cuda:1, mps")
    batch_size: int = Field(128, gt=0, description="texts per forward pass of the transformer")
    dtype: Literal["float32", "float16"] = Field(
        "float32",
        description="stored vector type; float16 also runs the transformer in half precision on CUDA",
    )
    long_text: Literal["truncate", "chunk"] = Field(
        "truncate",
        description="texts over the model's max length: truncate, or chunk and mean-pool the chunks",
    )
    max_length: int | None = Field(None, gt=0, description="max tokens per text or chunk; none = model's own")
    static_dims: int = Field(256, gt=0, description="PCA dimensions of the distilled static model")
    static_dir: str | None = Field(
        None,
        description="where distilled static models live; none = $CURATE_STATIC_DIR or ~/.cache/curate/static",
    )
    cache_dir: str | None = Field(
        None,
        description="vector cache shared by workspaces (written by the embed stage); none = look up "
        "<workspace>/embeddings only, the embed stage's own files holding the vectors it computes",
    )
    cascade_uncertainty: float = Field(
        0.5, ge=0, le=1, description="cascade: records whose static-tier uncertainty is >= this are re-scored"
    )


STATIC_EPS = 0.02  # largest eps with no false link on web pages for static (model2vec) vectors
TRANSFORMER_EPS = 0.15  # the same for the transformer (benchmarks/semantic_web.py, README)


class SemanticConfig(_Strict):
    """SemDeDup-style semantic dedup: same-language pairs of mean-centred vectors with cosine >= 1 - eps,
    compared inside k-means clusters (see benchmarks/semantic_web.py for how the defaults were chosen)."""

    eps: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="pairs whose centred vectors have cosine >= 1 - eps are semantic duplicates; none = by "
        f"embedder: {TRANSFORMER_EPS} for transformer vectors, {STATIC_EPS} for static / cascade vectors",
    )
    languages: list[str] = Field(
        default_factory=lambda: ["en"],
        description="languages (lang stage codes) the embedder covers: only these are compared; records of "
        "other or unknown language are skipped and counted (the default all-MiniLM-L6-v2 is English-only)",
    )
    min_lang_score: float = Field(
        0.5, ge=0, le=1, description="a lang_score below this counts as unknown language (not compared)"
    )
    center: bool = Field(
        True,
        description="subtract each language's mean vector before the cosine (without it unrelated long "
        "pages of one language have cosine ~0.9 on mean-pooled embeddings)",
    )
    k: int | None = Field(
        None,
        gt=0,
        description="k-means clusters per language; none = ceil(sqrt(n)), or every pair compared when a "
        "language has at most max_cluster_size records",
    )
    max_cluster_size: int = Field(
        5000, gt=1, description="clusters larger than this are split again by k-means (bounds the pair work)"
    )
    max_component_size: int = Field(
        100,
        gt=1,
        description="linked groups larger than this have their threshold raised until they fall apart "
        "(a chain of loose links merges unrelated pages)",
    )
    seed: int = Field(0, description="k-means random state")
    block_rows: int = Field(2048, gt=0, description="rows per similarity block (bounds memory)")

    def for_embedder(self, embedder: str) -> SemanticConfig:
        """This config with `eps` set for vectors of `embedder` (static, cascade, transformer) when unset."""
        if self.eps is not None:
            return self
        return self.model_copy(update={"eps": TRANSFORMER_EPS if embedder == "transformer" else STATIC_EPS})

    def threshold(self) -> float:
        """The cosine a pair needs: 1 - eps (the static eps when unset: the conservative one)."""
        return 1.0 - (STATIC_EPS if self.eps is None else self.eps)


class QualityConfig(_Strict):
    """Embedding quality classifier and the policy that turns its score into a decision."""

    model_dir: str | None = Field(
        None, description="classifier from `curate quality train`; none = no classifier"
    )
    drop_below: float = Field(0.2, ge=0, le=1, description="quality below this drops the record")
    keep_above: float = Field(0.8, ge=0, le=1, description="quality above this keeps the record")
    label_uncertainty: float = Field(
        0.6, ge=0, le=1, description="records in between with uncertainty >= this go to labelling"
    )
    reference: str | None = Field(None, description="parquet/JSONL of good texts for the reference-set score")
    reference_k: int = Field(10, gt=0, description="neighbours averaged by the reference-set score")


class LangConfig(_Strict):
    """Language identification and the language policy."""

    keep: list[str] | None = Field(None, description="ISO 639-1 codes kept, e.g. ['en', 'de']; none = all")
    min_score: float = Field(
        0.5, ge=0, le=1, description="a lang_score below this counts as unknown language"
    )
    candidates: list[str] | None = Field(None, description="restrict the identifier to these languages")
    max_chars: int = Field(2000, gt=0, description="characters of each text the identifier reads")


PII_KINDS = ("email", "phone", "ip", "credit_card", "iban")


class PiiConfig(_Strict):
    """PII detection and what publish does with records that have some."""

    action: Literal["flag", "redact", "drop"] = Field(
        "flag",
        description="flag: columns only; redact: publish replaces matches (<EMAIL> ...); drop: not published",
    )
    kinds: list[Literal["email", "phone", "ip", "credit_card", "iban"]] = Field(
        default_factory=lambda: list(PII_KINDS), description="kinds detected"
    )
    phone_regions: list[str] = Field(
        default_factory=lambda: ["US", "GB", "DE", "FR", "ES", "FI"],
        description="regions whose national phone formats are recognised (+international always is)",
    )

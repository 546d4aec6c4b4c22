"""The `[near]` section of curate.toml: near-duplicate detection for text, images and records.

Defaults were chosen on the accuracy benchmark (benchmarks/near_dup.py: Clough plagiarism, a built
near-duplicate set with boilerplate, dropped paragraphs, typos, reflow and truncation, and
er_magellan dblp-acm); the grid and the figures are in the README.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class NearConfig(BaseModel):
    """Near-duplicate detection settings (MinHash-LSH for text and records, perceptual hash for images)."""

    model_config = ConfigDict(extra="forbid")

    shingle: Literal["word", "char"] = Field(
        "word", description="shingle kind: word n-grams or character n-grams of the normalised text"
    )
    ngram: int = Field(2, ge=1, le=32, description="shingle size in words (or characters for char shingles)")
    threshold: float = Field(
        0.4, gt=0.0, le=1.0, description="estimated Jaccard similarity at or above which texts are near-dups"
    )
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations (signature length)")
    bands: int | None = Field(
        None, ge=1, description="LSH bands; default: chosen from threshold and num_perm"
    )
    rows: int | None = Field(None, ge=1, description="rows per LSH band; default: chosen with bands")
    fp_weight: float = Field(0.5, ge=0.0, le=1.0, description="weight of false positives in the band choice")
    seed: int = Field(1, ge=0, description="seed of the MinHash permutations (signatures depend on it)")
    image_hamming: int = Field(
        8,
        ge=0,
        le=32,
        description="pHash Hamming distance (of 64 bits) at or below which images are near-dups",
    )
    record_fields: list[str] | None = Field(
        None, description="records: key fields compared (default: every field of the record)"
    )
    record_threshold: float = Field(
        0.5, gt=0.0, le=1.0, description="records: estimated Jaccard of field-tagged tokens for a match"
    )
    record_ngram: int = Field(1, ge=1, le=8, description="records: shingle size in words inside one field")
    record_tag_fields: bool = Field(
        False, description="records: tag each token with its field, so 'title:x' and 'venue:x' differ"
    )
    published: list[str] = Field(
        default_factory=list,
        description="incremental mode: workspaces of already published versions; new records are matched "
        "against their stored signatures (never recomputed), and their records are always kept",
    )

    @model_validator(mode="after")
    def _bands_fit(self) -> NearConfig:
        if self.bands is not None and self.rows is not None and self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self


def _arrow_schemas():  # kept apart so the config model imports without pyarrow
    import pyarrow as pa

    from schemas import columns as C

    clusters = pa.schema(
        [
            pa.field(C.ID, pa.string(), nullable=False),
            pa.field(C.NEAR_CLUSTER, pa.string()),
            pa.field(C.DUP_OF, pa.string()),
        ]
    )
    return clusters


NEAR_CLUSTER_SCHEMA = _arrow_schemas()
"""`id`, `near_cluster` (id of the cluster's kept record), `dup_of` (kept id; null for the kept one)."""

"""The curate.toml model: one file drives a run; unknown keys are errors that name the key."""

from __future__ import annotations

import difflib
import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from schemas.embed import EmbedConfig, LangConfig, PiiConfig, QualityConfig, SemanticConfig
from schemas.labeling import LabelingConfig
from schemas.near import NearConfig

FORMATS = ("jsonl", "csv", "tsv", "parquet", "images", "webdataset")


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class SourceConfig(Strict):
    """One input: a file, a glob or a folder, and how its fields map to the record schema."""

    path: str = Field(description="file, glob (data/*.jsonl.gz) or folder (images)")
    name: str | None = Field(None, description="source name; default: the file's stem")
    format: Literal["jsonl", "csv", "tsv", "parquet", "images", "webdataset"] | None = Field(
        None, description="default: from the file name"
    )
    modality: Literal["text", "image", "record"] | None = Field(
        None, description="default: image for images/webdataset, record for csv/tsv, else text"
    )
    text_field: str = Field("text", description="field holding the text (text) or caption (image)")
    id_field: str | None = Field("id", description="field holding a stable id; rows without it use file:row")
    fields: list[str] | None = Field(None, description="record modality: fields kept in `data` (default all)")
    captions: str | None = Field(
        None, description="images: captions file (JSONL/CSV with file,caption) or COCO captions JSON"
    )
    delimiter: str | None = Field(None, description="csv/tsv: field delimiter (default , or tab)")
    label_field: str | None = Field(
        "label",
        description="field holding a class label that comes with the data (kept in `meta`/`data`): the "
        "manifest breaks drop counts down by it and warns when a filter removes one class far more",
    )


class IngestConfig(Strict):
    """How inputs are cut into workspace parts."""

    shard_rows: int = Field(50_000, gt=0, description="rows per workspace part")
    excerpt_chars: int = Field(200, gt=0, description="characters of a bad row kept in quarantine")


# Rule presets: a preset fills every threshold the config does not set itself.
TEXT_PRESETS: dict[str, dict[str, Any]] = {
    "web": {},  # the field defaults below: Gopher/C4-style, for web pages and documents
    # messages, reviews, captions: one line, few words, no stop-word or punctuation requirement; still
    # drops empty texts, digit/symbol runs and unbroken strings (URLs, base64). Measured in the README.
    "short": {
        "min_words": 1,
        "min_mean_word_length": 1.5,
        "max_mean_word_length": 20.0,
        "max_symbol_ratio": 1.0,
        "max_digit_ratio": 0.5,
        "max_dup_line_fraction": 0.5,
        "min_punct_line_fraction": 0.0,
        "min_stopwords": 0,
        "max_bullet_line_fraction": 1.0,
    },
}


class TextRules(Strict):
    """Gopher/C4-style heuristic thresholds for text records."""

    preset: Literal["web", "short"] = Field(
        "web",
        description="web: thresholds for web pages and documents; short: for messages, reviews and "
        "captions (thresholds set here override the preset's)",
    )
    min_chars: int = 1
    min_words: int = 20
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_ratio: float = 0.1
    max_digit_ratio: float = 0.25
    max_dup_line_fraction: float = 0.3
    min_punct_line_fraction: float = 0.1
    min_stopwords: int = 2
    max_bullet_line_fraction: float = 0.9

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("preset") in TEXT_PRESETS:
            return {**TEXT_PRESETS[data["preset"]], **data}
        return data


class ImageRules(Strict):
    """Thresholds for images."""

    min_width: int = 16
    min_height: int = 16
    max_aspect_ratio: float = 5.0
    min_pixel_std: float = 4.0


class RecordRules(Strict):
    """Checks for structured records."""

    required_fields: list[str] = Field(default_factory=list)
    max_null_fraction: float = 0.5


class RulesConfig(Strict):
    text: TextRules = Field(default_factory=TextRules)
    image: ImageRules = Field(default_factory=ImageRules)
    record: RecordRules = Field(default_factory=RecordRules)


class PublishConfig(Strict):
    """How kept records become Arrow shards."""

    split: str = "train"
    shard_rows: int = Field(100_000, gt=0)
    shard_bytes: int = Field(256 * 1024 * 1024, gt=0)
    batch_rows: int = Field(8192, gt=0, description="rows per record batch inside a shard")


class FlowConfig(Strict):
    """How the Prefect flow schedules map stages."""

    task_runner: Literal["thread", "dask"] = "thread"
    max_workers: int = Field(2, gt=0)
    dask_address: str | None = Field(None, description="scheduler address; none starts a local cluster")
    retries: int = Field(2, ge=0, description="retries of a task on I/O errors")


class StagesConfig(Strict):
    """Which optional stages the flow runs (ingest, exact dedup, rules, decide and publish always run)."""

    near: bool = Field(True, description="near-duplicates: MinHash-LSH (text, records), pHash (images)")
    lang: bool = Field(True, description="language identification (lang, lang_score; policy in [lang])")
    pii: bool = Field(True, description="PII detection (pii_count, pii_kinds; action in [pii])")
    embed: bool = Field(True, description="one embedding per text/record, cached by content hash ([embed])")
    semantic: bool = Field(
        False,
        description="semantic dedup over the embeddings ([semantic]; needs embed and lang). Off by default: "
        "with the default static vectors its links beyond exact and near copies were right 1 time in 8 on "
        'real web text; with embedder = "transformer" it is precise (README, benchmarks/semantic_web.py)',
    )
    label: bool = Field(
        False, description="push uncertain records to Label Studio (or import files) after decide"
    )


class DecontaminateConfig(Strict):
    """`[decontaminate]`: drop records that overlap an evaluation set (reason `contaminated`)."""

    against: list[str] = Field(
        default_factory=list,
        description="evaluation files (JSONL/CSV/TSV/Parquet) whose items must not leak into the published "
        "data; empty = the stage is off",
    )
    text_field: str = Field("text", description="field of the evaluation files holding the text")
    ngram: int = Field(
        13,
        gt=1,
        description="a shared span of this many words (normalised) is contamination (GPT-3's "
        "13-gram; 8 dropped 0.7 % more unrelated SMS: templated messages share 8-word spans)",
    )
    near_threshold: float = Field(
        0.75,
        gt=0,
        le=1,
        description="cosine of character 3-5-gram counts (whole texts) at or above this is a near "
        "duplicate of the item; short texts with typos also by edit ratio (SMS, 5 seeds: every planted "
        "copy caught, <= 0.7 % unrelated texts dropped)",
    )
    semantic_threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="cosine of the default embeddings at or above this is a semantic "
        "duplicate of the item (needs [stages] embed); none = off (static vectors of short texts: 0.93 "
        "dropped 3 % of unrelated SMS)",
    )


class CurateConfig(Strict):
    """A whole run."""

    workspace: str = "workspace"
    sources: list[SourceConfig] = Field(default_factory=list)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    stages: StagesConfig = Field(default_factory=StagesConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    near: NearConfig = Field(default_factory=NearConfig)
    embed: EmbedConfig = Field(default_factory=EmbedConfig)
    semantic: SemanticConfig = Field(default_factory=SemanticConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    lang: LangConfig = Field(default_factory=LangConfig)
    pii: PiiConfig = Field(default_factory=PiiConfig)
    labeling: LabelingConfig = Field(default_factory=LabelingConfig)
    decontaminate: DecontaminateConfig = Field(default_factory=DecontaminateConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    flow: FlowConfig = Field(default_factory=FlowConfig)


class ConfigError(ValueError):
    """A config file that cannot be used; the message names the file and the key."""


def _describe(err: dict[str, Any], model: type[BaseModel]) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    if err["type"] == "extra_forbidden":
        parent: Any = model
        for part in err["loc"][:-1]:
            field = getattr(parent, "model_fields", {}).get(part) if isinstance(part, str) else None
            if field is None:
                continue
            ann = field.annotation
            parent = getattr(ann, "__args__", (ann,))[0] if not hasattr(ann, "model_fields") else ann
        known = list(getattr(parent, "model_fields", {}))
        near = difflib.get_close_matches(str(err["loc"][-1]), known, n=1)
        hint = f" (did you mean '{near[0]}'?)" if near else f" (known keys: {', '.join(known)})"
        return f"unknown key '{loc}'{hint}"
    return f"'{loc}': {err['msg']}"


def parse_config(data: dict[str, Any], origin: str = "config") -> CurateConfig:
    """Validate a config mapping; errors name every bad key."""
    try:
        return CurateConfig.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(_describe(e, CurateConfig) for e in exc.errors())
        raise ConfigError(f"{origin}: {problems}") from None


def load_config(path: str | Path) -> CurateConfig:
    """Read curate.toml; relative source and workspace paths are taken from the file's folder."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such config file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    cfg = parse_config(data, str(path))
    base = path.resolve().parent
    cfg.workspace = str(_resolve(base, cfg.workspace))
    for src in cfg.sources:
        src.path = str(_resolve(base, src.path))
        if src.captions:
            src.captions = str(_resolve(base, src.captions))
    cfg.near.published = [str(_resolve(base, p)) for p in cfg.near.published]
    cfg.decontaminate.against = [str(_resolve(base, p)) for p in cfg.decontaminate.against]
    for section, key in (
        (cfg.quality, "model_dir"),
        (cfg.quality, "reference"),
        (cfg.embed, "cache_dir"),
        (cfg.labeling, "gold_path"),
    ):
        if getattr(section, key):
            setattr(section, key, str(_resolve(base, getattr(section, key))))
    return cfg


def _resolve(base: Path, p: str) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else base / q


def config_hash(section: BaseModel | dict[str, Any] | None) -> str:
    """Stable short hash of a config section, stored beside outputs to know when they are stale."""
    payload = section.model_dump(mode="json") if isinstance(section, BaseModel) else section
    blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:16]

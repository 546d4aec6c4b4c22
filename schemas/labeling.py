"""Config of the human labelling loop: Label Studio server, queues, routing budget, gold tasks, consensus."""

from __future__ import annotations

from typing import Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

TASK_KINDS = ("text_classification", "image_classification", "caption_check", "record_review", "pair_check")

# workspace tables of the labelling loop (written by labeling/, read by the decision and the catalog)
LABELS_TABLE = "labels"  # consensus label per (record, queue)
TASKS_TABLE = "label_tasks"  # what was pushed to which project
REVIEW_SUFFIX = "-review"  # queue of a second look at suspected label errors
AUDIT_QUEUE = "dedup-audit"  # queue of (kept record, dropped copy) pairs judged same / different
AUDIT_PAIRS_TABLE = "dedup_audit_pairs"  # one row per audited pair and its consensus answer
AUDIT_TABLE = "dedup_audit"  # per dedup stage: audited pairs, precision, Wilson interval
DATA_GOLD_TABLE = "gold_from_data"  # records trusted annotators agreed on (gold of later rounds)
SAME, DIFFERENT = "same", "different"  # answers of a pair_check task
# dedup stages an audit reports on: the check that linked the copy, split by modality for near dups
AUDIT_STAGES = ("exact", "near", "semantic", "image", "record")

# columns of the labelling tables (beyond schemas.columns)
LABEL_STATUS = "label_status"  # labelled / tie / low_agreement / held_only
HELD = "held"  # annotator whose gold accuracy fell below min_gold_accuracy: votes do not count
HELD_REASON = "held_reason"
MODEL_VERSION = "model_version"  # where a task's suggestion came from
OVERLAP = "overlap"  # annotators asked for a task (raised when a tie is re-routed)
COPY = "copy"  # 0 = the record's task; 1.. = a later gold copy of an already pushed record
KEPT_ID = "kept_id"  # audited pair: the kept record (the task's record is the dropped copy)
DEDUP_STAGE = "dedup_stage"
N_PAIRS = "n_pairs"
N_SAME = "n_same"
PRECISION = "precision"
CI_LOW, CI_HIGH = "ci_low", "ci_high"
FLAGGED = "flagged"
# what each answer of a generated labelling config means for the record
DECISION_OF_LABEL = {"keep": "keep", "drop": "drop", "correct": "keep", "wrong": "drop", "valid": "keep",
                     "invalid": "drop"}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueueConfig(_Strict):
    """One labelling queue = one Label Studio project, and the rule that routes records to it."""

    name: str = Field(min_length=1, description="queue name; the project is titled `curate: <name>`")
    task: Literal[
        "text_classification", "image_classification", "caption_check", "record_review", "pair_check"
    ] = Field("text_classification", description="what annotators do; decides the labelling config")
    modality: Literal["text", "image", "record"] | None = Field(
        None, description="records of this modality match; none = any modality"
    )
    field: str | None = Field(
        None,
        description="column, or `meta.<key>` / `data.<key>` JSON field, whose value routes records here",
    )
    values: list[str] = Field(
        default_factory=list, description="values of `field` routed to this queue; empty = any value"
    )
    choices: list[str] = Field(
        default_factory=list,
        description="labels to choose from; empty = keep/drop (text), correct/wrong (caption), "
        "valid/invalid (record); image classification needs its classes here",
    )
    categories: list[str] = Field(
        default_factory=list, description="text queues: optional second choice (e.g. domain)"
    )


def default_queues() -> list[QueueConfig]:
    """One queue per modality: text keep/drop, image caption check, structured-record review."""
    return [
        QueueConfig(name="text", task="text_classification", modality="text"),
        QueueConfig(name="image", task="caption_check", modality="image"),
        QueueConfig(name="record", task="record_review", modality="record"),
    ]


class LabelingConfig(_Strict):
    """`[labeling]` in curate.toml: where Label Studio is and how records reach it and come back."""

    url: str | None = Field(
        None, description="remote Label Studio base URL; none = the local server of `curate labelstudio up`"
    )
    token_env: str = Field(
        "LABEL_STUDIO_API_KEY", description="environment variable holding the remote server's API token"
    )
    url_env: str = Field("LABEL_STUDIO_URL", description="environment variable that may hold the remote URL")
    port: int | None = Field(None, ge=1, le=65535, description="local server port; none = a free port")
    username: str = Field("admin@curate.local", description="local server admin user (an email)")
    binary: str | None = Field(
        None, description="label-studio executable; none = .venv-labelstudio/bin/label-studio or PATH"
    )
    start_timeout_s: float = Field(240, gt=0, description="how long `up` waits for /health")
    queues: list[QueueConfig] = Field(default_factory=default_queues, description="routing rules, in order")
    budget: int = Field(100, ge=0, description="records sent to humans per round (gold tasks not counted)")
    strategy: Literal["uncertainty", "diversity", "random"] = Field(
        "uncertainty",
        description="uncertainty: most uncertain, one per k-means cluster; diversity: one per cluster; "
        "random: a seeded sample",
    )
    uncertainty: Literal["least_confidence", "margin", "entropy"] = Field(
        "least_confidence", description="how class probabilities become an uncertainty"
    )
    pool_factor: float = Field(
        4.0, ge=1, description="uncertainty strategy: cluster the budget x this most uncertain candidates"
    )
    gold_rate: float = Field(0.1, ge=0, le=1, description="gold tasks mixed in per pushed task")
    gold_path: str | None = Field(
        None,
        validation_alias=AliasChoices("gold_path", "gold"),
        description="gold file (csv/tsv/jsonl/parquet; `gold = ...` also accepted): a `label` column and an "
        "`id` or a `text` column (texts are matched to records); none = <ws>/gold.parquet",
    )
    gold_from_data: bool = Field(
        True, description="records that `gold_agree` trusted annotators labelled alike become gold too"
    )
    gold_agree: int = Field(2, ge=2, description="trusted annotators who must agree for gold from data")
    min_gold_accuracy: float = Field(
        0.7, ge=0, le=1, description="an annotator below this gold accuracy is held (votes stop counting)"
    )
    min_gold_answers: int = Field(4, ge=1, description="gold answers needed before an annotator can be held")
    overlap: int = Field(1, ge=1, description="annotators required per task")
    max_overlap: int = Field(
        5, ge=1, description="a tie / low-agreement task is re-routed to one more annotator up to this many"
    )
    min_confidence: float = Field(
        0.6, ge=0, le=1, description="consensus below this confidence (or a tie) gives no label: re-routed"
    )
    consensus: Literal["weighted", "dawid_skene", "crowdlab"] = Field(
        "weighted",
        description="weighted: vote weighted by gold accuracy; dawid_skene: EM; crowdlab: cleanlab's "
        "multi-annotator consensus with the classifier's probabilities",
    )
    knn_k: int = Field(
        7, ge=1, description="bootstrap suggestion without a trained model: k nearest labelled records"
    )
    min_dedup_precision: float = Field(
        0.9, ge=0, le=1, description="a dedup stage whose audited precision is below this is flagged"
    )
    retries: int = Field(4, ge=0, description="retries of a failed Label Studio call")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay, doubled each retry")
    timeout_s: float = Field(30, gt=0, description="HTTP timeout per Label Studio call")
    page_size: int = Field(100, ge=1, le=1000, description="tasks per page when pulling")
    poll_s: float = Field(30, gt=0, description="flow: seconds between checks for finished tasks")
    wait_timeout_s: float = Field(3600, ge=0, description="flow: give up waiting for labels after this")
    seed: int = Field(0, description="random seed of k-means, random picks and gold sampling")

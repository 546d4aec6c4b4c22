"""Config of the human labelling loop: Label Studio server, queues, routing budget, gold tasks, consensus."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

TASK_KINDS = ("text_classification", "image_classification", "caption_check", "record_review")

# workspace tables of the labelling loop (written by labeling/, read by the decision and the catalog)
LABELS_TABLE = "labels"  # consensus label per (record, queue)
TASKS_TABLE = "label_tasks"  # what was pushed to which project
REVIEW_SUFFIX = "-review"  # queue of a second look at suspected label errors
# what each answer of a generated labelling config means for the record
DECISION_OF_LABEL = {"keep": "keep", "drop": "drop", "correct": "keep", "wrong": "drop", "valid": "keep",
                     "invalid": "drop"}  # fmt: skip


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QueueConfig(_Strict):
    """One labelling queue = one Label Studio project, and the rule that routes records to it."""

    name: str = Field(min_length=1, description="queue name; the project is titled `curate: <name>`")
    task: Literal["text_classification", "image_classification", "caption_check", "record_review"] = Field(
        "text_classification", description="what annotators do; decides the labelling config"
    )
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
        None, description="table (parquet/csv/jsonl) of id,label with known answers; none = <ws>/gold.parquet"
    )
    overlap: int = Field(1, ge=1, description="annotators required per task")
    consensus: Literal["weighted", "dawid_skene"] = Field(
        "weighted", description="weighted: majority vote weighted by gold accuracy; dawid_skene: EM"
    )
    retries: int = Field(4, ge=0, description="retries of a failed Label Studio call")
    backoff_s: float = Field(0.5, ge=0, description="first retry delay, doubled each retry")
    timeout_s: float = Field(30, gt=0, description="HTTP timeout per Label Studio call")
    page_size: int = Field(100, ge=1, le=1000, description="tasks per page when pulling")
    poll_s: float = Field(30, gt=0, description="flow: seconds between checks for finished tasks")
    wait_timeout_s: float = Field(3600, ge=0, description="flow: give up waiting for labels after this")
    seed: int = Field(0, description="random seed of k-means, random picks and gold sampling")

"""Pull annotations back: the workspace's curate projects, page by page, mapped to record ids; then
consensus.

Writes (each atomically, only after every project was read):
  <ws>/annotations.parquet      one row per Label Studio annotation (kept across pulls, keyed by server +
                                annotation id, the newest version wins: nothing lost or counted twice)
  <ws>/labels.parquet           consensus per (record, queue)
  <ws>/annotators.parquet       per annotator: counts, gold accuracy, agreement with consensus
  <ws>/label_agreement.parquet  per queue: Krippendorff's alpha, Fleiss' kappa
  <ws>/gold_from_data.parquet   records trusted annotators agreed on (`gold_from_data`): later gold tasks
  <ws>/dedup_audit_pairs.parquet, <ws>/dedup_audit.parquet   when the dedup-audit queue has answers
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from labeling import config_xml, consensus
from labeling.client import PROJECT_PREFIX, Client, connect
from labeling.push import RECORD_KEY, read_gold, read_tasks
from pipeline.workspace import Workspace, write_parquet
from schemas import columns as C
from schemas.labeling import (
    AUDIT_PAIRS_TABLE,
    AUDIT_QUEUE,
    AUDIT_TABLE,
    DATA_GOLD_TABLE,
    DEDUP_STAGE,
    HELD,
    KEPT_ID,
    LABEL_STATUS,
    LABELS_TABLE,
    REVIEW_SUFFIX,
    LabelingConfig,
)

ANNOTATIONS = "annotations"
LABELS = LABELS_TABLE
ANNOTATORS_TABLE = "annotators"
AGREEMENT_TABLE = "label_agreement"

ANNOTATION_SCHEMA = {
    C.SERVER: pl.String,
    C.ANNOTATION_ID: pl.Int64,
    C.TASK_ID: pl.Int64,
    C.PROJECT_ID: pl.Int64,
    C.QUEUE: pl.String,
    C.ID: pl.String,
    C.ANNOTATOR: pl.String,
    C.LABEL_VALUE: pl.String,
    C.CATEGORY: pl.String,
    C.CORRECTION: pl.String,
    C.IS_GOLD: pl.Boolean,
    C.GOLD_LABEL: pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "updated_at": pl.Datetime("us", "UTC"),
}


@dataclass
class PullResult:
    """What a pull read and wrote."""

    projects: int
    annotations: int
    new: int
    labels: int
    paths: dict[str, str]


def _when(v: Any) -> datetime | None:
    if v is None or isinstance(v, datetime):
        return v
    return datetime.fromisoformat(str(v).replace("Z", "+00:00"))


def annotation_rows(task: dict[str, Any], queue: str, server: str, users: dict[int, str]) -> list[dict]:
    """Rows of one task's submitted (not cancelled) annotations."""
    rid = (task.get("data") or {}).get(RECORD_KEY)
    rows = []
    for a in task.get("annotations") or []:
        if a.get("was_cancelled"):
            continue
        parsed = config_xml.parse_result(a.get("result") or [])
        who = a.get("completed_by")
        who = who.get("id") if isinstance(who, dict) else who
        rows.append({
            C.SERVER: server, C.ANNOTATION_ID: int(a["id"]), C.TASK_ID: int(task["id"]),
            C.PROJECT_ID: int(task.get("project") or a.get("project") or 0), C.QUEUE: queue,
            C.ID: None if rid is None else str(rid),
            C.ANNOTATOR: users.get(int(who), f"user:{who}") if who is not None else "unknown",
            C.LABEL_VALUE: parsed[config_xml.LABEL_CONTROL], C.CATEGORY: parsed[config_xml.CATEGORY_CONTROL],
            C.CORRECTION: parsed[config_xml.CORRECTION_CONTROL], C.IS_GOLD: False, C.GOLD_LABEL: None,
            "created_at": _when(a.get("created_at")), "updated_at": _when(a.get("updated_at")),
        })  # fmt: skip
    return rows


def read_annotations(ws: Workspace) -> pl.DataFrame:
    """Annotations pulled so far (empty with its schema before the first pull)."""
    p = ws.global_path(ANNOTATIONS)
    if not p.exists():
        return pl.DataFrame(schema=ANNOTATION_SCHEMA)
    return pl.read_parquet(p).cast(ANNOTATION_SCHEMA)  # type: ignore[arg-type]


def fetch(client: Client, pushed: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """All annotations of the projects this workspace pushed to on the server (every curate project when
    it pushed to none there, e.g. tasks imported by hand); raises LabelStudioError, reads only."""
    projects = {pid: t[len(PROJECT_PREFIX):] for t, pid in client.projects().items()
                if t.startswith(PROJECT_PREFIX)}  # fmt: skip
    mine = pushed.filter(pl.col(C.SERVER) == client.url).unique(C.PROJECT_ID)
    if mine.height:  # another workspace's projects on a shared server are not ours
        projects = {}
    for pid, queue in mine.select(C.PROJECT_ID, C.QUEUE).iter_rows():
        projects.setdefault(int(pid), queue)
    users = client.users()
    rows: list[dict] = []
    for pid, queue in sorted(projects.items()):
        for task in client.iter_tasks(pid, with_annotations=True):
            rows.extend(annotation_rows(task, queue, client.url, users))
    return pl.DataFrame(rows, schema=ANNOTATION_SCHEMA), len(projects)


def merge(previous: pl.DataFrame, fresh: pl.DataFrame) -> pl.DataFrame:
    """Previous and fresh annotations, one row per (server, annotation id), the newest version kept."""
    both = pl.concat([previous, fresh])
    return (
        both.sort(C.SERVER, C.ANNOTATION_ID, "updated_at", nulls_last=False)
        .unique([C.SERVER, C.ANNOTATION_ID], keep="last", maintain_order=True)
        .sort(C.SERVER, C.PROJECT_ID, C.TASK_ID, C.ANNOTATION_ID)
    )


def attach_gold(ann: pl.DataFrame, pushed: pl.DataFrame, gold: pl.DataFrame) -> pl.DataFrame:
    """Mark annotations of gold tasks and add the known answer (from the pushed table or the gold table)."""
    g_tasks = (
        pushed.filter(pl.col(C.IS_GOLD))
        .select(C.SERVER, C.TASK_ID, pl.col(C.GOLD_LABEL).alias("_g1"))
        .unique([C.SERVER, C.TASK_ID])
    )
    g_ids = gold.select(C.ID, pl.col(C.GOLD_LABEL).alias("_g2")).unique(C.ID)
    out = ann.drop(C.IS_GOLD, C.GOLD_LABEL).join(g_tasks, on=[C.SERVER, C.TASK_ID], how="left")
    out = out.join(g_ids, on=C.ID, how="left")
    gl = pl.coalesce("_g1", "_g2")
    return out.with_columns(gl.alias(C.GOLD_LABEL), gl.is_not_null().alias(C.IS_GOLD)).select(
        list(ANNOTATION_SCHEMA)
    )


def labels_tables(
    ann: pl.DataFrame,
    cfg: LabelingConfig | str | None = None,
    pred_probs: dict[str, dict[str, float]] | None = None,
) -> dict[str, pl.DataFrame]:
    """The labels, annotators (with `held`) and agreement tables computed from annotations, and the gold
    made from the data (records `gold_agree` trusted annotators labelled alike)."""
    if isinstance(cfg, str) or cfg is None:
        cfg = LabelingConfig(consensus=cfg or "weighted")  # type: ignore[arg-type]
    usable = ann.filter(pl.col(C.ID).is_not_null())
    voted = usable.filter(pl.col(C.LABEL_VALUE).is_not_null())
    acc = consensus.held_annotators(
        consensus.gold_accuracy(voted), cfg.min_gold_accuracy, cfg.min_gold_answers
    )
    held = set(acc.filter(pl.col(HELD))[C.ANNOTATOR].to_list())
    labels = consensus.consensus(
        usable, cfg.consensus, acc, min_confidence=cfg.min_confidence, held=held, pred_probs=pred_probs
    )
    return {
        LABELS: labels,
        ANNOTATORS_TABLE: consensus.annotator_table(voted, labels, acc),
        AGREEMENT_TABLE: consensus.agreement(usable.filter(~pl.col(C.ANNOTATOR).is_in(list(held)))),
        DATA_GOLD_TABLE: data_gold(voted, acc, labels, cfg),
    }


def data_gold(
    ann: pl.DataFrame, acc: pl.DataFrame, labels: pl.DataFrame, cfg: LabelingConfig
) -> pl.DataFrame:
    """Records that at least `gold_agree` trusted annotators (not held; gold accuracy, where known, at
    least `min_gold_accuracy`) labelled alike, with no dissent: (id, queue, gold_label)."""
    schema = {C.ID: pl.String, C.QUEUE: pl.String, C.GOLD_LABEL: pl.String}
    if not cfg.gold_from_data or ann.height == 0:
        return pl.DataFrame(schema=schema)
    trusted = acc.filter(~pl.col(HELD) & (pl.col(C.GOLD_ACCURACY).fill_null(1.0) >= cfg.min_gold_accuracy))
    normal = ann.filter(
        ~pl.col(C.IS_GOLD) & (pl.col(C.QUEUE) != AUDIT_QUEUE) & ~pl.col(C.QUEUE).str.ends_with(REVIEW_SUFFIX)
    )
    votes = consensus.latest_votes(normal)
    per = votes.group_by(C.ID, C.QUEUE).agg(
        pl.col(C.LABEL_VALUE).n_unique().alias("_k"),
        pl.col(C.LABEL_VALUE).first().alias(C.GOLD_LABEL),
        pl.col(C.ANNOTATOR).is_in(trusted[C.ANNOTATOR].to_list()).sum().alias("_t"),
    )
    ok = per.filter((pl.col("_k") == 1) & (pl.col("_t") >= cfg.gold_agree))
    labelled = labels.filter(pl.col(C.LABEL_VALUE).is_not_null()).select(C.ID, C.QUEUE)
    return ok.join(labelled, on=[C.ID, C.QUEUE], how="semi").select(list(schema)).sort(C.QUEUE, C.ID)


def wilson(k: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (low, high) of k successes in n trials (95 % by default)."""
    k, n = np.asarray(k, np.float64), np.asarray(n, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = k / n
        den = 1 + z * z / n
        centre = (p + z * z / (2 * n)) / den
        half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return np.clip(centre - half, 0, 1), np.clip(centre + half, 0, 1)


def audit_tables(labels: pl.DataFrame, pushed: pl.DataFrame, min_precision: float) -> dict[str, pl.DataFrame]:
    """Per audited pair its consensus answer, and per dedup stage: pairs, same, precision, Wilson CI, flag."""
    from schemas.labeling import CI_HIGH, CI_LOW, FLAGGED, N_PAIRS, N_SAME, PRECISION, SAME

    pairs = (
        pushed.filter(pl.col(C.QUEUE) == AUDIT_QUEUE)
        .select(C.ID, KEPT_ID, DEDUP_STAGE)
        .unique(C.ID)
        .join(
            labels.filter(pl.col(C.QUEUE) == AUDIT_QUEUE).select(C.ID, C.LABEL_VALUE, LABEL_STATUS),
            on=C.ID,
            how="inner",
        )
        .sort(DEDUP_STAGE, C.ID)
    )
    judged = pairs.filter(pl.col(C.LABEL_VALUE).is_not_null())
    per = judged.group_by(DEDUP_STAGE).agg(
        pl.len().alias(N_PAIRS), (pl.col(C.LABEL_VALUE) == SAME).sum().cast(pl.Int64).alias(N_SAME)
    )
    lo, hi = wilson(per[N_SAME].to_numpy(), per[N_PAIRS].to_numpy())
    per = per.with_columns(
        (pl.col(N_SAME) / pl.col(N_PAIRS)).alias(PRECISION), pl.Series(CI_LOW, lo), pl.Series(CI_HIGH, hi)
    ).with_columns((pl.col(PRECISION) < min_precision).alias(FLAGGED))
    schema = {DEDUP_STAGE: pl.String, N_PAIRS: pl.Int64, N_SAME: pl.Int64, PRECISION: pl.Float64,
              CI_LOW: pl.Float64, CI_HIGH: pl.Float64, FLAGGED: pl.Boolean}  # fmt: skip
    return {AUDIT_PAIRS_TABLE: pairs, AUDIT_TABLE: per.cast(schema).select(list(schema)).sort(DEDUP_STAGE)}


def model_probs(ws: Workspace) -> dict[str, dict[str, float]]:
    """record id -> class -> probability from the retrained classifier's scores (`label_scores`)."""
    files = ws.stage_files("label_scores")
    if not files:
        return {}
    s = pl.scan_parquet(files).select(C.ID, C.PREDICTION, C.PREDICTION_SCORE).collect()
    return {rid: {p: float(sc)} for rid, p, sc in s.iter_rows() if p is not None and sc is not None}


def pull(workspace: str | Path, cfg: LabelingConfig | None = None, server: Any = "auto") -> PullResult:
    """Read every project's annotations, merge with earlier pulls, write the labels tables."""

    cfg = cfg or LabelingConfig()
    ws = Workspace(workspace)
    client = connect(ws.root, cfg, server)
    pushed = read_tasks(ws)
    fresh, n_projects = fetch(client, pushed)  # everything read before anything is written
    previous = read_annotations(ws)
    merged = attach_gold(merge(previous, fresh), pushed, read_gold(ws, cfg))
    old_keys = previous.select(C.SERVER, C.ANNOTATION_ID)
    new = fresh.join(old_keys, on=[C.SERVER, C.ANNOTATION_ID], how="anti").height
    probs = model_probs(ws) if cfg.consensus == "crowdlab" else None
    tables = labels_tables(merged, cfg, probs)
    if (pushed[C.QUEUE] == AUDIT_QUEUE).any():
        tables.update(audit_tables(tables[LABELS], pushed, cfg.min_dedup_precision))
    paths = {ANNOTATIONS: str(write_parquet(merged.to_arrow(), ws.global_path(ANNOTATIONS)))}
    for name, df in tables.items():
        paths[name] = str(write_parquet(df.to_arrow(), ws.global_path(name)))
    return PullResult(n_projects, merged.height, new, tables[LABELS].height, paths)


def progress(
    workspace: str | Path, cfg: LabelingConfig | None = None, server: Any = "auto"
) -> tuple[int, int]:
    """(pushed tasks with at least `overlap` submitted annotations, pushed tasks) on the server."""

    cfg = cfg or LabelingConfig()
    ws = Workspace(workspace)
    client = connect(ws.root, cfg, server)
    pushed = read_tasks(ws).filter(pl.col(C.SERVER) == client.url)
    mine = set(pushed[C.TASK_ID].to_list())
    done = 0
    for pid in sorted(set(pushed[C.PROJECT_ID].to_list())):
        for task in client.iter_tasks(int(pid), with_annotations=True):
            n = sum(1 for a in task.get("annotations") or [] if not a.get("was_cancelled"))
            done += int(int(task["id"]) in mine and n >= cfg.overlap)
    return done, len(mine)

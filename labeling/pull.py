"""Pull annotations back: every curate project, page by page, mapped to record ids; then consensus.

Writes (each atomically, only after every project was read):
  <ws>/annotations.parquet      one row per Label Studio annotation (kept across pulls, keyed by server +
                                annotation id, the newest version wins: nothing lost or counted twice)
  <ws>/labels.parquet           consensus per (record, queue)
  <ws>/annotators.parquet       per annotator: counts, gold accuracy, agreement with consensus
  <ws>/label_agreement.parquet  per queue: Krippendorff's alpha, Fleiss' kappa
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl

from labeling import config_xml, consensus
from labeling.client import PROJECT_PREFIX, Client
from labeling.push import RECORD_KEY, read_gold, read_tasks
from pipeline.workspace import Workspace, write_parquet
from schemas import columns as C
from schemas.labeling import LABELS_TABLE, LabelingConfig

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
    """All annotations of every curate project on the server (raises LabelStudioError, reads only)."""
    projects = {pid: t[len(PROJECT_PREFIX):] for t, pid in client.projects().items()
                if t.startswith(PROJECT_PREFIX)}  # fmt: skip
    mine = pushed.filter(pl.col(C.SERVER) == client.url).unique(C.PROJECT_ID)
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


def labels_tables(ann: pl.DataFrame, method: str = "weighted") -> dict[str, pl.DataFrame]:
    """The labels, annotators and agreement tables computed from annotations."""
    usable = ann.filter(pl.col(C.ID).is_not_null())
    labels = consensus.consensus(usable, method)  # type: ignore[arg-type]
    return {
        LABELS: labels,
        ANNOTATORS_TABLE: consensus.annotator_table(
            usable.filter(pl.col(C.LABEL_VALUE).is_not_null()), labels
        ),
        AGREEMENT_TABLE: consensus.agreement(usable),
    }


def pull(workspace: str | Path, cfg: LabelingConfig | None = None, server: Any = "auto") -> PullResult:
    """Read every project's annotations, merge with earlier pulls, write the labels tables."""
    from labeling import server as srv

    cfg = cfg or LabelingConfig()
    ws = Workspace(workspace)
    if server == "auto":
        server = srv.resolve(ws.root, cfg, require=True)
    client = Client(server, cfg)
    pushed = read_tasks(ws)
    fresh, n_projects = fetch(client, pushed)  # everything read before anything is written
    previous = read_annotations(ws)
    merged = attach_gold(merge(previous, fresh), pushed, read_gold(ws, cfg))
    old_keys = previous.select(C.SERVER, C.ANNOTATION_ID)
    new = fresh.join(old_keys, on=[C.SERVER, C.ANNOTATION_ID], how="anti").height
    tables = labels_tables(merged, cfg.consensus)
    paths = {ANNOTATIONS: str(write_parquet(merged.to_arrow(), ws.global_path(ANNOTATIONS)))}
    for name, df in tables.items():
        paths[name] = str(write_parquet(df.to_arrow(), ws.global_path(name)))
    return PullResult(n_projects, merged.height, new, tables[LABELS].height, paths)


def progress(
    workspace: str | Path, cfg: LabelingConfig | None = None, server: Any = "auto"
) -> tuple[int, int]:
    """(pushed tasks with at least `overlap` submitted annotations, pushed tasks) on the server."""
    from labeling import server as srv

    cfg = cfg or LabelingConfig()
    ws = Workspace(workspace)
    if server == "auto":
        server = srv.resolve(ws.root, cfg, require=True)
    client = Client(server, cfg)
    pushed = read_tasks(ws).filter(pl.col(C.SERVER) == client.url)
    mine = set(pushed[C.TASK_ID].to_list())
    done = 0
    for pid in sorted(set(pushed[C.PROJECT_ID].to_list())):
        for task in client.iter_tasks(int(pid), with_annotations=True):
            n = sum(1 for a in task.get("annotations") or [] if not a.get("was_cancelled"))
            done += int(int(task["id"]) in mine and n >= cfg.overlap)
    return done, len(mine)

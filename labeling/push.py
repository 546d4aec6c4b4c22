"""Push a round of uncertain records to Label Studio: one project per queue, predictions, gold, overlap.

Idempotent: `<ws>/label_tasks.parquet` records every pushed (record id, queue, server, project, task id);
before importing, push also reads the record ids already in each project, so a re-push after a crash
(tasks imported, table not yet written) imports nothing twice. Without a server, each queue is written as a
Label Studio import file `<ws>/labelstudio/import/<queue>.json` (+ its labelling config `<queue>.xml`).
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from labeling import config_xml, queues, route
from labeling.features import dense, image_matrix, text_matrix
from pipeline.stages.label_tasks import AWAITING_LABEL
from pipeline.workspace import Workspace, committed, write_parquet
from schemas import columns as C
from schemas.embed import QualityConfig
from schemas.labeling import (
    AUDIT_PAIRS_TABLE,
    AUDIT_QUEUE,
    AUDIT_STAGES,
    AUDIT_TABLE,
    COPY,
    DATA_GOLD_TABLE,
    DEDUP_STAGE,
    KEPT_ID,
    LABEL_STATUS,
    LABELS_TABLE,
    MODEL_VERSION,
    OVERLAP,
    REVIEW_SUFFIX,
    TASKS_TABLE,
    LabelingConfig,
    QueueConfig,
)

GOLD_TABLE = "gold"
IMPORT_DIR = "import"
DEFAULT_MODEL_VERSION = "curate"
RECORD_KEY = "record_id"  # task data key holding the record id
SKIP_STAGES = {"ingest", "quarantine", "labelstudio", "shards", "_done", "sample"}
ISSUES_TABLE = "label_issues"
OWN_TABLES = {TASKS_TABLE, "labels", "annotations", "annotators", "label_agreement", ISSUES_TABLE,
              DATA_GOLD_TABLE, AUDIT_TABLE, AUDIT_PAIRS_TABLE}  # fmt: skip
DUP_REASONS = (C.REASON_EXACT_DUP, C.REASON_NEAR_DUP, C.REASON_SEMANTIC_DUP)
SCORE_COLUMNS = (C.UNCERTAINTY, C.QUALITY, C.PREDICTION, C.PREDICTION_SCORE, C.DECISION, C.REASON)

TASKS_SCHEMA = {
    C.ID: pl.String,
    C.QUEUE: pl.String,
    C.SERVER: pl.String,
    C.PROJECT_ID: pl.Int64,
    C.TASK_ID: pl.Int64,
    C.IS_GOLD: pl.Boolean,
    C.GOLD_LABEL: pl.String,
    C.PREDICTION: pl.String,
    C.PREDICTION_SCORE: pl.Float64,
    C.UNCERTAINTY: pl.Float64,
    C.LABEL_RANK: pl.Int32,
    "pushed_at": pl.Datetime("us", "UTC"),
    MODEL_VERSION: pl.String,
    OVERLAP: pl.Int64,
    COPY: pl.Int64,
    KEPT_ID: pl.String,
    DEDUP_STAGE: pl.String,
}
AUDIT_CONFIG = QueueConfig(name=AUDIT_QUEUE, task="pair_check")


@dataclass
class QueuePush:
    """What one push did for one queue."""

    queue: str
    candidates: int = 0
    selected: int = 0
    gold: int = 0
    imported: int = 0
    already: int = 0
    project_id: int | None = None
    file: str | None = None
    rerouted: int = 0  # tied / low-agreement tasks asked of one more annotator
    pending: int = 0  # tasks of this queue pushed earlier and still awaiting labels
    why: str = ""  # when nothing was pushed: why


@dataclass
class PushResult:
    """What a push did: per queue counts, the server (or None when files were written)."""

    server: str | None
    queues: list[QueuePush] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return sum(q.imported for q in self.queues)


# --- readers ---------------------------------------------------------------------------------------------
def tasks_path(ws: Workspace) -> Path:
    """The local table of pushed tasks."""
    return ws.global_path(TASKS_TABLE)


def read_tasks(ws: Workspace) -> pl.DataFrame:
    """The pushed-tasks table (empty with its schema when nothing was pushed)."""
    p = tasks_path(ws)
    if not p.exists():
        return pl.DataFrame(schema=TASKS_SCHEMA)
    df = pl.read_parquet(p)
    missing = [pl.lit(None, t).alias(c) for c, t in TASKS_SCHEMA.items() if c not in df.columns]
    return df.with_columns(missing).select(list(TASKS_SCHEMA)).cast(TASKS_SCHEMA)  # type: ignore[arg-type]


def _stage_tables(ws: Workspace) -> list[list[Path]]:
    out = []
    for d in sorted(
        p for p in ws.root.iterdir() if p.is_dir() and p.name not in SKIP_STAGES and p.name[:1] != "."
    ):
        files = committed(d, ".parquet")  # never a temp file of a write in progress or killed
        if files:
            out.append(files)
    for f in committed(ws.root, ".parquet"):
        if f.stem not in OWN_TABLES and f.stem != GOLD_TABLE:
            out.append([f])
    return out


def read_candidates(ws: Workspace, wanted: tuple[str, ...] = ()) -> tuple[pl.DataFrame, np.ndarray | None]:
    """Ingested records (no image bytes) joined with whatever scorers wrote, and embeddings if any ran."""
    files = ws.stage_files("ingest")
    if not files:
        raise FileNotFoundError(f"{ws.root / 'ingest'} has no parquet files: run `curate ingest` first")
    base_cols = [C.ID, C.SOURCE, C.MODALITY, C.TEXT, C.IMAGE_PATH, C.DATA, C.META]
    frame = pl.scan_parquet(files).select(base_cols).collect().unique(C.ID, keep="first", maintain_order=True)
    emb: np.ndarray | None = None
    want = set(SCORE_COLUMNS) | set(wanted)
    for group in _stage_tables(ws):
        schema = pl.read_parquet_schema(group[0])
        if C.ID not in schema:
            continue
        cols = [c for c in schema if c in want and c not in frame.columns]
        if C.EMBEDDING in schema and emb is None:
            e = pl.scan_parquet(group).select(C.ID, C.EMBEDDING).collect().unique(C.ID, keep="first")
            joined = frame.select(C.ID).join(e, on=C.ID, how="left", maintain_order="left")
            if joined[C.EMBEDDING].null_count() == 0:
                emb = np.asarray(joined[C.EMBEDDING].to_list(), dtype=np.float32)
        if cols:
            extra = pl.scan_parquet(group).select([C.ID, *cols]).collect().unique(C.ID, keep="first")
            frame = frame.join(extra, on=C.ID, how="left", maintain_order="left")
    return frame, emb


def read_gold(ws: Workspace, cfg: LabelingConfig) -> pl.DataFrame:
    """Records with known answers (id, label), from `gold_path` or `<ws>/gold.parquet`; may be empty."""
    p = Path(cfg.gold_path) if cfg.gold_path else ws.global_path(GOLD_TABLE)
    empty = pl.DataFrame(schema={C.ID: pl.String, C.GOLD_LABEL: pl.String})
    if not p.exists():
        if cfg.gold_path:
            raise FileNotFoundError(f"gold file {p} not found ([labeling] gold)")
        return empty
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        g = pl.read_parquet(p)
    elif suffix in (".jsonl", ".ndjson"):
        g = pl.read_ndjson(p)
    else:
        g = pl.read_csv(p, separator="\t" if suffix == ".tsv" else ",", infer_schema=False)
    if C.LABEL_VALUE not in g.columns or (C.ID not in g.columns and C.TEXT not in g.columns):
        raise ValueError(
            f"gold file {p} needs a {C.LABEL_VALUE!r} column and an {C.ID!r} or {C.TEXT!r} column, "
            f"has {g.columns}"
        )
    bad = g.with_row_index("_row", offset=2).filter(pl.col(C.LABEL_VALUE).is_null())
    if bad.height:
        raise ValueError(f"gold file {p}: line {bad['_row'][0]} has no {C.LABEL_VALUE!r}")
    if C.ID not in g.columns:  # texts with known answers: match them to the ingested records
        files = ws.stage_files("ingest")
        recs = (
            pl.scan_parquet(files).select(C.ID, C.TEXT).collect() if files
            else pl.DataFrame(schema={C.ID: pl.String, C.TEXT: pl.String})
        )  # fmt: skip
        key = pl.col(C.TEXT).cast(pl.String).str.strip_chars()
        g = g.with_columns(key.alias("_k")).join(
            recs.with_columns(key.alias("_k")).select("_k", C.ID), on="_k", how="inner"
        )
    return g.select(
        pl.col(C.ID).cast(pl.String), pl.col(C.LABEL_VALUE).cast(pl.String).alias(C.GOLD_LABEL)
    ).unique(C.ID, keep="first", maintain_order=True)


def read_data_gold(ws: Workspace) -> pl.DataFrame:
    """Gold made from the data by the last pull (id, queue, gold_label); may be empty."""
    p = ws.global_path(DATA_GOLD_TABLE)
    if not p.exists():
        return pl.DataFrame(schema={C.ID: pl.String, C.QUEUE: pl.String, C.GOLD_LABEL: pl.String})
    return pl.read_parquet(p)


def read_images(ws: Workspace, ids: list[str]) -> dict[str, bytes]:
    """Encoded image bytes of the given records, read part by part."""
    want = set(ids)
    out: dict[str, bytes] = {}
    for f in ws.stage_files("ingest"):
        part = pl.scan_parquet(f).filter(pl.col(C.ID).is_in(list(want))).select(C.ID, C.IMAGE).collect()
        for rid, img in part.iter_rows():
            if img is not None:
                out[rid] = img
    return out


# --- functional core -------------------------------------------------------------------------------------
def features_for(frame: pl.DataFrame, images: dict[str, bytes] | None, seed: int = 0) -> np.ndarray:
    """Dense features for diversity when no embedding stage ran (TF-IDF of text/data, image features)."""
    if frame.height == 0:
        return np.zeros((0, 1), np.float32)
    if images:
        return dense(image_matrix([images.get(i) for i in frame[C.ID].to_list()]), seed=seed)
    texts = frame.select(pl.coalesce(C.TEXT, C.DATA, pl.lit(""))).to_series().to_list()
    return dense(text_matrix(texts), seed=seed)


def prediction_of(row: dict[str, Any], queue: QueueConfig) -> tuple[str, float] | None:
    """The suggested label for a row and its score (see `labeling.suggest`), when it is one of the queue's."""
    try:
        choices = config_xml.choices_of(queue)
    except ValueError:
        choices = []
    pred, score = row.get(C.PREDICTION), row.get(C.PREDICTION_SCORE)
    if pred is not None and str(pred) in choices:
        return str(pred), float(score if score is not None else 0.5)
    q = row.get(C.QUALITY)
    if q is not None and queue.task == "text_classification" and choices[:2] == ["keep", "drop"]:
        q = float(q)
        return ("keep", q) if q >= 0.5 else ("drop", 1.0 - q)
    return None


def _data_uri(img: bytes) -> str:
    kind = "png" if img[:8] == b"\x89PNG\r\n\x1a\n" else "gif" if img[:3] == b"GIF" else "jpeg"
    return f"data:image/{kind};base64,{base64.b64encode(img).decode()}"


def _html(row: dict[str, Any], image: bytes | None) -> str:
    """A record as HTML for a pair check: its image, or its text / JSON escaped."""
    if image:
        return f'<img src="{_data_uri(image)}" style="max-width:420px"/>'
    if row.get(C.MODALITY) == C.IMAGE_MODALITY and row.get(C.IMAGE_PATH):
        return f'<img src="{html.escape(str(row[C.IMAGE_PATH]))}" style="max-width:420px"/>'
    text = row.get(C.TEXT) or row.get(C.DATA) or ""
    return f'<pre style="white-space:pre-wrap">{html.escape(str(text))}</pre>'


def task_of(row: dict[str, Any], queue: QueueConfig, image: bytes | None, other: dict[str, Any] | None = None,
            other_image: bytes | None = None) -> dict[str, Any]:  # fmt: skip
    """One Label Studio task (data + the suggestion as a pre-annotation with its model_version) for a
    record; a pair check shows `other` (the kept record) beside it."""
    data: dict[str, Any] = {RECORD_KEY: row[C.ID], "source": row.get(C.SOURCE), "queue": queue.name}
    if row.get(COPY):
        data[COPY] = int(row[COPY])
    key = config_xml.object_name(queue)
    if queue.task == "text_classification":
        data[key] = row.get(C.TEXT) or row.get(C.DATA) or ""
    elif queue.task in ("image_classification", "caption_check"):
        data[key] = _data_uri(image) if image else (row.get(C.IMAGE_PATH) or "")
        if queue.task == "caption_check":
            data["caption"] = row.get(C.TEXT) or ""
    elif queue.task == "pair_check":
        data["a"] = _html(other or {}, other_image)
        data["b"] = _html(row, image)
        data[KEPT_ID] = (other or {}).get(C.ID)
        data[DEDUP_STAGE] = row.get(DEDUP_STAGE)
    else:
        raw = row.get(C.DATA) or row.get(C.TEXT) or "{}"
        try:
            data[key] = json.dumps(json.loads(raw), indent=2, ensure_ascii=False, sort_keys=True)
        except (TypeError, ValueError):
            data[key] = str(raw)
    task: dict[str, Any] = {"data": data}
    pred = prediction_of(row, queue)
    if pred is not None:
        label, score = pred
        result = [config_xml.choice_result(queue, label)]
        version = row.get(MODEL_VERSION) or DEFAULT_MODEL_VERSION
        task["predictions"] = [{"model_version": version, "score": score, "result": result}]
    return task


def plan_queue(
    frame: pl.DataFrame,
    queue: QueueConfig,
    budget: int,
    cfg: LabelingConfig,
    embeddings: np.ndarray | None,
    gold: pl.DataFrame,
    images: dict[str, bytes] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(picked rows with `label_rank`, gold rows to mix in) of one queue's candidates (already filtered)."""
    gold_ids = set(gold[C.ID].to_list())
    normal = frame.filter(~pl.col(C.ID).is_in(list(gold_ids)))
    emb = embeddings
    if emb is None and cfg.strategy != "random" and normal.height > budget:
        emb = features_for(normal, images, cfg.seed)
    sub_cfg = cfg.model_copy(update={"budget": budget})
    picked = route.route(normal, sub_cfg, emb).filter(pl.col(C.LABEL_RANK).is_not_null()).sort(C.LABEL_RANK)
    n_gold = math.ceil(cfg.gold_rate * picked.height) if picked.height else 0
    golds = frame.filter(pl.col(C.ID).is_in(list(gold_ids))).join(gold, on=C.ID, how="inner")
    if n_gold and golds.height:
        golds = golds.sample(n=min(n_gold, golds.height), seed=cfg.seed, shuffle=True)
    else:
        golds = golds.head(0)
    return picked, golds


def _mix(picked: list[dict[str, Any]], golds: list[dict[str, Any]], seed: int) -> list[dict[str, Any]]:
    """Gold tasks spread at random positions among the picked ones (annotators cannot tell them apart)."""
    out = list(picked)
    rng = np.random.default_rng(seed)
    for g in golds:
        out.insert(int(rng.integers(0, len(out) + 1)), g)
    return out


# --- the command -----------------------------------------------------------------------------------------
def _budgets(counts: dict[str, int], total: int) -> dict[str, int]:
    n = sum(counts.values())
    if n == 0:
        return dict.fromkeys(counts, 0)
    raw = {q: total * c / n for q, c in counts.items()}
    out = {q: min(counts[q], max(1 if counts[q] and total else 0, math.floor(v))) for q, v in raw.items()}
    left = total - sum(out.values())
    for q in sorted(raw, key=lambda q: raw[q] - math.floor(raw[q]), reverse=True):
        if left <= 0:
            break
        if out[q] < counts[q]:
            out[q] += 1
            left -= 1
    return out


def _send(
    ws: Workspace,
    q: QueueConfig,
    picked: pl.DataFrame,
    golds: pl.DataFrame,
    client: Any,
    cfg: LabelingConfig,
    pushed: pl.DataFrame,
    gold: pl.DataFrame,
    qp: QueuePush,
    kept: dict[str, dict[str, Any]] | None = None,
) -> pl.DataFrame:
    """Import one queue's picked + gold rows (or write its import file); the updated pushed table."""
    from labeling.client import PROJECT_PREFIX

    images: dict[str, bytes] = {}
    kept = kept or {}
    if q.task in ("image_classification", "caption_check", "pair_check"):
        want = picked[C.ID].to_list() + golds[C.ID].to_list()
        if q.task == "pair_check":
            want += [r[C.ID] for r in kept.values() if r.get(C.MODALITY) == C.IMAGE_MODALITY]
            want = [i for i in want if i is not None]
        images = read_images(ws, want)
    rows, grows = picked.to_dicts(), golds.to_dicts()

    def make(r: dict[str, Any]) -> dict[str, Any]:
        other = kept.get(r[C.ID])
        other_img = images.get(other[C.ID]) if other else None
        return task_of(r, q, images.get(r[C.ID]), other, other_img)

    tasks = [make(r) for r in rows]
    gtasks = [make(r) for r in grows]
    ordered = _mix(tasks, gtasks, cfg.seed)
    qp.selected, qp.gold = len(tasks), len(gtasks)
    if client is None:
        d = ws.root / "labelstudio" / IMPORT_DIR
        d.mkdir(parents=True, exist_ok=True)
        f = d / f"{q.name}.json"
        tmp = f.with_name(f".tmp-{f.name}")
        tmp.write_text(json.dumps(ordered, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(f)
        (d / f"{q.name}.xml").write_text(config_xml.label_config(q), encoding="utf-8")
        qp.file = str(f)
        return pushed
    pid = client.ensure_project(f"{PROJECT_PREFIX}{q.name}", config_xml.label_config(q), cfg.overlap)
    qp.project_id = pid

    def key(data: dict[str, Any]) -> tuple[str, int]:
        return str(data.get(RECORD_KEY)), int(data.get(COPY) or 0)

    on_server = {
        key(t["data"]): int(t["id"])
        for t in client.iter_tasks(pid, with_annotations=False)
        if t.get("data") and t["data"].get(RECORD_KEY) is not None
    }
    todo = [t for t in ordered if key(t["data"]) not in on_server]
    ids = client.import_tasks(pid, todo)
    qp.imported, qp.already = len(ids), len(ordered) - len(todo)
    versions = [p["model_version"] for t in todo for p in t.get("predictions", [])]
    if versions:  # Label Studio shows the predictions of the project's model_version: the most common one
        client.set_model_version(pid, max(sorted(set(versions)), key=versions.count))
    task_ids = dict(on_server)
    task_ids.update({key(t["data"]): tid for t, tid in zip(todo, ids, strict=True)})
    info = {(r[C.ID], int(r.get(COPY) or 0)): (r, False, None) for r in rows}
    info.update({(r[C.ID], int(r.get(COPY) or 0)): (r, True, r[C.GOLD_LABEL]) for r in grows})
    gold_map = dict(zip(gold[C.ID].to_list(), gold[C.GOLD_LABEL].to_list(), strict=True))
    mine = pushed.filter((pl.col(C.SERVER) == client.url) & (pl.col(C.PROJECT_ID) == pid))
    known = set(zip(mine[C.ID].to_list(), mine[COPY].fill_null(0).to_list(), strict=True))
    now = datetime.now(UTC)
    new_rows = []
    for (rid, copy), tid in task_ids.items():
        if (rid, copy) in known:
            continue
        r, is_gold, glabel = info.get((rid, copy), ({C.ID: rid}, rid in gold_map, gold_map.get(rid)))
        pred = prediction_of(r, q)
        other = kept.get(rid) or {}
        new_rows.append({
            C.ID: rid, C.QUEUE: q.name, C.SERVER: client.url, C.PROJECT_ID: pid, C.TASK_ID: tid,
            C.IS_GOLD: bool(is_gold), C.GOLD_LABEL: glabel,
            C.PREDICTION: pred[0] if pred else None, C.PREDICTION_SCORE: pred[1] if pred else None,
            C.UNCERTAINTY: r.get(C.UNCERTAINTY), C.LABEL_RANK: r.get(C.LABEL_RANK), "pushed_at": now,
            MODEL_VERSION: r.get(MODEL_VERSION) if pred else None, OVERLAP: cfg.overlap, COPY: copy,
            KEPT_ID: other.get(C.ID), DEDUP_STAGE: r.get(DEDUP_STAGE),
        })  # fmt: skip
    if new_rows:
        pushed = pl.concat([pushed, pl.DataFrame(new_rows, schema=TASKS_SCHEMA)])
        write_parquet(pushed.to_arrow(), tasks_path(ws))
    return pushed


def review_queue(q: QueueConfig) -> QueueConfig:
    """The review queue of a queue: same task and choices, its own project."""
    return q.model_copy(update={"name": f"{q.name}{REVIEW_SUFFIX}", "modality": None, "field": None})


def read_issues(ws: Workspace) -> pl.DataFrame:
    """Flagged label issues (id, queue) from the last retrain, or an empty frame."""
    p = ws.global_path(ISSUES_TABLE)
    if not p.exists():
        return pl.DataFrame(schema={C.ID: pl.String, C.QUEUE: pl.String})
    return pl.read_parquet(p).filter(pl.col(C.LABEL_ISSUE)).select(C.ID, C.QUEUE).unique()


def read_labels(ws: Workspace) -> pl.DataFrame:
    """The consensus labels of the last pull (empty before the first)."""
    p = ws.global_path(LABELS_TABLE)
    if not p.exists():
        return pl.DataFrame(schema={C.ID: pl.String, C.QUEUE: pl.String, C.LABEL_VALUE: pl.String,
                                    LABEL_STATUS: pl.String, C.N_ANNOTATIONS: pl.Int64})  # fmt: skip
    df = pl.read_parquet(p)
    if LABEL_STATUS not in df.columns:
        df = df.with_columns(pl.lit("labelled").alias(LABEL_STATUS))
    return df


UNSURE = ("tie", "low_agreement", "held_only")


def reroute(client: Any, ws: Workspace, q: QueueConfig, pushed: pl.DataFrame, labels: pl.DataFrame,
            cfg: LabelingConfig) -> tuple[int, pl.DataFrame]:  # fmt: skip
    """Ask one more annotator for each task of the queue whose consensus is tied, unsure or only held
    annotators': once everyone asked has answered, its overlap becomes one more than the answers it has
    (up to `max_overlap`) and it goes back into the label stream."""
    unsure = labels.filter((pl.col(C.QUEUE) == q.name) & pl.col(LABEL_STATUS).is_in(list(UNSURE)))
    if unsure.height == 0:
        return 0, pushed
    mine = (pl.col(C.SERVER) == client.url) & (pl.col(C.QUEUE) == q.name) & (pl.col(COPY).fill_null(0) == 0)
    tasks = pushed.filter(mine).join(unsure.select(C.ID, C.N_ANNOTATIONS), on=C.ID, how="inner")
    raised: dict[int, int] = {}
    for tid, cur, n in tasks.select(C.TASK_ID, OVERLAP, C.N_ANNOTATIONS).iter_rows():
        cur, n = int(cur or cfg.overlap), int(n or 0)
        if n >= cur and n < cfg.max_overlap:  # everyone asked has answered: one more than answered
            client.reroute(int(tid), n + 1)
            raised[int(tid)] = n + 1
    if raised:
        new = pl.DataFrame({C.TASK_ID: list(raised), "_o": list(raised.values())},
                           schema={C.TASK_ID: pl.Int64, "_o": pl.Int64})  # fmt: skip
        pushed = (
            pushed.join(new, on=C.TASK_ID, how="left", maintain_order="left")
            .with_columns(pl.coalesce("_o", OVERLAP).alias(OVERLAP))
            .drop("_o")
        )
        write_parquet(pushed.to_arrow(), tasks_path(ws))
    return len(raised), pushed


def pending_tasks(pushed: pl.DataFrame, labels: pl.DataFrame) -> pl.DataFrame:
    """Pushed tasks (not gold) whose record has no label yet in their queue."""
    done = labels.filter(pl.col(C.LABEL_VALUE).is_not_null()).select(C.ID, C.QUEUE)
    return pushed.filter(~pl.col(C.IS_GOLD)).join(done, on=[C.ID, C.QUEUE], how="anti")


def _why(q: str, frame: pl.DataFrame, cand: pl.DataFrame, pushed: pl.DataFrame, labels: pl.DataFrame,
         budget: int) -> str:  # fmt: skip
    """Why a queue pushed nothing, in the user's words."""
    if budget <= 0:
        return "the budget is 0 (`--budget N` or [labeling] budget)"
    in_q = frame.filter(pl.col(C.QUEUE) == q)
    if in_q.height == 0:
        return "no record matches this queue's rule ([labeling] queues: modality / field / values)"
    mine = pushed.filter(pl.col(C.QUEUE) == q)
    pend = pending_tasks(mine, labels)
    parts = []
    if pend.height:
        projects = ", ".join(str(p) for p in sorted(set(pend[C.PROJECT_ID].drop_nulls().to_list())))
        parts.append(f"{pend.height} tasks still await labels in project {projects}: annotate them, then "
                     "`curate label round` (or pull) before pushing more")  # fmt: skip
    n_pushed = in_q.filter(pl.col(C.ID).is_in(mine[C.ID].to_list())).height
    if n_pushed:
        parts.append(f"{n_pushed} of its {in_q.height} records were pushed before")
    rest = in_q.height - n_pushed - cand.filter(pl.col(C.QUEUE) == q).height
    if rest > 0:
        parts.append(f"{rest} were decided without humans (rules, duplicates, or a score outside the "
                     "[quality] label band)")  # fmt: skip
    return "; ".join(parts) or "every candidate was picked earlier"


def _suggested(rows: pl.DataFrame, sug: pl.DataFrame) -> pl.DataFrame:
    drop = [c for c in (C.PREDICTION, C.PREDICTION_SCORE, MODEL_VERSION) if c in rows.columns]
    return rows.drop(drop).join(sug.unique(C.ID), on=C.ID, how="left", maintain_order="left")


def _queue_pool(
    frame: pl.DataFrame, emb: np.ndarray | None, name: str
) -> tuple[pl.DataFrame, np.ndarray | None]:
    m = (frame[C.QUEUE] == name).fill_null(False).to_numpy()
    return frame.filter(pl.Series(m)), (emb[m] if emb is not None else None)


def push(
    workspace: str | Path,
    cfg: LabelingConfig | None = None,
    queue: str | None = None,
    budget: int | None = None,
    server: Any = "auto",
    band: QualityConfig | None = None,
) -> PushResult:
    """Route a round of records to their queues and import them (or write import files without a server).

    `server`: "auto" = the configured remote or the workspace's local server when one runs, else files;
    None = always files. Label issues flagged by the last retrain go to `<queue>-review` queues; tied or
    unsure labels are asked of one more annotator; gold tasks (the gold file, then gold made from the
    data) are mixed in at `gold_rate`; every task carries a suggestion (`labeling.suggest`).
    `band` (the `[quality]` section): records the classifier scored go to humans only when their quality
    lies in [drop_below, keep_above) and their uncertainty is at least `label_uncertainty`; the rest keep
    the classifier's verdict. `queue="dedup-audit"`: sampled duplicate pairs instead (`push_audit`).
    """
    from labeling import server as srv
    from labeling import suggest

    cfg = cfg or LabelingConfig()
    ws = Workspace(workspace)
    if server == "auto":
        server = srv.resolve(ws.root, cfg, require=False)
    client = None
    if server is not None:
        from labeling.client import Client

        client = Client(server, cfg)
    result = PushResult(server=server.url if server is not None else None)
    pushed = read_tasks(ws)
    if queue == AUDIT_QUEUE:
        push_audit(ws, cfg, cfg.budget if budget is None else budget, client, pushed, result)
        return result
    wanted = (*(q.field for q in cfg.queues if q.field), C.RULE_REASON)
    frame, emb = read_candidates(ws, wanted)  # type: ignore[arg-type]
    frame = queues.assign(frame, cfg.queues)
    gold = read_gold(ws, cfg)
    data_gold = read_data_gold(ws) if cfg.gold_from_data else read_data_gold(ws).head(0)
    labels = read_labels(ws)
    retrained = bool(ws.stage_files("label_scores"))
    normal = pushed.filter(pl.col(C.QUEUE) != AUDIT_QUEUE)

    keep = pl.col(C.QUEUE).is_not_null() & ~pl.col(C.ID).is_in(normal[C.ID].to_list())
    if C.DECISION in frame.columns:
        # records the decision routed to humans (not those it holds because they were pushed already)
        routed = (pl.col(C.DECISION) == C.LABEL) & (pl.col(C.REASON).fill_null("") != AWAITING_LABEL)
        if frame.select(routed.any()).item():
            keep = keep & routed
        elif C.REASON in frame.columns:
            keep = keep & ~(pl.col(C.REASON).is_in(list(DUP_REASONS)).fill_null(False))
    if band is not None and C.QUALITY in frame.columns:
        q = pl.col(C.QUALITY)
        unsure = (q >= band.drop_below) & (q < band.keep_above)
        if C.UNCERTAINTY in frame.columns:
            unsure = unsure & (pl.col(C.UNCERTAINTY) >= band.label_uncertainty)
        keep = keep & (q.is_null() | unsure.fill_null(False))
    mask = frame.select(keep.alias("m"))["m"].to_numpy()
    cand = frame.filter(pl.Series(mask))
    cand_emb = emb[mask] if emb is not None else None
    names = [q.name for q in cfg.queues if queue is None or q.name == queue]
    reviews = [q for q in cfg.queues if queue is None or f"{q.name}{REVIEW_SUFFIX}" == queue]
    if queue is not None and not names and not reviews:
        queues.by_name(cfg.queues, queue)  # raises, listing the queues
    gold_ids = gold[C.ID].to_list()
    counts = {n: cand.filter((pl.col(C.QUEUE) == n) & ~pl.col(C.ID).is_in(gold_ids)).height for n in names}
    total = cfg.budget if budget is None else budget
    budgets = _budgets(counts, total)
    for name in names:
        q = queues.by_name(cfg.queues, name)
        qmask = (cand[C.QUEUE] == name).to_numpy()
        qframe = cand.filter(pl.Series(qmask))
        qp = QueuePush(queue=name, candidates=counts[name])
        result.queues.append(qp)
        images = None
        if q.task in ("image_classification", "caption_check") and qframe.height and cand_emb is None:
            images = read_images(ws, qframe[C.ID].to_list())
        picked, golds = plan_queue(
            qframe, q, budgets[name], cfg, cand_emb[qmask] if cand_emb is not None else None, gold, images
        )
        golds = _data_gold_copies(frame, normal, data_gold, q, cfg, picked.height, golds)
        pool, pool_emb = _queue_pool(frame, emb, name)
        ids = picked[C.ID].to_list() + golds[C.ID].to_list()
        if ids:
            sug = suggest.suggest(
                pool, ids, q, cfg, labels.filter(pl.col(C.QUEUE) == name), pool_emb, retrained
            )
            picked, golds = _suggested(picked, sug), _suggested(golds, sug)
        if picked.height or golds.height:
            pushed = _send(ws, q, picked, golds, client, cfg, pushed, gold, qp)
        if client is not None:
            qp.rerouted, pushed = reroute(client, ws, q, pushed, labels, cfg)
        qp.pending = pending_tasks(pushed.filter(pl.col(C.QUEUE) == name), labels).height
        if not (qp.imported or qp.file or qp.rerouted or qp.already):
            qp.why = _why(name, frame, cand, pushed, labels, total)
    issues = read_issues(ws)
    for base in reviews:
        rq = review_queue(base)
        done = pushed.filter(pl.col(C.QUEUE) == rq.name)[C.ID].to_list()
        ids = issues.filter((pl.col(C.QUEUE) == base.name) & ~pl.col(C.ID).is_in(done))[C.ID].to_list()
        if not ids:
            continue
        qp = QueuePush(queue=rq.name, candidates=len(ids))
        result.queues.append(qp)
        rows = frame.filter(pl.col(C.ID).is_in(ids)).with_columns(pl.lit(None, pl.Int32).alias(C.LABEL_RANK))
        pool, pool_emb = _queue_pool(frame, emb, base.name)
        sug = suggest.suggest(pool, ids, rq, cfg, labels.filter(pl.col(C.QUEUE) == base.name), pool_emb,
                              retrained)  # fmt: skip
        rows = _suggested(rows, sug)
        pushed = _send(ws, rq, rows, rows.head(0), client, cfg, pushed, gold, qp)
    return result


def _data_gold_copies(frame: pl.DataFrame, pushed: pl.DataFrame, data_gold: pl.DataFrame, q: QueueConfig,
                      cfg: LabelingConfig, n_picked: int, golds: pl.DataFrame) -> pl.DataFrame:  # fmt: skip
    """The gold rows of a push topped up with copies of records trusted annotators agreed on."""
    want = math.ceil(cfg.gold_rate * n_picked) if n_picked else 0
    dg = data_gold.filter(pl.col(C.QUEUE) == q.name)
    if golds.height >= want or dg.height == 0:
        return golds
    mine = pushed.filter(pl.col(C.QUEUE) == q.name)
    used = mine.filter(pl.col(C.IS_GOLD) & (pl.col(COPY).fill_null(0) > 0))[C.ID].to_list()
    dg = dg.filter(~pl.col(C.ID).is_in(used) & ~pl.col(C.ID).is_in(golds[C.ID].to_list()))
    if dg.height == 0:
        return golds
    dg = dg.sample(n=min(want - golds.height, dg.height), seed=cfg.seed, shuffle=True)
    copies = mine.group_by(C.ID).agg(pl.col(COPY).fill_null(0).max().alias("_c"))
    rows = (
        frame.join(dg.select(C.ID, C.GOLD_LABEL), on=C.ID, how="inner")
        .join(copies, on=C.ID, how="left")
        .with_columns((pl.col("_c").fill_null(0) + 1).cast(pl.Int64).alias(COPY))
        .drop("_c")
    )
    return pl.concat([golds, rows], how="diagonal_relaxed")


def audit_stage(reason: str | None, modality: str | None) -> str | None:
    """The dedup stage an audited pair belongs to: exact, near, semantic, or image / record for near
    duplicates of those modalities."""
    if reason == C.REASON_EXACT_DUP:
        return "exact"
    if reason == C.REASON_SEMANTIC_DUP:
        return "semantic"
    if reason == C.REASON_NEAR_DUP:
        return {C.IMAGE_MODALITY: "image", C.RECORD_MODALITY: "record"}.get(modality or "", "near")
    return None


def audit_candidates(ws: Workspace) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(dropped copies with `dedup_stage` and `kept_id`, the records of both sides) from the dedup stage."""
    p = ws.global_path("dedup")
    if not p.exists():
        raise FileNotFoundError(f"{p} is missing: run `curate run` (its dedup stage) before a dedup audit")
    d = pl.read_parquet(p, columns=[C.ID, C.DUP_OF, C.DUP_REASON]).filter(pl.col(C.DUP_OF).is_not_null())
    files = ws.stage_files("ingest")
    recs = pl.scan_parquet(files).select(C.ID, C.SOURCE, C.MODALITY, C.TEXT, C.IMAGE_PATH, C.DATA).collect()
    recs = recs.unique(C.ID, keep="first")
    d = d.join(recs.select(C.ID, C.MODALITY), on=C.ID, how="left")
    stages = [audit_stage(r, m) for r, m in d.select(C.DUP_REASON, C.MODALITY).iter_rows()]
    d = d.with_columns(pl.Series(DEDUP_STAGE, stages, pl.String), pl.col(C.DUP_OF).alias(KEPT_ID))
    return d.filter(pl.col(DEDUP_STAGE).is_not_null()), recs


def push_audit(ws: Workspace, cfg: LabelingConfig, budget: int, client: Any, pushed: pl.DataFrame,
               result: PushResult) -> pl.DataFrame:  # fmt: skip
    """Send up to `budget` sampled (kept record, dropped copy) pairs, spread evenly over the dedup stages,
    for a same / different judgement (project `curate: dedup-audit`)."""
    qp = QueuePush(queue=AUDIT_QUEUE)
    result.queues.append(qp)
    pairs, recs = audit_candidates(ws)
    done = pushed.filter(pl.col(C.QUEUE) == AUDIT_QUEUE)[C.ID].to_list()
    pairs = pairs.filter(~pl.col(C.ID).is_in(done))
    qp.candidates = pairs.height
    counts = {s: pairs.filter(pl.col(DEDUP_STAGE) == s).height for s in AUDIT_STAGES}
    counts = {s: n for s, n in counts.items() if n}
    share = _even(counts, budget)
    picked = []
    for s, n in share.items():
        if n:
            picked.append(pairs.filter(pl.col(DEDUP_STAGE) == s).sample(n=n, seed=cfg.seed, shuffle=True))
    if not picked:
        qp.why = (
            "the budget is 0"
            if budget <= 0
            # noqa: F541
            else f"no duplicate pairs left to audit ({len(done)} audited or awaiting answers)"
        )
        qp.pending = pending_tasks(pushed.filter(pl.col(C.QUEUE) == AUDIT_QUEUE), read_labels(ws)).height
        return pushed
    rows = (
        pl.concat(picked)
        .with_row_index(C.LABEL_RANK, offset=1)
        .with_columns(pl.col(C.LABEL_RANK).cast(pl.Int32))
    )
    rows = rows.join(recs.drop(C.MODALITY), on=C.ID, how="left", maintain_order="left")
    kept_rows = {r[C.ID]: r for r in recs.filter(pl.col(C.ID).is_in(rows[KEPT_ID].to_list())).to_dicts()}
    kept = {rid: kept_rows.get(k, {C.ID: k}) for rid, k in rows.select(C.ID, KEPT_ID).iter_rows()}
    prior = _audit_prior(ws)
    rows = rows.with_columns(
        pl.lit("same").alias(C.PREDICTION),
        pl.col(DEDUP_STAGE)
        .replace_strict(prior, default=0.9, return_dtype=pl.Float64)
        .alias(C.PREDICTION_SCORE),
        pl.lit("curate-dedup-verdict").alias(MODEL_VERSION),
    )
    empty_gold = pl.DataFrame(schema={C.ID: pl.String, C.GOLD_LABEL: pl.String})
    pushed = _send(ws, AUDIT_CONFIG, rows, rows.head(0), client, cfg, pushed, empty_gold, qp, kept)
    return pushed


def _even(counts: dict[str, int], total: int) -> dict[str, int]:
    """`total` spread as evenly as the counts allow."""
    out = dict.fromkeys(counts, 0)
    left = max(0, total)
    while left > 0:
        open_ = [s for s in counts if out[s] < counts[s]]
        if not open_:
            break
        for s in open_:
            if left == 0:
                break
            out[s] += 1
            left -= 1
    return out


def _audit_prior(ws: Workspace) -> dict[str, float]:
    """Audited precision per stage from earlier rounds (the suggestion's confidence)."""
    p = ws.global_path(AUDIT_TABLE)
    if not p.exists():
        return {}
    from schemas.labeling import PRECISION

    t = pl.read_parquet(p)
    return {s: float(v) for s, v in t.select(DEDUP_STAGE, PRECISION).iter_rows() if v is not None}


def refresh_predictions(
    workspace: str | Path, cfg: LabelingConfig | None = None, server: Any = "auto"
) -> int:
    """Replace the suggestion of every pending task (no label yet) with the newest one (the retrained
    classifier's, else kNN on the labels so far); the number of tasks whose suggestion changed."""
    from labeling import suggest
    from labeling.client import connect

    cfg = cfg or LabelingConfig()
    ws = Workspace(workspace)
    client = connect(ws.root, cfg, server)
    pushed = read_tasks(ws)
    labels = read_labels(ws)
    pend = pending_tasks(pushed.filter((pl.col(C.SERVER) == client.url) & (pl.col(C.QUEUE) != AUDIT_QUEUE)),
                         labels)  # fmt: skip
    if pend.height == 0:
        return 0
    wanted = (*(q.field for q in cfg.queues if q.field), C.RULE_REASON)
    frame, emb = read_candidates(ws, wanted)  # type: ignore[arg-type]
    frame = queues.assign(frame, cfg.queues)
    retrained = bool(ws.stage_files("label_scores"))
    changed: dict[int, tuple[str, float, str]] = {}
    for (name,), part in pend.group_by([C.QUEUE], maintain_order=True):
        base = name[: -len(REVIEW_SUFFIX)] if name.endswith(REVIEW_SUFFIX) else name
        q = next((x for x in cfg.queues if x.name == base), None)
        if q is None:
            continue
        q = review_queue(q) if base != name else q
        pool, pool_emb = _queue_pool(frame, emb, base)
        sug = suggest.suggest(pool, part[C.ID].unique().to_list(), q, cfg,
                              labels.filter(pl.col(C.QUEUE) == base), pool_emb, retrained)  # fmt: skip
        joined = part.select(C.TASK_ID, C.PROJECT_ID, C.ID, C.PREDICTION, MODEL_VERSION).join(
            sug.rename({C.PREDICTION: "_p", C.PREDICTION_SCORE: "_s", MODEL_VERSION: "_v"}),
            on=C.ID,
            how="left",
        )
        versions: list[str] = []
        for tid, _pid, _rid, old_p, old_v, new_p, new_s, new_v in joined.iter_rows():
            if new_p is None:
                continue
            versions.append(new_v)
            if (old_p, old_v) != (new_p, new_v):
                client.replace_prediction(int(tid), [config_xml.choice_result(q, new_p)], float(new_s), new_v)
                changed[int(tid)] = (new_p, float(new_s), new_v)
        if versions:
            for pid in sorted(set(part[C.PROJECT_ID].to_list())):
                client.set_model_version(int(pid), max(sorted(set(versions)), key=versions.count))
    if changed:
        upd = pl.DataFrame(
            {C.TASK_ID: list(changed), "_p": [v[0] for v in changed.values()],
             "_s": [v[1] for v in changed.values()], "_v": [v[2] for v in changed.values()]},
            schema={C.TASK_ID: pl.Int64, "_p": pl.String, "_s": pl.Float64, "_v": pl.String},
        )  # fmt: skip
        pushed = (
            pushed.join(upd, on=C.TASK_ID, how="left", maintain_order="left")
            .with_columns(
                pl.coalesce("_p", C.PREDICTION).alias(C.PREDICTION),
                pl.coalesce("_s", C.PREDICTION_SCORE).alias(C.PREDICTION_SCORE),
                pl.coalesce("_v", MODEL_VERSION).alias(MODEL_VERSION),
            )
            .drop("_p", "_s", "_v")
        )
        write_parquet(pushed.to_arrow(), tasks_path(ws))
    return len(changed)

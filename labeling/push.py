"""Push a round of uncertain records to Label Studio: one project per queue, predictions, gold, overlap.

Idempotent: `<ws>/label_tasks.parquet` records every pushed (record id, queue, server, project, task id);
before importing, push also reads the record ids already in each project, so a re-push after a crash
(tasks imported, table not yet written) imports nothing twice. Without a server, each queue is written as a
Label Studio import file `<ws>/labelstudio/import/<queue>.json` (+ its labelling config `<queue>.xml`).
"""

from __future__ import annotations

import base64
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
from pipeline.workspace import Workspace, committed, write_parquet
from schemas import columns as C
from schemas.embed import QualityConfig
from schemas.labeling import REVIEW_SUFFIX, TASKS_TABLE, LabelingConfig, QueueConfig

GOLD_TABLE = "gold"
IMPORT_DIR = "import"
MODEL_VERSION = "curate"
RECORD_KEY = "record_id"  # task data key holding the record id
SKIP_STAGES = {"ingest", "quarantine", "labelstudio", "shards", "_done", "sample"}
ISSUES_TABLE = "label_issues"
OWN_TABLES = {TASKS_TABLE, "labels", "annotations", "annotators", "label_agreement", ISSUES_TABLE}
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
}


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
    return pl.read_parquet(p).cast(TASKS_SCHEMA)  # type: ignore[arg-type]


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
            raise FileNotFoundError(f"gold table {p} not found ([labeling] gold_path)")
        return empty
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        g = pl.read_parquet(p)
    elif suffix in (".jsonl", ".ndjson"):
        g = pl.read_ndjson(p)
    else:
        g = pl.read_csv(p, separator="\t" if suffix == ".tsv" else ",", infer_schema=False)
    if C.ID not in g.columns or C.LABEL_VALUE not in g.columns:
        raise ValueError(f"gold table {p} needs columns {C.ID!r} and {C.LABEL_VALUE!r}, has {g.columns}")
    return g.select(pl.col(C.ID).cast(pl.String), pl.col(C.LABEL_VALUE).cast(pl.String).alias(C.GOLD_LABEL))


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
    """The model's suggested label for a row and its score, when a scorer gives one for this queue."""
    choices = config_xml.choices_of(queue)
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


def task_of(row: dict[str, Any], queue: QueueConfig, image: bytes | None) -> dict[str, Any]:
    """One Label Studio task (data + the model's prediction as a pre-annotation) for a record."""
    data: dict[str, Any] = {RECORD_KEY: row[C.ID], "source": row.get(C.SOURCE), "queue": queue.name}
    key = config_xml.object_name(queue)
    if queue.task == "text_classification":
        data[key] = row.get(C.TEXT) or row.get(C.DATA) or ""
    elif queue.task in ("image_classification", "caption_check"):
        data[key] = _data_uri(image) if image else (row.get(C.IMAGE_PATH) or "")
        if queue.task == "caption_check":
            data["caption"] = row.get(C.TEXT) or ""
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
        task["predictions"] = [{"model_version": MODEL_VERSION, "score": score, "result": result}]
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
) -> pl.DataFrame:
    """Import one queue's picked + gold rows (or write its import file); the updated pushed table."""
    from labeling.client import PROJECT_PREFIX

    images: dict[str, bytes] = {}
    if q.task in ("image_classification", "caption_check"):
        images = read_images(ws, picked[C.ID].to_list() + golds[C.ID].to_list())
    rows, grows = picked.to_dicts(), golds.to_dicts()
    tasks = [task_of(r, q, images.get(r[C.ID])) for r in rows]
    gtasks = [task_of(r, q, images.get(r[C.ID])) for r in grows]
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
    on_server = {
        str(t["data"].get(RECORD_KEY)): int(t["id"])
        for t in client.iter_tasks(pid, with_annotations=False)
        if t.get("data") and t["data"].get(RECORD_KEY) is not None
    }
    todo = [t for t in ordered if t["data"][RECORD_KEY] not in on_server]
    ids = client.import_tasks(pid, todo)
    qp.imported, qp.already = len(ids), len(ordered) - len(todo)
    task_ids = dict(on_server)
    task_ids.update({t["data"][RECORD_KEY]: tid for t, tid in zip(todo, ids, strict=True)})
    info = {r[C.ID]: (r, False, None) for r in rows}
    info.update({r[C.ID]: (r, True, r[C.GOLD_LABEL]) for r in grows})
    gold_map = dict(zip(gold[C.ID].to_list(), gold[C.GOLD_LABEL].to_list(), strict=True))
    known = set(
        pushed.filter((pl.col(C.SERVER) == client.url) & (pl.col(C.PROJECT_ID) == pid))[C.ID].to_list()
    )
    now = datetime.now(UTC)
    new_rows = []
    for rid, tid in task_ids.items():
        if rid in known:
            continue
        r, is_gold, glabel = info.get(rid, ({C.ID: rid}, rid in gold_map, gold_map.get(rid)))
        pred = prediction_of(r, q)
        new_rows.append({
            C.ID: rid, C.QUEUE: q.name, C.SERVER: client.url, C.PROJECT_ID: pid, C.TASK_ID: tid,
            C.IS_GOLD: bool(is_gold), C.GOLD_LABEL: glabel,
            C.PREDICTION: pred[0] if pred else None, C.PREDICTION_SCORE: pred[1] if pred else None,
            C.UNCERTAINTY: r.get(C.UNCERTAINTY), C.LABEL_RANK: r.get(C.LABEL_RANK), "pushed_at": now,
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
    None = always files. Label issues flagged by the last retrain go to `<queue>-review` queues.
    `band` (the `[quality]` section): records the classifier scored go to humans only when their quality
    lies in [drop_below, keep_above) and their uncertainty is at least `label_uncertainty`; the rest keep
    the classifier's verdict.
    """
    from labeling import server as srv

    cfg = cfg or LabelingConfig()
    ws = Workspace(workspace)
    if server == "auto":
        server = srv.resolve(ws.root, cfg, require=False)
    wanted = tuple(q.field for q in cfg.queues if q.field)
    frame, emb = read_candidates(ws, wanted)
    frame = queues.assign(frame, cfg.queues)
    gold = read_gold(ws, cfg)
    pushed = read_tasks(ws)
    client = None
    if server is not None:
        from labeling.client import Client

        client = Client(server, cfg)

    keep = pl.col(C.QUEUE).is_not_null() & ~pl.col(C.ID).is_in(pushed[C.ID].to_list())
    if C.DECISION in frame.columns:
        if (frame[C.DECISION] == C.LABEL).any():
            keep = keep & (pl.col(C.DECISION) == C.LABEL)
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
    budgets = _budgets(counts, cfg.budget if budget is None else budget)
    result = PushResult(server=server.url if server is not None else None)
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
        if picked.height or golds.height:
            pushed = _send(ws, q, picked, golds, client, cfg, pushed, gold, qp)
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
        pushed = _send(ws, rq, rows, rows.head(0), client, cfg, pushed, gold, qp)
    return result

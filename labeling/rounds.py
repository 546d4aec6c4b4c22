"""One labelling round (`curate label round`): pull -> retrain -> re-score -> refresh the pending tasks'
suggestions -> push the next most useful tasks (uncertain + diverse, label-error reviews, ties asked of
one more annotator), with a plain-text account of what each step did."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from labeling.pull import ANNOTATORS_TABLE, PullResult, pull
from labeling.push import PushResult, push, refresh_predictions
from labeling.retrain import RetrainResult, retrain
from pipeline.workspace import Workspace
from schemas import columns as C
from schemas.embed import QualityConfig
from schemas.labeling import HELD, HELD_REASON, LABEL_STATUS, LABELS_TABLE, LabelingConfig


@dataclass
class RoundResult:
    """What a round did, step by step, and the lines that tell it."""

    pulled: PullResult | None = None
    retrained: RetrainResult | None = None
    refreshed: int = 0
    pushed: PushResult | None = None
    lines: list[str] = field(default_factory=list)


def held_lines(workspace: str | Path) -> list[str]:
    """One line per held annotator (who and why)."""
    p = Workspace(workspace).global_path(ANNOTATORS_TABLE)
    if not p.exists():
        return []
    t = pl.read_parquet(p)
    if HELD not in t.columns:
        return []
    return [f"held: {a} ({why}); their answers no longer count"
            for a, why in t.filter(pl.col(HELD)).select(C.ANNOTATOR, HELD_REASON).iter_rows()]  # fmt: skip


def label_lines(workspace: str | Path) -> list[str]:
    """How many records got a label, and how many are tied / unsure / answered only by held annotators."""
    p = Workspace(workspace).global_path(LABELS_TABLE)
    if not p.exists():
        return []
    t = pl.read_parquet(p)
    if LABEL_STATUS not in t.columns:
        return []
    counts = dict(t.group_by(LABEL_STATUS).len().iter_rows())
    unsure = {k: v for k, v in counts.items() if k != "labelled"}
    line = f"consensus: {counts.get('labelled', 0)} records labelled"
    if unsure:
        line += " ; no label yet: " + ", ".join(
            f"{v} {k.replace('_', ' ')}" for k, v in sorted(unsure.items())
        )
        line += " (re-routed to one more annotator by the push)"
    return [line]


def push_lines(r: PushResult) -> list[str]:
    """Per queue: what was imported / written, re-routed, and why nothing was pushed."""
    out = []
    for q in r.queues:
        if q.file:
            out.append(f"{q.queue}: {q.selected} tasks + {q.gold} gold written to {q.file}")
            continue
        parts = []
        if q.imported or q.already:
            parts.append(f"project {q.project_id}: imported {q.imported} ({q.gold} gold), "
                         f"{q.already} already "
                         f"there, {q.candidates} candidates")  # fmt: skip
        if q.rerouted:
            parts.append(f"{q.rerouted} tied/unsure tasks asked of one more annotator")
        if not parts:
            parts.append(f"nothing to push: {q.why}" if q.why else "nothing to push")
        elif q.pending:
            parts.append(f"{q.pending} tasks await labels")
        out.append(f"{q.queue}: " + "; ".join(parts))
    return out


def run_round(
    workspace: str | Path,
    cfg: LabelingConfig | None = None,
    budget: int | None = None,
    server: Any = "auto",
    band: QualityConfig | None = None,
    queue: str | None = None,
) -> RoundResult:
    """Pull, retrain, re-score, refresh suggestions, push; the result says what each step did."""
    from labeling import server as srv

    cfg = cfg or LabelingConfig()
    if server == "auto":
        server = srv.resolve(Path(workspace), cfg, require=True)
    out = RoundResult()
    out.pulled = pull(workspace, cfg, server=server)
    p = out.pulled
    out.lines.append(f"pull: {p.annotations} annotations ({p.new} new) from {p.projects} projects -> "
                     f"{p.labels} records")  # fmt: skip
    out.lines += label_lines(workspace)
    out.lines += held_lines(workspace)
    out.retrained = retrain(workspace, cfg)
    r = out.retrained
    if r.queues:
        out.lines.append(f"retrain: {', '.join(r.queues)}: {r.scored} records re-scored, "
                         f"{r.issues} suspected "
                         "label errors (sent to review)")  # fmt: skip
    else:
        out.lines.append("retrain: not enough labels yet (a queue needs 4 labels of 2 classes): suggestions "
                         "come from the bootstrap (kNN on the labels so far, or the rules)")  # fmt: skip
    out.refreshed = refresh_predictions(workspace, cfg, server=server)
    out.lines.append(f"suggestions refreshed on {out.refreshed} pending tasks")
    out.pushed = push(workspace, cfg, queue, budget, server=server, band=band)
    out.lines += ["push: " + ln for ln in push_lines(out.pushed)]
    return out

"""The stage registry: every stage of the flow in run order, and what is derived from their declarations —
which stages a config turns on and in which waves they run, each record's row of stage columns (the
catalog's `records` view), the verdicts `decide` applies in order, and the columns of a published shard.

A new stage is one file in this package declaring `STAGE` (see `spec.Stage`), listed here, plus its test.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline import relations
from pipeline.ids import records_sql
from pipeline.stages import (
    data_labels,
    decontaminate,
    dedup,
    dedup_audit,
    embed,
    embed_image,
    exact,
    label_tasks,
    labels,
    lang,
    near,
    near_image,
    near_record,
    near_text,
    pii,
    quality,
    rules,
    semantic,
)
from pipeline.stages.spec import Stage, Verdict, sql_lit
from pipeline.workspace import Workspace
from schemas import columns as C
from schemas.config import CurateConfig
from schemas.record import RECORD_SCHEMA

REGISTRY: tuple[Stage, ...] = (
    exact.STAGE,
    decontaminate.STAGE,
    rules.STAGE,
    near_text.STAGE,
    near_image.STAGE,
    near_record.STAGE,
    lang.STAGE,
    pii.STAGE,
    embed.STAGE,
    embed_image.STAGE,
    quality.STAGE,
    near.STAGE,
    semantic.STAGE,
    labels.STAGE,
    label_tasks.STAGE,
    dedup.STAGE,
    data_labels.STAGE,
    dedup_audit.STAGE,
)
BY_NAME: dict[str, Stage] = {s.name: s for s in REGISTRY}
STAGES: dict[str, Stage] = {s.name: s for s in REGISTRY if s.kind == "map"}  # the per-part stages

__all__ = ["BY_NAME", "REGISTRY", "STAGES", "Stage", "Verdict", "sql_lit"]


def enabled(cfg: CurateConfig) -> list[Stage]:
    """The stages a config turns on, in run order."""
    return [s for s in REGISTRY if s.enabled(cfg)]


def waves(cfg: CurateConfig) -> list[list[Stage]]:
    """The map stages a config turns on, grouped so that a stage only reads earlier waves' outputs."""
    on = {s.name: s for s in enabled(cfg) if s.kind == "map"}
    depth: dict[str, int] = {}

    def level(name: str) -> int:
        if name not in depth:
            deps = [d for d, _ in on[name].after if d in on]
            depth[name] = 1 + max((level(d) for d in deps), default=-1)
        return depth[name]

    out: list[list[Stage]] = []
    for name in on:
        k = level(name)
        out.extend([] for _ in range(k + 1 - len(out)))
        out[k].append(on[name])
    return out


def global_steps(cfg: CurateConfig) -> list[Stage]:
    """The global steps a config turns on (near clusters, semantic pairs, the duplicate graph), in order."""
    return [s for s in enabled(cfg) if s.kind == "global" and s.global_fn is not None]


def stage_files(ws: Workspace, stage: Stage) -> list:
    """The committed output files of a stage (per part, or its one global file)."""
    if stage.kind == "map":
        return ws.stage_files(stage.name)
    path = ws.global_path(stage.name)
    return [path] if path.exists() else []


def row_relation(ws: Workspace, stage: Stage) -> str | None:
    """SQL of a stage's row columns by id, or None when it has no output (or joins none)."""
    if stage.relation is not None:
        return stage.relation(ws.root)
    cols = stage.row_columns
    files = stage_files(ws, stage)
    if not cols or not files:
        return None
    return f"(SELECT {C.ID}, {', '.join(cols)} FROM {relations.parquet_scan(files)})"


def row_stages(cfg: CurateConfig | None) -> list[Stage]:
    """Stages whose columns join each record's row (all registered ones when `cfg` is None)."""
    stages = REGISTRY if cfg is None else enabled(cfg)
    return [s for s in stages if s.row_columns]


def record_row_sql(
    ws: Workspace, cfg: CurateConfig | None, skip: set[str] | frozenset[str] = frozenset()
) -> str:
    """SQL relation: every admitted record with the row columns of every stage (typed NULL where a stage is
    off or has not run). `cfg` None: every stage that has output."""
    selects, joins = ["i.*"], []
    on = {s.name for s in row_stages(cfg)}
    for k, stage in enumerate(s for s in REGISTRY if s.row_columns):
        rel = row_relation(ws, stage) if stage.name in on and stage.name not in skip else None
        for c in stage.row_columns:
            f = stage.field(c)
            selects.append(f"s{k}.{c}" if rel else f"NULL::{relations.duck_type(f.type)} AS {c}")
        if rel:
            joins.append(f"LEFT JOIN {rel} s{k} USING ({C.ID})")
    return f"(SELECT {', '.join(selects)} FROM {records_sql(ws)} i {' '.join(joins)})"


def verdicts(cfg: CurateConfig, skip: set[str] | frozenset[str] = frozenset()) -> list[Verdict]:
    """The verdicts of the stages a config turns on, in the order `decide` applies them."""
    found = [v for s in enabled(cfg) if s.verdict and s.name not in skip and (v := s.verdict(cfg))]
    return sorted(found, key=lambda v: v.rank)


def decision_sql(cfg: CurateConfig, skip: set[str] | frozenset[str] = frozenset()) -> tuple[str, str]:
    """SQL (decision, reason) over a record row: the first verdict that applies; else keep, no reason."""
    vs = verdicts(cfg, skip)
    if not vs:
        return sql_lit(C.KEEP), "NULL::VARCHAR"
    decision = " ".join(f"WHEN {v.when} THEN {v.decision}" for v in vs)
    reason = " ".join(f"WHEN {v.when} THEN {v.reason}" for v in vs)
    return f"CASE {decision} ELSE {sql_lit(C.KEEP)} END", f"CASE {reason} END"


def pre_decision_sql(cfg: CurateConfig) -> str:
    """SQL decision of a record row by every verdict but the duplicates' (who may keep a group)."""
    return decision_sql(cfg, skip={dedup.STAGE.name})[0]


def shard_schema() -> pa.Schema:
    """Columns of a published shard: the record, then every stage's carried columns (null where it is off)."""
    fields = list(RECORD_SCHEMA)
    for stage in REGISTRY:
        fields += [stage.field(c) for c in stage.carried]
    return pa.schema(fields)


def views(ws: Workspace) -> dict[str, tuple[list, pa.Schema]]:
    """Catalog views of stages that declare one: view name -> the stage's files (none yet: the view is
    empty, with the stage's columns, so a query of it means "nothing yet", not "no such table")."""
    return {s.view: (stage_files(ws, s), s.writes) for s in REGISTRY if s.view}


from pipeline.runner import remove_orphans, run_global  # noqa: E402

__all__ += ["remove_orphans", "run_global"]

"""Decision: one `decision` (keep / drop / label) and one `reason` per record, from every stage's columns.

The first verdict that applies wins, in this order:
1. duplicates (`exact_dup`, `near_dup`, `semantic_dup`): the kept copy of a group carries the verdict;
2. a human label pulled from Label Studio (`label:<value>`, keep or drop as the label says);
3. the first failed heuristic rule (`rule_reason`);
4. the language policy (`lang:<code>`), then PII when `[pii] action = "drop"` (`pii`);
5. the quality classifier's policy (`low_quality` below `[quality] drop_below`);
6. waiting for a human (`awaiting_label`, decision `label`): pushed to Label Studio, not labelled yet;
otherwise the record is kept with no reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from labeling.config_xml import DECISION_OF_LABEL
from pipeline import relations
from pipeline.exact import exact_clusters
from pipeline.workspace import (
    DECISIONS,
    EXACT,
    INGEST,
    LANG,
    NEAR,
    PII,
    QUALITY,
    RULES,
    SEMANTIC,
    Workspace,
    read_json,
    write_parquet,
)
from schemas import columns as C
from schemas.config import CurateConfig, parse_config
from schemas.record import DECISION_SCHEMA, EXACT_SCHEMA

LABELS_FILE = "labels.parquet"
LABEL_TASKS_FILE = "label_tasks.parquet"
REVIEW_SUFFIX = "-review"
AWAITING_LABEL = "awaiting_label"
REASON_LOW_QUALITY = "low_quality"


@dataclass(frozen=True)
class Verdict:
    """One stage's say in the decision: the relation it reads, when it applies, what it decides and why."""

    alias: str
    relation: str  # SQL relation with `id` and the columns below
    columns: list[str]  # carried into the decisions table (NULL when the stage has not run)
    when: str  # SQL condition over `alias.<column>`
    decision: str  # SQL giving keep / drop / label
    reason: str  # SQL giving the reason


def _files(path: Path) -> list[Path]:
    return [path] if path.exists() else []


def _verdicts(ws: Workspace, cfg: CurateConfig) -> list[Verdict]:
    scan = relations.parquet_scan
    out = []
    near = _files(ws.global_path(NEAR))
    if near:
        out.append(
            Verdict(
                "n",
                f"(SELECT {C.ID}, {C.NEAR_CLUSTER}, {C.DUP_OF} FROM {scan(near)})",
                [C.NEAR_CLUSTER, C.DUP_OF],
                f"n.{C.DUP_OF} IS NOT NULL",
                f"'{C.DROP}'",
                f"'{C.REASON_NEAR_DUP}'",
            )
        )
    sem = _files(ws.global_path(SEMANTIC))
    if sem:
        out.append(
            Verdict(
                "s",
                f"(SELECT {C.ID}, {C.SEMANTIC_CLUSTER}, {C.SEMANTIC_DUP_OF} FROM {scan(sem)})",
                [C.SEMANTIC_CLUSTER, C.SEMANTIC_DUP_OF],
                f"s.{C.SEMANTIC_DUP_OF} IS NOT NULL",
                f"'{C.DROP}'",
                f"'{C.REASON_SEMANTIC_DUP}'",
            )
        )
    labels = _files(ws.root / LABELS_FILE)
    if labels:
        mapping = ", ".join(f"'{k}': '{v}'" for k, v in DECISION_OF_LABEL.items())
        # the review queue's label (a second look at a suspected label error) wins over the first one
        rel = f"""(SELECT {C.ID}, arg_max({C.LABEL_VALUE}, {C.QUEUE} LIKE '%{REVIEW_SUFFIX}') AS human_label
                   FROM {scan(labels)} WHERE {C.LABEL_VALUE} IS NOT NULL GROUP BY {C.ID})"""
        out.append(
            Verdict(
                "h",
                rel,
                [],
                f"MAP {{{mapping}}}[h.human_label] IS NOT NULL",
                f"MAP {{{mapping}}}[h.human_label]",
                "'label:' || h.human_label",
            )
        )
    rules = ws.stage_files(RULES)
    if rules:
        out.append(
            Verdict(
                "r",
                f"(SELECT {C.ID}, {C.RULE_REASON} FROM {scan(rules)})",
                [],
                f"r.{C.RULE_REASON} IS NOT NULL",
                f"'{C.DROP}'",
                f"r.{C.RULE_REASON}",
            )
        )
    lang = ws.stage_files(LANG)
    if lang and cfg.lang.keep:
        keep = ", ".join(relations.sql_str(code) for code in cfg.lang.keep)
        out.append(
            Verdict(
                "l",
                f"(SELECT {C.ID}, {C.LANG}, {C.LANG_SCORE} FROM {scan(lang)})",
                [],
                f"NOT coalesce(l.{C.LANG_SCORE} >= {cfg.lang.min_score} AND l.{C.LANG} IN ({keep}), false)"
                f" AND l.{C.ID} IS NOT NULL",
                f"'{C.DROP}'",
                f"'lang:' || coalesce(l.{C.LANG}, 'unknown')",
            )
        )
    pii = ws.stage_files(PII)
    if pii and cfg.pii.action == "drop":
        out.append(
            Verdict(
                "p",
                f"(SELECT {C.ID}, {C.PII_COUNT} FROM {scan(pii)})",
                [],
                f"coalesce(p.{C.PII_COUNT}, 0) > 0",
                f"'{C.DROP}'",
                "'pii'",
            )
        )
    quality = ws.stage_files(QUALITY)
    if quality and cfg.quality.model_dir:
        out.append(
            Verdict(
                "q",
                f"(SELECT {C.ID}, {C.QUALITY} FROM {scan(quality)})",
                [],
                f"q.{C.QUALITY} < {cfg.quality.drop_below}",
                f"'{C.DROP}'",
                f"'{REASON_LOW_QUALITY}'",
            )
        )
    tasks = _files(ws.root / LABEL_TASKS_FILE)
    if tasks:
        out.append(
            Verdict(
                "t",
                f"(SELECT DISTINCT {C.ID}, true AS pushed FROM {scan(tasks)} WHERE NOT {C.IS_GOLD})",
                [],
                "t.pushed",
                f"'{C.LABEL}'",
                f"'{AWAITING_LABEL}'",
            )
        )
    return out


NULLABLE_COLUMNS = [C.NEAR_CLUSTER, C.DUP_OF, C.SEMANTIC_CLUSTER, C.SEMANTIC_DUP_OF]


def saved_config(ws: Workspace) -> CurateConfig:
    """The config the last `curate run` saved in the workspace, else the defaults."""
    path = ws.root / "config.json"
    return parse_config(read_json(path), str(path)) if path.exists() else CurateConfig()


def decide(ws: Workspace, cfg: CurateConfig | None = None) -> pa.Table:
    """Compute and write `<ws>/decisions.parquet` from whatever stage outputs the workspace holds.

    `cfg` gives the policies (language, PII, quality); default: the workspace's saved config.
    """
    con = relations.connect()
    ingest = relations.parquet_scan(ws.stage_files(INGEST))
    hashes = relations.parquet_scan(ws.stage_files(EXACT), EXACT_SCHEMA)
    con.register("exact_groups", exact_clusters(con, hashes))
    verdicts = [
        Verdict(
            "g",
            "exact_groups",
            [C.EXACT_CLUSTER, C.EXACT_DUP_OF],
            f"g.{C.EXACT_DUP_OF} IS NOT NULL",
            f"'{C.DROP}'",
            f"'{C.REASON_EXACT_DUP}'",
        ),
        *_verdicts(ws, cfg or saved_config(ws)),
    ]
    carried = {c: f"{v.alias}.{c}" for v in verdicts for c in v.columns}
    cols = ", ".join(
        f"{carried[c]} AS {c}" if c in carried else f"NULL::VARCHAR AS {c}"
        for c in [C.EXACT_CLUSTER, C.EXACT_DUP_OF, *NULLABLE_COLUMNS]
    )
    joins = " ".join(f"LEFT JOIN {v.relation} {v.alias} USING ({C.ID})" for v in verdicts)
    decision = " ".join(f"WHEN {v.when} THEN {v.decision}" for v in verdicts)
    reason = " ".join(f"WHEN {v.when} THEN {v.reason}" for v in verdicts)
    table = (
        con.sql(
            f"""
        SELECT i.{C.ID}, i.{C.SOURCE}, i.{C.MODALITY},
               CASE {decision} ELSE '{C.KEEP}' END AS {C.DECISION},
               CASE {reason} END AS {C.REASON}, {cols}
        FROM (SELECT {C.ID}, {C.SOURCE}, {C.MODALITY} FROM {ingest}) i {joins}
        ORDER BY i.{C.ID}
        """
        )
        .to_arrow_table()
        .cast(DECISION_SCHEMA)
    )
    write_parquet(table, ws.global_path(DECISIONS))
    return table

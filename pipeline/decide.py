"""Decision: one `decision` (keep / drop / label) and one `reason` per record, derived from the verdicts
the stages declare (`pipeline.stages`), applied in their rank order; the first that applies wins:

1. duplicates (`exact_dup`, `near_dup`, `semantic_dup`): every copy points at its group's one keeper;
2. a human label pulled from Label Studio (`label:<value>`, keep or drop as the label says);
3. the first failed heuristic rule (`rule_reason`);
4. the language policy (`lang:<code>`), then PII when `[pii] action = "drop"` (`pii`);
5. the quality classifier's policy (`low_quality` below `[quality] drop_below`);
6. waiting for a human (`awaiting_label`, decision `label`): pushed to Label Studio, not labelled yet;
otherwise the record is kept with no reason.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline import relations, stages
from pipeline.stages.label_tasks import AWAITING_LABEL  # noqa: F401 - reason names, re-exported
from pipeline.stages.quality import REASON_LOW_QUALITY  # noqa: F401
from pipeline.workspace import DECISIONS, Workspace, read_json, write_parquet
from schemas import columns as C
from schemas.config import CurateConfig, parse_config
from schemas.record import DECISION_SCHEMA


def saved_config(ws: Workspace) -> CurateConfig:
    """The config the last `curate run` saved in the workspace, else the defaults."""
    path = ws.root / "config.json"
    return parse_config(read_json(path), str(path)) if path.exists() else CurateConfig()


def decide(ws: Workspace, cfg: CurateConfig | None = None) -> pa.Table:
    """Compute and write `<ws>/decisions.parquet` from the stage outputs the workspace holds.

    `cfg` gives the stages that are on and their policies; default: the workspace's saved config.
    """
    cfg = cfg or saved_config(ws)
    decision, reason = stages.decision_sql(cfg)
    carried = [
        f.name for f in DECISION_SCHEMA if f.name not in (C.ID, C.SOURCE, C.MODALITY, C.DECISION, C.REASON)
    ]
    con = relations.connect()
    table = (
        con.sql(
            f"""SELECT {C.ID}, {C.SOURCE}, {C.MODALITY}, {decision} AS {C.DECISION}, {reason} AS {C.REASON},
                       {", ".join(carried)}
                FROM {stages.record_row_sql(ws, cfg)} ORDER BY {C.ID}"""
        )
        .to_arrow_table()
        .cast(DECISION_SCHEMA)
    )
    write_parquet(table, ws.global_path(DECISIONS))
    return table

"""Records pushed to Label Studio and not labelled yet (`labeling.push` writes `<ws>/label_tasks.parquet`):
decision `label`, reason `awaiting_label`; they stay out of the shards until a label arrives."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipeline import relations
from pipeline.stages.spec import Stage, Verdict, sql_lit
from schemas import columns as C
from schemas.labeling import AUDIT_QUEUE, TASKS_TABLE

AWAITING_LABEL = "awaiting_label"


def _relation(root: Path) -> str | None:
    path = root / f"{TASKS_TABLE}.parquet"
    if not path.exists():
        return None
    scan = relations.parquet_scan([path])
    audit = sql_lit(AUDIT_QUEUE)  # audited dedup pairs judge a pair, they do not hold the record
    where = f"NOT {C.IS_GOLD} AND {C.QUEUE} != {audit}"
    return f"(SELECT DISTINCT {C.ID}, true AS {C.PUSHED} FROM {scan} WHERE {where})"


STAGE = Stage(
    name=TASKS_TABLE,
    kind="global",
    doc="tasks pushed to Label Studio (`curate label push`); waiting for a label",
    writes=pa.schema([pa.field(C.ID, pa.string()), pa.field(C.PUSHED, pa.bool_())]),
    settings=lambda cfg: {"v": 1},
    relation=_relation,
    verdict=lambda cfg: Verdict(
        rank=90,
        when=f"coalesce({C.PUSHED}, false)",
        reason=sql_lit(AWAITING_LABEL),
        decision=sql_lit(C.LABEL),
        blocks_keeper=False,
    ),
)

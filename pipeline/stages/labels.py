"""Human labels pulled from Label Studio (`labeling.pull` writes `<ws>/labels.parquet`): a labelled record
follows the humans (`label:<value>`); a review queue's label (second look at a suspected error) wins.
A tie or unsure consensus has no label (it waits for one more annotator); dedup-audit answers judge a
pair, not the record, and never decide it."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from pipeline import relations
from pipeline.stages.spec import Stage, Verdict
from schemas import columns as C
from schemas.labeling import AUDIT_QUEUE, DECISION_OF_LABEL, LABELS_TABLE, REVIEW_SUFFIX

LABEL_ROW_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string()),
        pa.field(C.HUMAN_LABEL, pa.string()),
        pa.field(C.HUMAN_DECISION, pa.string()),
    ]
)


def _relation(root: Path) -> str | None:
    path = root / f"{LABELS_TABLE}.parquet"
    if not path.exists():
        return None
    mapping = ", ".join(f"'{k}': '{v}'" for k, v in DECISION_OF_LABEL.items())
    return f"""(SELECT {C.ID}, _hl AS {C.HUMAN_LABEL}, MAP {{{mapping}}}[_hl] AS {C.HUMAN_DECISION}
               FROM (SELECT {C.ID}, arg_max({C.LABEL_VALUE}, {C.QUEUE} LIKE '%{REVIEW_SUFFIX}') AS _hl
                     FROM {relations.parquet_scan([path])}
                     WHERE {C.LABEL_VALUE} IS NOT NULL AND {C.QUEUE} != '{AUDIT_QUEUE}'
                     GROUP BY {C.ID}))"""


STAGE = Stage(
    name=LABELS_TABLE,
    kind="global",
    doc="consensus label of the annotators (`curate label pull`); keep/drop as the label says",
    writes=LABEL_ROW_SCHEMA,
    settings=lambda cfg: {"v": 1},
    relation=_relation,
    verdict=lambda cfg: Verdict(
        rank=20,
        when=f"{C.HUMAN_DECISION} IS NOT NULL",
        reason=f"'label:' || {C.HUMAN_LABEL}",
        decision=C.HUMAN_DECISION,
    ),
)

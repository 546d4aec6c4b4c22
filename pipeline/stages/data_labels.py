"""Labels that came with the data, as training should read them (`curate label review` writes
`<ws>/data_labels.parquet`): the record's own label, its duplicate group's vote, or a reviewer's answer.
The shards carry them as `label` (and `label_source`: data, vote or review)."""

from __future__ import annotations

import pyarrow as pa

from pipeline.stages.spec import Stage
from schemas import columns as C

DATA_LABELS_TABLE = "data_labels"
DATA_LABELS_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string()),
        pa.field(C.LABEL_VALUE, pa.string()),
        pa.field(C.LABEL_SOURCE, pa.string()),
    ]
)

STAGE = Stage(
    name=DATA_LABELS_TABLE,
    kind="global",
    doc="the data's own labels after duplicate votes and label review (`curate label review`)",
    writes=DATA_LABELS_SCHEMA,
    settings=lambda cfg: {"v": 1},
    carried=(C.LABEL_VALUE, C.LABEL_SOURCE),
)

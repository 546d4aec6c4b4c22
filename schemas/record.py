"""Arrow schemas of the record model and of the quarantine table."""

import pyarrow as pa

from schemas import columns as C

RECORD_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string(), nullable=False),
        pa.field(C.SOURCE, pa.string(), nullable=False),
        pa.field(C.MODALITY, pa.string(), nullable=False),
        pa.field(C.TEXT, pa.string()),
        pa.field(C.IMAGE, pa.binary()),
        pa.field(C.IMAGE_PATH, pa.string()),
        pa.field(C.WIDTH, pa.int32()),
        pa.field(C.HEIGHT, pa.int32()),
        pa.field(C.IMAGE_FORMAT, pa.string()),
        pa.field(C.DATA, pa.string()),
        pa.field(C.META, pa.string()),
        pa.field(C.SOURCE_FILE, pa.string(), nullable=False),
        pa.field(C.SOURCE_ROW, pa.int64(), nullable=False),
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field(C.SOURCE, pa.string(), nullable=False),
        pa.field(C.Q_FILE, pa.string(), nullable=False),
        pa.field(C.Q_LINE, pa.int64()),
        pa.field(C.Q_EXCERPT, pa.string()),
        pa.field(C.Q_REASON, pa.string(), nullable=False),
    ]
)

EXACT_SCHEMA = pa.schema([pa.field(C.ID, pa.string(), nullable=False), pa.field(C.CONTENT_HASH, pa.string())])

DECISION_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string(), nullable=False),
        pa.field(C.SOURCE, pa.string(), nullable=False),
        pa.field(C.MODALITY, pa.string(), nullable=False),
        pa.field(C.DECISION, pa.string(), nullable=False),
        pa.field(C.REASON, pa.string()),
        pa.field(C.DUP_GROUP, pa.string()),
        pa.field(C.DUP_OF, pa.string()),
        pa.field(C.DUP_REASON, pa.string()),
        pa.field(C.EXACT_CLUSTER, pa.string()),
        pa.field(C.NEAR_CLUSTER, pa.string()),
        pa.field(C.SEMANTIC_CLUSTER, pa.string()),
    ]
)


def empty_table(schema: pa.Schema) -> pa.Table:
    """An empty table of the given schema."""
    return schema.empty_table()

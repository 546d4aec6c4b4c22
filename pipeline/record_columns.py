"""The per-part stage outputs that the `records` view and the published shards carry, with their schemas.

One list, so the SQL catalog and the shards always show the same stage columns (null where a stage did not
run). Signatures and vectors are left out: they have views of their own.
"""

from __future__ import annotations

import pyarrow as pa

from pipeline.workspace import EXACT, LANG, PII, QUALITY, RULES
from quality.cascade import SCORE_SCHEMA
from quality.langid import LANG_SCHEMA
from quality.pii import PII_SCHEMA
from quality.rules import RULES_SCHEMA
from schemas import columns as C
from schemas.record import EXACT_SCHEMA

RECORD_STAGE_SCHEMAS: dict[str, pa.Schema] = {
    EXACT: EXACT_SCHEMA,
    RULES: RULES_SCHEMA.remove(RULES_SCHEMA.get_field_index(C.RULE_REASON)),  # the reason is in decisions
    LANG: LANG_SCHEMA,
    PII: PII_SCHEMA,
    QUALITY: SCORE_SCHEMA,
}
CLUSTER_COLUMNS = [C.EXACT_CLUSTER, C.NEAR_CLUSTER, C.SEMANTIC_CLUSTER]  # carried from the decisions table

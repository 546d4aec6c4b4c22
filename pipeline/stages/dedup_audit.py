"""Audited dedup (`curate label push --queue dedup-audit`, then `curate label pull`): annotators judged
sampled (kept record, dropped copy) pairs same / different; `<ws>/dedup_audit.parquet` holds per dedup
stage (exact, near, semantic, image, record) the audited pairs, how many were the same, the precision and
its 95 % Wilson interval, and `flagged` when the precision is below `[labeling] min_dedup_precision`.
The catalog shows it as the `dedup_audit` view; the run summary warns about flagged stages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.stages.spec import Stage
from schemas.labeling import (
    AUDIT_TABLE,
    CI_HIGH,
    CI_LOW,
    DEDUP_STAGE,
    FLAGGED,
    N_PAIRS,
    N_SAME,
    PRECISION,
)

AUDIT_SCHEMA = pa.schema(
    [
        pa.field(DEDUP_STAGE, pa.string()),
        pa.field(N_PAIRS, pa.int64()),
        pa.field(N_SAME, pa.int64()),
        pa.field(PRECISION, pa.float64()),
        pa.field(CI_LOW, pa.float64()),
        pa.field(CI_HIGH, pa.float64()),
        pa.field(FLAGGED, pa.bool_()),
    ]
)


def audit_summary(root: Path, min_precision: float) -> list[dict[str, Any]]:
    """Per audited dedup stage: stage, n, same, precision, ci_low, ci_high, flagged (at `min_precision`)."""
    path = root / f"{AUDIT_TABLE}.parquet"
    if not path.exists():
        return []
    rows = pq.read_table(path).to_pylist()
    for r in rows:
        r[FLAGGED] = r[PRECISION] is not None and r[PRECISION] < min_precision
    return rows


def audit_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Run-summary lines: the audited precision of each dedup stage, a warning where it is low."""
    if not rows:
        return []
    parts = [
        f"{r[DEDUP_STAGE]} {r[PRECISION]:.0%} of {r[N_PAIRS]} (95% CI {r[CI_LOW]:.0%}-{r[CI_HIGH]:.0%})"
        for r in rows
    ]
    lines = ["dedup audit (pairs judged the same by annotators): " + ", ".join(parts)]
    for r in rows:
        if r[FLAGGED]:
            lines.append(
                f"warning: {r[DEDUP_STAGE]} dedup: only {r[N_SAME]} of {r[N_PAIRS]} audited pairs were true "
                f"duplicates ({r[PRECISION]:.0%}): raise that stage's threshold or turn it off"
            )
    return lines


STAGE = Stage(
    name=AUDIT_TABLE,
    kind="global",
    doc="per dedup stage precision audited by annotators (`curate label push --queue dedup-audit`)",
    writes=AUDIT_SCHEMA,
    settings=lambda cfg: {"v": 1},
    joined=(),  # one row per dedup stage, not per record
    view=AUDIT_TABLE,
)

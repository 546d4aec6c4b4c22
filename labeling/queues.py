"""Routing rules: each record goes to the first queue whose modality and field/value rule it matches."""

from __future__ import annotations

import polars as pl

from schemas import columns as C
from schemas.labeling import QueueConfig

JSON_COLUMNS = (C.META, C.DATA)


def field_expr(field: str, columns: list[str]) -> pl.Expr:
    """Text value of a routing field: a column, or `meta.<key>` / `data.<key>` inside a JSON column."""
    if field in columns:
        return pl.col(field).cast(pl.String)
    head, _, key = field.partition(".")
    if head in JSON_COLUMNS and key and head in columns:
        return pl.col(head).str.json_path_match(f"$.{key}")
    raise ValueError(
        f"routing field {field!r} is neither a column ({', '.join(columns)}) nor meta.<key> / data.<key>"
    )


def rule_expr(queue: QueueConfig, columns: list[str]) -> pl.Expr:
    """True for the rows the queue's rule matches."""
    cond = pl.lit(True)
    if queue.modality is not None:
        cond = cond & (pl.col(C.MODALITY) == queue.modality)
    if queue.field is not None:
        value = field_expr(queue.field, columns)
        cond = cond & (value.is_in(queue.values) if queue.values else value.is_not_null())
    return cond


def assign(frame: pl.DataFrame, queues: list[QueueConfig]) -> pl.DataFrame:
    """Add `queue`: the first matching queue's name, null when no rule matches."""
    expr: pl.Expr = pl.lit(None, dtype=pl.String)
    for q in reversed(queues):  # first rule wins: build the chain from the last
        expr = pl.when(rule_expr(q, frame.columns)).then(pl.lit(q.name)).otherwise(expr)
    return frame.with_columns(expr.alias(C.QUEUE))


def by_name(queues: list[QueueConfig], name: str) -> QueueConfig:
    """The queue called `name`; the error lists the configured ones."""
    for q in queues:
        if q.name == name:
            return q
    raise ValueError(f"no queue {name!r}; configured: {', '.join(q.name for q in queues) or 'none'}")

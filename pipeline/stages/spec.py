"""What a stage declares: the rows and columns it reads, the columns it writes, the settings its output
depends on, and what its columns mean for the decision.

The registry (`pipeline.stages`) derives everything else from these declarations: the run order, the
freshness stamps, the catalog's `records` view, the shard schema and `decide`. A new stage is one file in
this package with a `STAGE` declaration, plus its test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa

from schemas import columns as C
from schemas.config import CurateConfig


def sql_lit(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class Verdict:
    """A stage's say in the decision, as SQL over the record's row of stage columns (columns by name).

    Verdicts apply in `rank` order; the first whose `when` holds gives the record's decision and reason.
    A record dropped by a verdict with `blocks_keeper` cannot be the kept copy of a duplicate group.
    """

    rank: int
    when: str
    reason: str
    decision: str = sql_lit(C.DROP)
    blocks_keeper: bool = True


MapFn = Callable[[pa.Table, CurateConfig, Path], pa.Table]
GlobalFn = Callable[[Path, CurateConfig], pa.Table]


@dataclass(frozen=True)
class Stage:
    """One stage of the flow.

    map stages run per workspace part: they read the record columns `reads` of the rows of `modality`
    (all rows when None) plus the columns `after` of earlier stages of the same part, and write a table
    of `writes` (always with `id`) to `<ws>/<name>/<part>.parquet`. global stages read whole stages
    (`inputs`) and write `<ws>/<name>.parquet`. `settings` are the config values the output depends on:
    when they, or the content of what the stage read, change, the stage runs again.
    """

    name: str
    kind: Literal["map", "global"]
    doc: str
    writes: pa.Schema
    settings: Callable[[CurateConfig], Any]
    enabled: Callable[[CurateConfig], bool] = lambda cfg: True
    modality: str | None = None
    reads: tuple[str, ...] = ()
    after: tuple[tuple[str, tuple[str, ...]], ...] = ()
    inputs: tuple[str, ...] = ()
    map_fn: MapFn | None = None
    global_fn: GlobalFn | None = None
    # how its per-part output is stored: a transform of each written batch, and pyarrow.parquet.ParquetWriter
    # options (default: the table as is, zstd)
    on_disk: Callable[[pa.Table], pa.Table] | None = None
    parquet: dict[str, Any] | None = None
    joined: tuple[str, ...] | None = (
        None  # columns joined to the record row (records view, decide); None = all
    )
    carried: tuple[str, ...] = ()  # columns published in the shards (null where the stage did not run)
    verdict: Callable[[CurateConfig], Verdict | None] | None = None
    view: str | None = None  # a catalog view of its own over its files
    relation: Callable[[Path], str | None] | None = None  # SQL of its row columns by id (default: its files)

    @property
    def columns(self) -> list[str]:
        """Its output columns other than `id`."""
        return [n for n in self.writes.names if n != C.ID]

    @property
    def row_columns(self) -> list[str]:
        """The output columns joined to each record's row (the `records` view, `decide`)."""
        return self.columns if self.joined is None else list(self.joined)

    def field(self, name: str) -> pa.Field:
        """The output field `name`."""
        return self.writes.field(name)

"""Map stages stream each part through every stage a chunk at a time: no output may depend on the chunk size.

The messy sample (texts, images, structured records, bad rows) runs twice in one process: once with the
default chunk (every part in one chunk), once with 37-row chunks (many chunks per part, and chunks where a
stage's modality has no rows). Every stage file, the decisions and the near and dedup outputs must hold the
same rows, types and values.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import runner
from pipeline.sample import write_sample
from pipeline.steps import run_local
from pipeline.workspace import Workspace
from schemas.config import CurateConfig, load_config


def _run(tmp: Path, name: str) -> Workspace:
    cfg: CurateConfig = load_config(tmp / "sample" / "curate.toml")
    cfg.workspace = str(tmp / name)
    cfg.flow.max_workers = 1  # in this process, so the chunk size set here is the one the stages see
    return run_local(cfg).workspace


def _stage_files(ws: Workspace) -> dict[str, Path]:
    return {
        str(f.relative_to(ws.root)): f
        for f in ws.root.glob("*/*.parquet")
        if f.parent.name not in ("ingest", "versions", "embeddings")
    }


def _same(a: pa.Table, b: pa.Table) -> bool:
    """Same columns, types and values in the same order (NaN equals NaN, as a rule's score may be NaN)."""
    return a.schema.equals(b.schema, check_metadata=False) and pl.from_arrow(a).equals(pl.from_arrow(b))


def test_outputs_do_not_depend_on_the_chunk_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_sample(tmp_path / "sample")
    whole = _run(tmp_path, "whole")
    monkeypatch.setattr(runner, "CHUNK_ROWS", 37)
    chunked = _run(tmp_path, "chunked")

    a, b = _stage_files(whole), _stage_files(chunked)
    assert a.keys() == b.keys() and len(a) > 10
    split = 0
    for name in sorted(a):
        assert _same(pq.read_table(a[name]), pq.read_table(b[name])), name
        split += pq.ParquetFile(b[name]).metadata.num_row_groups > 1
    assert split > 0  # the small chunks really did split some part into several row groups
    for name in ("decisions.parquet", "near.parquet", "dedup.parquet"):
        assert _same(pq.read_table(whole.root / name), pq.read_table(chunked.root / name)), name

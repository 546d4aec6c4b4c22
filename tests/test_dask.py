"""The flow on a Dask cluster (prefect-dask, a LocalCluster of 2 worker processes) gives the same shards and
decisions as the default runner, though the parts ran in different processes."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from pipeline.steps import TIMINGS
from pipeline.workspace import read_json
from schemas.config import CurateConfig


@pytest.fixture(scope="module")
def flow_mod(prefect_harness):  # noqa: ANN001 - fixture
    from flows import curate

    return curate


def _config(root: Path, cc_dir: Path, runner: str) -> CurateConfig:
    return CurateConfig.model_validate(
        {
            "workspace": str(root),
            "sources": [{"path": str(cc_dir / "*.jsonl.gz")}],
            "ingest": {"shard_rows": 120},  # several parts per file: parts land on different workers
            "flow": {"task_runner": runner, "max_workers": 2},
        }
    )


def test_dask_local_cluster_matches_default_runner(flow_mod, cc_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    default = _config(tmp_path / "threads", cc_dir, "thread")
    dask = _config(tmp_path / "dask", cc_dir, "dask")
    m_default = flow_mod.run_curate(default)
    m_dask = flow_mod.run_curate(dask)

    pids = read_json(tmp_path / "dask" / TIMINGS)["worker_pids"]
    assert len(pids) == 2, pids  # the parts were processed by both Dask workers
    assert len(read_json(tmp_path / "threads" / TIMINGS)["worker_pids"]) >= 2  # and by worker processes here
    assert len(list((tmp_path / "dask" / "ingest").glob("*.parquet"))) > 4

    # the global steps (near clusters across parts, the duplicate graph) saw every part
    d1 = pq.read_table(tmp_path / "threads" / "decisions.parquet")
    d2 = pq.read_table(tmp_path / "dask" / "decisions.parquet")
    assert d1.equals(d2)
    assert m_default["counts"] == m_dask["counts"]
    assert m_default["counts"]["by_reason"].get("exact_dup", 0) > 0

    shards_default = [s["sha256"] for s in m_default["shards"]]
    assert shards_default == [s["sha256"] for s in m_dask["shards"]]
    for a, b in zip(m_default["shards"], m_dask["shards"], strict=True):
        assert (tmp_path / "threads" / a["path"]).read_bytes() == (tmp_path / "dask" / b["path"]).read_bytes()

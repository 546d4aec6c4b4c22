"""Shared fixtures: the real data sets beside the checkout, temp workspaces, a Prefect test harness."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CC = DATA / "commoncrawl_sample_dolma"

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def data_dir(name: str) -> Path:
    """A folder of ../shared/data, or skip the test saying why."""
    path = DATA / name
    if not path.exists():
        pytest.skip(f"real data set {path} is absent (tests expect ../shared/data beside the checkout)")
    return path


@pytest.fixture(scope="session")
def cc_dir() -> Path:
    return data_dir("commoncrawl_sample_dolma")


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory: pytest.TempPathFactory):
    """A real Prefect API (temporary database) for the whole session."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect_home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def read_stage(ws_root: Path, stage: str) -> pa.Table:
    """All parts of a workspace stage as one table."""
    files = sorted((ws_root / stage).glob("*.parquet"))
    return pa.concat_tables([pq.read_table(f) for f in files]) if files else pa.table({})

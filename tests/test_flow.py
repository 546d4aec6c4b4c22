"""The curate flow through a real Prefect run (temporary Prefect API from prefect_test_harness)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.catalog import connect
from pipeline.sample import write_sample
from schemas.config import CurateConfig, load_config


@pytest.fixture(scope="module")
def flow_mod(prefect_harness):  # noqa: ANN001 - fixture
    from flows import curate

    return curate


def test_flow_on_commoncrawl(flow_mod, cc_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from prefect import get_client

    cfg = CurateConfig.model_validate(
        {"workspace": str(tmp_path / "ws"), "sources": [{"path": str(cc_dir / "*.jsonl.gz")}]}
    )
    state = flow_mod.curate_flow(cfg, return_state=True)
    assert state.is_completed()
    manifest = state.result()
    c = manifest["counts"]
    assert c["ingested"] == 717 == c["kept"] + c["dropped"] + c["quarantined"]
    assert c["by_reason"]["empty"] == 27
    con = connect(tmp_path / "ws")
    # each exact group keeps one copy when a member passes the rules, none when all are junk
    per_group = con.execute(
        "SELECT exact_cluster, count(*) FILTER (WHERE decision = 'keep'), "
        "count(*) FILTER (WHERE dup_reason = 'exact_dup') "
        "FROM records WHERE exact_cluster IS NOT NULL GROUP BY 1"
    ).fetchall()
    assert len(per_group) == 3 and all(kept == (1 if dups else 0) for _, kept, dups in per_group)
    assert c["by_reason"].get("exact_dup", 0) == sum(d for *_, d in per_group) > 0
    groups = con.execute(
        "SELECT count(*) AS n, any_value(left(text, 25)) FROM records WHERE exact_cluster IS NOT NULL "
        "GROUP BY exact_cluster ORDER BY n"
    ).fetchall()
    assert [g[0] for g in groups] == [2, 3, 7]
    assert groups[2][1].startswith("Processing Feedback")
    assert groups[0][1].startswith("Log in with OpenID")
    junk = con.execute(
        "SELECT count(*) FROM decisions WHERE decision = 'drop' AND reason NOT IN ('empty', 'exact_dup')"
    ).fetchone()[0]
    assert junk > 0
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs()
    names = {r.name.split("-")[0] for r in runs}
    assert {"ingest", "part", "decide", "publish"} <= names
    assert sum(1 for r in runs if r.name.startswith("ingest")) >= 3  # one task per input file


def test_flow_on_sample_resumes(flow_mod, tmp_path: Path) -> None:  # noqa: ANN001
    write_sample(tmp_path / "s")
    cfg = load_config(tmp_path / "s" / "curate.toml")
    m1 = flow_mod.run_curate(cfg)
    shard = Path(cfg.workspace) / m1["shards"][0]["path"]
    mtime = shard.stat().st_mtime_ns
    m2 = flow_mod.run_curate(cfg)
    assert m2 == m1 and shard.stat().st_mtime_ns == mtime  # nothing rewritten
    assert m1["counts"]["quarantined"] == 6

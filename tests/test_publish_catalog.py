"""Publish and the SQL catalog, driven through the functional core (no Prefect) on real and sample data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pytest

from pipeline.catalog import CatalogError, connect, query
from pipeline.sample import write_sample
from pipeline.steps import run_local
from pipeline.workspace import Workspace
from schemas import columns as C
from schemas.config import CurateConfig, load_config


def curate_core(cfg: CurateConfig) -> tuple[Workspace, dict, bool, int]:
    """Every stage in order on one process; returns the workspace, manifest, publish-skipped, parts redone."""
    run = run_local(cfg)
    return run.workspace, run.published.manifest, run.published.skipped, run.redone


@pytest.fixture()
def sample_cfg(tmp_path: Path) -> CurateConfig:
    write_sample(tmp_path / "sample")
    cfg = load_config(tmp_path / "sample" / "curate.toml")
    cfg.workspace = str(tmp_path / "ws")
    return cfg


def test_counts_add_up_and_shards_match_the_manifest(sample_cfg: CurateConfig) -> None:
    ws, m, _, _ = curate_core(sample_cfg)
    c = m["counts"]
    assert c["ingested"] == c["kept"] + c["dropped"] + c["quarantined"]
    assert c["quarantined"] == 6 and c["by_reason"]["exact_dup"] >= 8
    assert sum(s["rows"] for s in m["shards"]) == c["kept"] == m["rows"]
    assert all(s["rows"] <= 100 for s in m["shards"]) and len(m["shards"]) >= 2
    for s in m["shards"]:
        path = ws.root / s["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == s["sha256"]
        with pa.OSFile(str(path)) as f:
            table = pa.ipc.open_file(f).read_all()
        assert table.num_rows == s["rows"]
        assert table[C.ID].to_pylist() == sorted(table[C.ID].to_pylist())
    assert [f["name"] for f in m["schema"]][:3] == [C.ID, C.SOURCE, C.MODALITY]
    assert {s["source"] for s in m["sources"]} == {"texts", "images", "businesses"}


def test_rerun_is_byte_identical_and_skips_finished_work(sample_cfg: CurateConfig, tmp_path: Path) -> None:
    ws, m1, _, redone1 = curate_core(sample_cfg)
    assert redone1 > 0
    _, m2, skipped, redone2 = curate_core(sample_cfg)
    assert skipped and redone2 == 0 and m2 == m1
    other = sample_cfg.model_copy(update={"workspace": str(tmp_path / "ws-fresh")})
    ws3, m3, skipped3, _ = curate_core(other)
    assert not skipped3
    assert [s["sha256"] for s in m3["shards"]] == [s["sha256"] for s in m1["shards"]]
    assert [s["path"] for s in m3["shards"]] == [s["path"] for s in m1["shards"]]  # both versions/v1/...
    assert (ws3.root / m3["shards"][0]["path"]).read_bytes() == (
        ws.root / m1["shards"][0]["path"]
    ).read_bytes()


def test_changing_a_rule_redoes_only_that_stage(sample_cfg: CurateConfig) -> None:
    ws, m1, _, _ = curate_core(sample_cfg)
    stricter = sample_cfg.model_copy(deep=True)
    stricter.rules.text.min_words = 90
    _, m2, skipped, redone = curate_core(stricter)
    assert not skipped and redone == len(ws.parts())  # rules redone on every part, exact hashes reused
    assert m2["counts"]["kept"] < m1["counts"]["kept"]
    assert m2["counts"]["by_reason"].get("too_few_words", 0) > m1["counts"]["by_reason"].get(
        "too_few_words", 0
    )


def test_sql_views_explain_every_decision(cc_dir: Path, tmp_path: Path) -> None:
    cfg = CurateConfig.model_validate(
        {"workspace": str(tmp_path / "ws"), "sources": [{"path": str(cc_dir / "*.jsonl.gz")}]}
    )
    ws, m, _, _ = curate_core(cfg)
    con = connect(ws.root)
    reasons = dict(con.sql("SELECT reason, count(*) FROM decisions GROUP BY reason").fetchall())
    assert reasons["empty"] == 27
    assert sum(reasons.values()) == 717
    assert reasons[None] == m["counts"]["kept"]
    dup = con.sql(
        "SELECT r.text, k.text, k.decision FROM records r JOIN records k ON r.dup_of = k.id "
        "WHERE r.dup_reason = 'exact_dup'"
    ).fetchall()
    # an exact copy points at its group's keeper, which is kept; groups of junk keep none
    assert len(dup) == reasons["exact_dup"] > 0 and all(a == b and d == "keep" for a, b, d in dup)
    n = con.execute("SELECT count(*) FROM shards WHERE source = 'cc_en_head-0091'").fetchone()[0]
    kept = "SELECT count(*) FROM decisions WHERE source = 'cc_en_head-0091' AND decision = 'keep'"
    assert n == con.execute(kept).fetchone()[0] > 0
    assert con.execute("SELECT sum(rows) FROM shard_files").fetchone()[0] == m["rows"]
    assert con.execute("SELECT count(*) FROM records WHERE rule_words IS NULL").fetchone()[0] == 0
    assert con.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 0
    assert query(ws.root, "SELECT count(*) AS n FROM records").to_pylist() == [{"n": 717}]


def test_catalog_names_a_missing_workspace(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="no such workspace"):
        connect(tmp_path / "absent")
    (tmp_path / "empty").mkdir()
    assert query(tmp_path / "empty", "SELECT count(*) AS n FROM decisions").to_pylist() == [{"n": 0}]
    assert json.dumps(query(tmp_path / "empty", "SELECT * FROM shards").schema.names)


def test_planted_near_duplicates_share_a_cluster_with_their_original(sample_cfg: CurateConfig) -> None:
    ws, _, _, _ = curate_core(sample_cfg)
    con = connect(ws.root)
    rows = con.execute(
        """SELECT v.id, v.near_cluster, o.near_cluster FROM records v
           JOIN records o ON o.id = 'texts/doc-' || lpad(CAST(CAST(split_part(v.id, '-', 2) AS INT) - 117 AS
           VARCHAR), 4, '0')
           WHERE v.meta LIKE '%"variant":"near_dup"%' ORDER BY v.id"""
    ).fetchall()
    assert len(rows) == 12
    assert all(a is not None and a == b for _, a, b in rows)
    resized = con.execute(
        "SELECT count(*) FROM records v JOIN records o ON o.id = replace(v.id, '-resized', '') "
        "WHERE v.id LIKE '%-resized.png' AND v.near_cluster = o.near_cluster"
    ).fetchone()[0]
    assert resized == 3


def test_quality_classifier_policy_in_the_workspace(tmp_path: Path) -> None:
    import polars as pl
    from conftest import data_dir

    from quality import classifier
    from quality.embed import embed_texts

    sms = pl.read_csv(data_dir("sms_spam") / "SMSSpamCollection", separator="\t", quote_char=None)
    seeds, unseen = sms.head(1500), sms.slice(1500, 1000)
    x = embed_texts(seeds["SMS"].to_list())
    classifier.save(
        classifier.train(x, (seeds["Label"] == "ham").to_numpy().astype(int), positive="ham"),
        tmp_path / "model",
    )
    unseen.write_csv(tmp_path / "unseen.tsv", separator="\t", quote_style="never")
    cfg = CurateConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "sources": [
                {"path": str(tmp_path / "unseen.tsv"), "modality": "text", "text_field": "SMS", "name": "sms"}
            ],
            "stages": {"near": False, "semantic": False},
            "rules": {
                "text": {
                    "min_words": 1,
                    "min_stopwords": 0,
                    "min_punct_line_fraction": 0,
                    "max_symbol_ratio": 10,
                    "min_mean_word_length": 0,
                    "max_mean_word_length": 100,
                    "max_digit_ratio": 1,
                }
            },
            "quality": {"model_dir": str(tmp_path / "model"), "drop_below": 0.5},
        }
    )
    ws, m, _, _ = curate_core(cfg)
    con = connect(ws.root)
    by = dict(
        con.execute(
            "SELECT json_extract_string(meta, '$.Label') || ':' || coalesce(reason, 'kept'), count(*) "
            "FROM records WHERE reason IS DISTINCT FROM 'exact_dup' GROUP BY 1"
        ).fetchall()
    )
    spam = by.get("spam:low_quality", 0) + by.get("spam:kept", 0)
    assert by.get("spam:low_quality", 0) / spam > 0.8  # most unseen spam is dropped by the classifier
    assert by.get("ham:low_quality", 0) / (by["ham:kept"] + by.get("ham:low_quality", 0)) < 0.05
    q = con.execute("SELECT min(quality), max(quality), count(uncertainty) FROM shards").fetchone()
    assert 0.5 <= q[0] <= q[1] <= 1 and q[2] == m["rows"]
    low = by.get("spam:low_quality", 0) + by.get("ham:low_quality", 0)
    assert m["counts"]["by_reason"]["low_quality"] == low


def test_incremental_near_dedup_against_a_published_workspace(
    sample_cfg: CurateConfig, tmp_path: Path
) -> None:
    old_ws, _, _, _ = curate_core(sample_cfg)
    lines = Path(sample_cfg.sources[0].path).read_text(encoding="utf-8", errors="replace").splitlines()
    variants = [x for x in lines if '"variant": "near_dup"' in x]
    new_file = tmp_path / "new" / "texts.jsonl"
    new_file.parent.mkdir()
    new_file.write_text("\n".join(x.replace('"id": "doc-', '"id": "new-') for x in variants) + "\n")
    cfg = CurateConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws-new"),
            "sources": [{"path": str(new_file), "name": "texts"}],
            "near": {"published": [str(old_ws.root)]},
            "stages": {"semantic": False},
        }
    )
    ws, m, _, _ = curate_core(cfg)
    dec = connect(ws.root).execute("SELECT id, reason, dup_of FROM decisions ORDER BY id").fetchall()
    assert len(dec) == 12
    assert all(
        r == "near_dup" and d.startswith("texts/doc-") for _, r, d in dec
    )  # matched to the old version
    assert m["counts"]["kept"] == 0

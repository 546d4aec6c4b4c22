"""Decisions you can trust: one keeper per duplicate group, no pointer chains, unique ids, fresh results.

The keeper kernel is checked on random graphs (hypothesis); the whole decision on real text: a pool of
~1 KB documents built from real sentences with known duplicate groups (tests/pool.py), and Common Crawl.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline import dedup_graph
from pipeline.steps import run_local
from pipeline.workspace import Workspace
from schemas import columns as C
from schemas.config import CurateConfig

sys.path.insert(0, str(Path(__file__).parent))
import pool  # noqa: E402


def run_core(cfg: CurateConfig) -> tuple[Workspace, pl.DataFrame, dict]:
    """Ingest, admit, every map stage, the global steps, decide and publish, on one process."""
    run = run_local(cfg)
    return run.workspace, pl.from_arrow(run.decisions), run.published.manifest


# --- the keeper kernel on random graphs ---------------------------------------------------------


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, int]:
    n = draw(st.integers(2, 40))
    e = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80))
    edges = np.array(e, np.int64).reshape(-1, 2)
    rank = np.array(draw(st.permutations(list(range(n)))), np.int64)
    eligible = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
    return n, edges, rank, eligible, draw(st.integers(0, 2**31))


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_every_group_keeps_exactly_one_and_no_copy_points_at_a_copy(g) -> None:  # noqa: ANN001
    n, edges, rank, eligible, salt = g

    def check(members: np.ndarray, keepers: np.ndarray) -> np.ndarray:
        # a fixed, symmetric "direct similarity" per pair: about half the pairs pass, with a kind 1-3
        lo, hi = np.minimum(members, keepers), np.maximum(members, keepers)
        h = (lo * 1_000_003 + hi * 7919 + salt) % 1009
        return np.where(h % 2 == 0, 1 + h % 3, 0).astype(np.int8)

    group, dup_of, kind, _ = dedup_graph.assign_keepers(n, edges, rank, eligible, check)
    copies = np.flatnonzero(dup_of >= 0)
    keepers = dup_of[copies]
    assert (dup_of[keepers] == -1).all()  # a keeper is nobody's copy: no chain, no cycle
    assert eligible[keepers].all()  # only records no other rule drops are kept
    assert (check(copies, keepers) > 0).all() and (kind[copies] > 0).all()  # each copy is like its keeper
    assert (kind[dup_of < 0] == 0).all()
    for k in np.unique(group[group >= 0]):
        members = np.flatnonzero(group == k)
        if eligible[k]:  # the group's one survivor is its keeper
            assert set(members[dup_of[members] < 0]) == {k}
            assert (dup_of[members[members != k]] == k).all()
        else:  # no member may be kept: nobody is called a copy
            assert (dup_of[members] == -1).all() and not eligible[members].any()
    linked = np.unique(edges[edges[:, 0] != edges[:, 1]])
    assert (group[np.setdiff1d(np.arange(n), linked)] == -1).all()


# --- the whole decision on real text --------------------------------------------------------------


@pytest.fixture(scope="module")
def pool_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, pl.DataFrame, dict, pl.DataFrame]:
    pool.DATA.exists() or pytest.skip("../shared/data is absent")
    root = tmp_path_factory.mktemp("pool")
    rows = pool.write_pool(root / "pool.jsonl")
    truth = pl.DataFrame(rows).select(
        (pl.lit("pool/") + pl.col("id")).alias(C.ID), pl.col("group"), pl.col("edit")
    )
    cfg = CurateConfig.model_validate(  # every kind of link on: exact, near and semantic
        {
            "workspace": str(root / "ws"),
            "sources": [{"path": str(root / "pool.jsonl")}],
            "stages": {"semantic": True},
        }
    )
    ws, decisions, manifest = run_core(cfg)
    assert manifest["semantic"]["languages"]["en"]["compared"] > 0
    return ws, decisions, manifest, truth


def test_pool_every_duplicate_group_keeps_exactly_one_copy(pool_run) -> None:  # noqa: ANN001
    ws, decisions, manifest, truth = pool_run
    df = decisions.join(truth, on=C.ID)
    assert df.height == truth.height
    groups = df.group_by("group").agg(
        pl.len().alias("n"),
        (pl.col(C.DECISION) == C.KEEP).sum().alias("kept"),
        # a member that passes every rule other than the duplicate one could have been kept
        (pl.col(C.REASON).is_null() | pl.col(C.REASON).is_in(pool_dup_reasons())).any().alias("passes"),
    )
    dup_groups = groups.filter(pl.col("n") > 1)
    assert dup_groups.height == 300
    assert (dup_groups.filter(pl.col("passes"))["kept"] == 1).all()
    assert (dup_groups.filter(~pl.col("passes"))["kept"] == 0).all()
    # every dropped copy points at a kept record of its own truth group: no chain, no false merge
    copies = df.filter(pl.col(C.DUP_OF).is_not_null())
    target = df.select(
        pl.col(C.ID).alias(C.DUP_OF), pl.col("group").alias("g2"), pl.col(C.DECISION).alias("d2")
    )
    linked = copies.join(target, on=C.DUP_OF)
    assert linked.height == copies.height > 500
    assert (linked["d2"] == C.KEEP).all() and (linked["group"] == linked["g2"]).all()
    # documents with no copy are not dropped as anybody's duplicate
    singles = groups.filter(pl.col("n") == 1).select("group")
    assert df.join(singles, on="group").filter(pl.col(C.DUP_OF).is_not_null()).height == 0
    # the shards hold each id once, and exactly the kept records
    from pipeline.catalog import connect

    n, distinct = connect(ws.root).execute("SELECT count(*), count(DISTINCT id) FROM shards").fetchone()
    assert n == distinct == manifest["counts"]["kept"] == (df[C.DECISION] == C.KEEP).sum()


def pool_dup_reasons() -> list[str]:
    return [C.REASON_EXACT_DUP, C.REASON_NEAR_DUP, C.REASON_SEMANTIC_DUP]


# --- ids unique by construction -------------------------------------------------------------------


def _cc_texts(n: int) -> list[str]:
    """Real Common Crawl pages that pass the default web rules (long prose)."""
    rows = [r for r in pool.build_pool(n_base=n, n_groups=0, seed=3)]
    return [r["text"].replace(" | ", " ") + "." for r in rows]


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _no_semantic(cfg: dict) -> dict:
    # these tests are about ids, not vectors: the embedding stages stay off to keep them quick
    return cfg | {"stages": {"embed": False, "semantic": False}}


def test_same_stem_files_without_ids_publish_every_row_once(tmp_path: Path) -> None:
    texts = _cc_texts(8)
    _write_jsonl(tmp_path / "dumps" / "a" / "data.jsonl", [{"text": t} for t in texts[:4]])
    _write_jsonl(tmp_path / "dumps" / "b" / "data.jsonl", [{"text": t} for t in texts[4:]])
    cfg = CurateConfig.model_validate(
        _no_semantic(
            {"workspace": str(tmp_path / "ws"), "sources": [{"path": str(tmp_path / "dumps/*/data.jsonl")}]}
        )
    )
    ws, decisions, manifest = run_core(cfg)
    assert decisions.height == 8 and decisions[C.ID].n_unique() == 8
    assert manifest["counts"]["quarantined"] == 0
    from pipeline.catalog import connect

    con = connect(ws.root)
    n, distinct = con.execute("SELECT count(*), count(DISTINCT id) FROM shards").fetchone()
    assert n == distinct == manifest["counts"]["kept"] == manifest["rows"] > 0


def test_an_id_repeated_across_files_is_quarantined_and_the_first_kept(tmp_path: Path) -> None:
    texts = _cc_texts(6)
    first = [{"id": k, "text": t} for k, t in zip("abc", texts[:3], strict=True)]
    second = [{"id": k, "text": t} for k, t in zip("cda", texts[3:], strict=True)]
    _write_jsonl(tmp_path / "in" / "1.jsonl", first)
    _write_jsonl(tmp_path / "in" / "2.jsonl", second)
    base = {"sources": [{"path": str(tmp_path / "in/*.jsonl"), "name": "x"}]}
    cfg = CurateConfig.model_validate(_no_semantic(base | {"workspace": str(tmp_path / "ws")}))
    ws, decisions, manifest = run_core(cfg)
    assert sorted(decisions[C.ID]) == ["x/a", "x/b", "x/c", "x/d"]
    c = manifest["counts"]
    assert c["records"] == 4 and c["quarantined"] == 2 and c["ingested"] == 6  # rows read = 4 + 2
    from pipeline.catalog import connect

    q = connect(ws.root).execute("SELECT file, line, reason FROM quarantine ORDER BY line").fetchall()
    assert [(Path(f).name, line) for f, line, _ in q] == [("2.jsonl", 1), ("2.jsonl", 3)]
    assert all(r.startswith("duplicate_id: 'x/") and "1.jsonl line" in r for _, _, r in q)
    kept_texts = dict(
        connect(ws.root).execute("SELECT id, text FROM records").fetchall()
    )  # the first occurrence's text is the one admitted
    assert kept_texts["x/a"] == texts[0] and kept_texts["x/c"] == texts[2]

    # the first file loses its 'a': the second file's 'a' is admitted, as in a fresh workspace
    _write_jsonl(tmp_path / "in" / "1.jsonl", first[1:])
    _, again, m2 = run_core(cfg)
    fresh = CurateConfig.model_validate(_no_semantic(base | {"workspace": str(tmp_path / "fresh")}))
    ws3, fresh_decisions, m3 = run_core(fresh)
    assert again.equals(fresh_decisions) and m2["counts"] == m3["counts"]
    assert m2["counts"]["quarantined"] == 1


# --- freshness by content -------------------------------------------------------------------------


def test_editing_inputs_then_rerunning_equals_a_fresh_workspace(tmp_path: Path) -> None:
    from pipeline.sample import write_sample

    write_sample(tmp_path / "in")
    texts = _cc_texts(30)
    web = [{"id": f"w{i}", "text": t} for i, t in enumerate(texts)] + [{"id": "w-copy", "text": texts[0]}]
    _write_jsonl(tmp_path / "in" / "web.jsonl", web)
    _write_jsonl(tmp_path / "in" / "gone.jsonl", [{"id": "g1", "text": texts[1]}])
    from schemas.config import SourceConfig, load_config

    cfg = load_config(tmp_path / "in" / "curate.toml")
    cfg.workspace = str(tmp_path / "ws")
    cfg.sources += [SourceConfig(path=str(tmp_path / "in" / n)) for n in ("web.jsonl", "gone.jsonl")]
    _, before, m1 = run_core(cfg)
    copies = before.filter(pl.col(C.ID).is_in(["web/w0", "web/w-copy"]))
    assert sorted(copies[C.DUP_REASON].to_list(), key=str) == [None, C.REASON_EXACT_DUP]
    # edit: empty one page, change another, drop a line; a file leaves the config, a new one comes
    web[3]["text"] = ""
    web[4]["text"] = texts[5]  # now an exact copy of w5
    del web[7]
    _write_jsonl(tmp_path / "in" / "web.jsonl", web)
    _write_jsonl(tmp_path / "in" / "new.jsonl", [{"id": "n1", "text": texts[9]}])
    cfg.sources = [*cfg.sources[:-1], SourceConfig(path=str(tmp_path / "in" / "new.jsonl"))]
    ws, after, m2 = run_core(cfg)
    fresh = cfg.model_copy(update={"workspace": str(tmp_path / "fresh")})
    ws_fresh, fresh_decisions, m3 = run_core(fresh)
    assert after.equals(fresh_decisions)
    row = {r[C.ID]: r for r in after.to_dicts()}
    assert row["web/w3"][C.REASON] == "empty" and "web/w7" not in row and "gone/g1" not in row
    assert {row["web/w4"][C.DUP_REASON], row["web/w5"][C.DUP_REASON]} == {C.REASON_EXACT_DUP, None}
    assert m2["counts"] == m3["counts"] and m2["rows"] == m3["rows"]
    shards = [(ws.root / s["path"]).read_bytes() for s in m2["shards"]]
    assert shards == [(ws_fresh.root / s["path"]).read_bytes() for s in m3["shards"]]


# --- who a filter removes ---------------------------------------------------------------------------


def test_breakdown_shows_a_filter_that_removes_one_source_and_the_short_preset_fixes_it(
    tmp_path: Path, cc_dir: Path
) -> None:
    from pipeline.breakdown import summary_lines

    sms = pool.DATA / "sms_spam" / "SMSSpamCollection"
    rows = [ln.split("\t", 1) for ln in sms.read_text(encoding="utf-8").splitlines()[1:1001]]
    (tmp_path / "sms.tsv").write_text(
        "Label\tSMS\n" + "".join(f"{a}\t{b}\n" for a, b in rows), encoding="utf-8"
    )
    sources = [
        {"path": str(tmp_path / "sms.tsv"), "modality": "text", "text_field": "SMS", "label_field": "Label"},
        {"path": str(cc_dir / "*.jsonl.gz")},
    ]
    cfg = CurateConfig.model_validate(_no_semantic({"workspace": str(tmp_path / "ws"), "sources": sources}))
    _, decisions, m = run_core(cfg)
    b = m["breakdown"]
    sms_counts = b["by_source"]["sms"]
    assert sms_counts["records"] == 1000 and sms_counts["kept"] < 300  # the web rules drop most messages
    assert {"ham", "spam"} <= set(b["by_label"])
    skew = [k for k in b["skews"] if k["by"] == "source" and k["value"] == "sms"]
    assert skew and skew[0]["reason"] == "too_few_words" and skew[0]["share"] > 2 * skew[0]["others"]
    assert any(line.startswith("warning: too_few_words") and "sms" in line for line in summary_lines(m))

    short = cfg.model_copy(deep=True)
    short.rules = type(short.rules).model_validate({"text": {"preset": "short"}})
    short.sources = short.sources[:1]
    short.workspace = str(tmp_path / "ws-short")
    _, d2, m2 = run_core(short)
    ham = m2["breakdown"]["by_label"]["ham"]
    assert (
        ham["records"] - ham["kept"] - sum(v for r, v in ham["by_reason"].items() if r.endswith("_dup"))
    ) <= (0.02 * ham["records"])  # clean messages pass the short preset (duplicates aside)
    assert not [k for k in m2["breakdown"]["skews"] if k["reason"] == "too_few_words"]


def test_semantic_dedup_leaves_non_english_web_pages_alone(tmp_path: Path, cc_dir: Path) -> None:
    assert not CurateConfig().stages.semantic  # off by default (README: static vectors are not precise)
    cfg = CurateConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "sources": [{"path": str(cc_dir / "*.jsonl.gz")}],
            "stages": {"semantic": True},
        }
    )
    ws, _, m = run_core(cfg)
    from pipeline.catalog import connect

    n, sem = (
        connect(ws.root)
        .execute(
            "SELECT count(*), count(*) FILTER (WHERE reason = 'semantic_dup') FROM records "
            "WHERE lang IS DISTINCT FROM 'en' AND coalesce(dup_reason, '') NOT IN ('exact_dup', 'near_dup')"
        )
        .fetchone()
    )
    assert n > 350 and sem <= 0.03 * n
    langs = m["semantic"]["languages"]
    assert langs["en"]["compared"] > 250 and all(v["compared"] == 0 for k, v in langs.items() if k != "en")

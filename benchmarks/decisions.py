"""Duplicate decisions on real text: one keeper per group (ours) against independent per-stage keep
policies (what curate did before, and what a pipeline of separate dedup steps does), on the same
workspace outputs, side by side in one run.

Data sets (truth = which base document each row was made from):
  pool   tests/pool.py: ~1 KB documents of real sentences, 300 groups of 2-6 (exact copies, light edits)
  corpus benchmarks/near_dup.py build_corpus: ~1 KB documents of real sentences, 10 % edited copies
  cc     ../shared/data/commoncrawl_sample_dolma (no truth: groups and survivors only)

Printed per data set and policy: duplicate groups (truth groups with >= 2 rows), groups that keep no copy
although a member passes every other rule ("lost"), groups that keep more than one, dropped copies whose
keeper belongs to another truth group ("false merges"), and the run's dedup stats.

Usage: .venv/bin/python benchmarks/decisions.py [--corpus 10000] [--semantic on|off]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "benchmarks")]

from pipeline.stages.dedup import dedup_stats  # noqa: E402
from pipeline.steps import run_local  # noqa: E402
from pipeline.workspace import Workspace  # noqa: E402
from schemas import columns as C  # noqa: E402
from schemas.config import CurateConfig  # noqa: E402

DUPS = [C.REASON_EXACT_DUP, C.REASON_NEAR_DUP, C.REASON_SEMANTIC_DUP]


def run(path: Path, ws_root: Path, semantic: bool) -> tuple[Workspace, pl.DataFrame, float]:
    cfg = CurateConfig.model_validate(
        {"workspace": str(ws_root), "sources": [{"path": str(path)}], "stages": {"semantic": semantic}}
    )
    t = time.perf_counter()
    run = run_local(cfg)
    d = pl.from_arrow(run.decisions)
    ws = run.workspace
    return ws, d, time.perf_counter() - t


def independent(ws: Workspace, d: pl.DataFrame) -> pl.DataFrame:
    """The old decision on the same outputs: exact keeps the smallest id, near the longest (then smallest
    id), semantic the smallest id of its component; a record any stage calls a copy is dropped."""
    from pipeline.lsh import components

    length = pl.concat([pl.read_parquet(f, columns=[C.ID, C.TEXT]) for f in ws.stage_files("ingest")]).select(
        C.ID, pl.col(C.TEXT).str.len_chars().alias("len")
    )
    copy = set()
    ex = d.filter(pl.col(C.EXACT_CLUSTER).is_not_null())
    for _, g in ex.group_by(C.EXACT_CLUSTER):
        copy |= set(sorted(g[C.ID])[1:])
    near = ws.global_path("near")
    if near.exists():
        n = pl.read_parquet(near).join(length, on=C.ID)
        for _, g in n.group_by(C.NEAR_CLUSTER):
            keep = g.sort(["len", C.ID], descending=[True, False])[C.ID][0]
            copy |= set(g[C.ID]) - {keep}
    sem = ws.global_path("semantic")
    if sem.exists():
        p = pl.read_parquet(sem)
        if p.height:
            ids = pl.concat([p[C.ID_A], p[C.ID_B]]).unique().sort()
            idx = {v: i for i, v in enumerate(ids)}
            e = np.array([[idx[a], idx[b]] for a, b in zip(p[C.ID_A], p[C.ID_B], strict=True)])
            comp = components(len(ids), e)
            for c in np.unique(comp):
                members = sorted(ids.to_numpy()[comp == c])
                copy |= set(members[1:])
    base = d.with_columns(
        pl.when(pl.col(C.ID).is_in(list(copy))).then(pl.lit("dup")).otherwise(pl.col(C.REASON)).alias("r")
    )
    return base.with_columns(
        pl.when(pl.col("r").is_null()).then(pl.lit(C.KEEP)).otherwise(pl.lit(C.DROP)).alias("dec")
    )


def score(df: pl.DataFrame, truth: pl.DataFrame | None, decision: str, reason: str) -> dict:
    out = {"rows": df.height, "kept": int((df[decision] == C.KEEP).sum())}
    if truth is None:
        return out
    t = df.join(truth, on=C.ID)
    ok = pl.col(reason).is_null() | pl.col(reason).is_in([*DUPS, "dup"])
    g = t.group_by("group").agg(
        pl.len().alias("n"), (pl.col(decision) == C.KEEP).sum().alias("kept"), ok.any().alias("passes")
    )
    g = g.filter(pl.col("n") > 1)
    out |= {
        "dup_groups": g.height,
        "lost": int(g.filter(pl.col("passes") & (pl.col("kept") == 0)).height),
        "more_than_one": int((g["kept"] > 1).sum()),
    }
    return out


def false_merges(d: pl.DataFrame, truth: pl.DataFrame) -> int:
    t = d.join(truth, on=C.ID)
    copies = t.filter(pl.col(C.DUP_OF).is_not_null())
    other = t.select(pl.col(C.ID).alias(C.DUP_OF), pl.col("group").alias("g2"))
    return int(copies.join(other, on=C.DUP_OF).filter(pl.col("group") != pl.col("g2")).height)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=int, default=10000, help="documents in the built corpus (0 = skip)")
    ap.add_argument("--semantic", choices=["on", "off"], default="on")
    args = ap.parse_args()
    import pool
    from near_dup import build_corpus

    print(f"load: {os.getloadavg()[0]:.1f} (1-min average, 2 cores)")
    tmp = Path(tempfile.mkdtemp(prefix="curate-bench-decisions-"))
    sets = []
    rows = pool.write_pool(tmp / "pool.jsonl")
    sets.append(
        (
            "pool",
            tmp / "pool.jsonl",
            pl.DataFrame(rows).select((pl.lit("pool/") + pl.col("id")).alias(C.ID), "group"),
        )
    )
    if args.corpus:
        build_corpus(args.corpus, tmp / "corpus.parquet")
        c = pl.read_parquet(tmp / "corpus.parquet")
        c.select("id", "text").write_ndjson(tmp / "corpus.jsonl")
        sets.append(
            (
                "corpus",
                tmp / "corpus.jsonl",
                c.select((pl.lit("corpus/") + pl.col("id")).alias(C.ID), "group"),
            )
        )
    sets.append(("cc", ROOT.parent / "shared/data/commoncrawl_sample_dolma/*.jsonl.gz", None))
    for name, path, truth in sets:
        ws, d, secs = run(Path(path), tmp / f"ws-{name}", args.semantic == "on")
        ours = score(d, truth, C.DECISION, C.REASON)
        if truth is not None:
            ours["false_merges"] = false_merges(d, truth)
        old = score(independent(ws, d), truth, "dec", "r")
        print(
            json.dumps(
                {
                    "set": name,
                    "seconds": round(secs, 1),
                    "one_keeper": ours,
                    "independent": old,
                    "dedup_stats": dedup_stats(ws),
                }
            )
        )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

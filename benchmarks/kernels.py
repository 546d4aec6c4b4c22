"""Per-record CPU kernels (PII, language ID, rules, exact hash, static embedding): CPU-s and docs/CPU-s, ours
next to an older commit's kernels, both measured in this run on the same corpus.

Corpus: `build_corpus` of benchmarks/near_dup.py (~1 KB documents of real Common Crawl / SMS / MRPC sentences,
10 % edited copies), as the ingest stage would hand it to the map stages (id, modality, text, image, width,
height, data). Each tree (this checkout, and `--ref` extracted with `git archive` into a temp folder) runs in
its own process; each kernel runs once to warm up (model loads, compiles) on 200 documents, then on the whole
corpus, timed as CPU seconds of the process (user + sys, every thread), so the figures hold on a shared
machine. Also printed: language-ID accuracy on the Turku en/de/es/fi documents (train+dev+test), and
whether each kernel's output equals the old commit's (rules and exact hash must be identical; PII and
language agreement is a share of rows).

Usage: .venv/bin/python benchmarks/kernels.py [--n 10000] [--ref 671ac26] [--kernels pii,lang,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
KERNELS = ("pii", "lang", "rules", "exact", "embed")
LANGS = ("en", "de", "es", "fi")


def corpus(n: int) -> Path:
    """The ~1 KB document corpus of n rows (built once into the temp folder)."""
    path = Path(tempfile.gettempdir()) / f"curate_kernels_{n}.parquet"
    if not path.exists():
        sys.path.insert(0, str(ROOT))
        import importlib.util

        spec = importlib.util.spec_from_file_location("near_dup_bench", ROOT / "benchmarks" / "near_dup.py")
        assert spec and spec.loader
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        tmp = path.with_suffix(".tmp")
        mod.build_corpus(n, tmp)
        os.replace(tmp, path)
    return path


def _batch(path: Path):  # noqa: ANN202
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pq.read_table(path, columns=["id", "text"])
    n = t.num_rows
    return pa.table(
        {
            "id": t["id"],
            "modality": pa.array(["text"] * n, pa.string()),
            "text": t["text"],
            "image": pa.nulls(n, pa.binary()),
            "width": pa.nulls(n, pa.int32()),
            "height": pa.nulls(n, pa.int32()),
            "data": pa.nulls(n, pa.string()),
        }
    )


def worker(tree: Path, path: Path, kernels: list[str], out: Path) -> None:
    """Run the kernels of the code in `tree` on the corpus; write CPU-s per kernel and outputs to `out`."""
    sys.path.insert(0, str(tree))
    os.chdir(tree)
    import pyarrow as pa
    import pyarrow.parquet as pq

    from schemas.config import CurateConfig

    cfg = CurateConfig()
    batch = _batch(path)
    warm = batch.slice(0, 200)
    res: dict[str, dict] = {}
    cache = Path(tempfile.mkdtemp(prefix="kernels_cache_"))

    def run(name: str, fn) -> pa.Table:  # noqa: ANN001
        fn(warm)
        t0 = time.process_time()
        w0 = time.perf_counter()
        table = fn(batch)
        res[name] = {"cpu_s": time.process_time() - t0, "wall_s": time.perf_counter() - w0}
        return table

    outputs = {}
    if "pii" in kernels:
        from quality.pii import scan

        outputs["pii"] = run("pii", lambda b: scan(b, cfg.pii))
    if "lang" in kernels:
        from quality.langid import detect

        outputs["lang"] = run("lang", lambda b: detect(b, cfg.lang))
        acc = {}
        for lang in LANGS:
            texts = []
            for split in ("train", "dev", "test"):
                docs = json.loads(
                    (DATA / "turku_web_line_quality" / lang / f"{split}.json").read_text("utf-8")
                )
                texts += ["\n".join(d["text"]) for d in docs]
            got = detect(pa.table({"id": [str(i) for i in range(len(texts))], "text": texts}), cfg.lang)
            langs = got["lang"].to_pylist()
            acc[lang] = [sum(g == lang for g in langs), len(langs)]
        res["lang"]["turku"] = acc
    if "rules" in kernels:
        from quality.rules import apply_rules

        outputs["rules"] = run("rules", lambda b: apply_rules(b, cfg.rules))
    if "exact" in kernels:
        from pipeline.exact import content_hashes

        outputs["exact"] = run("exact", content_hashes)
    if "embed" in kernels:
        from pipeline.embed_cache import embed_table

        hashes = outputs.get("exact")
        if hashes is None:
            from pipeline.exact import content_hashes

            hashes = content_hashes(batch)
        import inspect

        eb = batch.append_column("content_hash", hashes["content_hash"])
        ew = eb.slice(0, 200)
        embed_table(ew, cfg.embed, cache_dir=cache / "warm")
        t0 = time.process_time()
        w0 = time.perf_counter()
        table = embed_table(eb, cfg.embed, cache_dir=cache / "run")  # stores its vectors in the cache
        res["embed"] = {"cpu_s": time.process_time() - t0, "wall_s": time.perf_counter() - w0}
        t0 = time.process_time()
        embed_table(eb, cfg.embed, cache_dir=cache / "run")  # every vector is now a cache hit
        res["embed"]["hit_cpu_s"] = time.process_time() - t0
        # as the embed stage runs a later part: nothing in the cache, words met before (ours: not stored)
        store = {"store": False} if "store" in inspect.signature(embed_table).parameters else {}
        t0 = time.process_time()
        embed_table(eb, cfg.embed, cache_dir=cache / "again", **store)
        res["embed"]["again_cpu_s"] = time.process_time() - t0
        outputs["embed"] = table.select(["id", "content_hash", "embedding"])
    for name, table in outputs.items():
        pq.write_table(table.replace_schema_metadata(None), out.parent / f"{out.stem}_{name}.parquet")
    out.write_text(json.dumps(res))


def _agreement(a: Path, b: Path, name: str) -> str:
    import numpy as np
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(a), pq.read_table(b)
    if name == "embed":
        va = np.asarray(ta["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False))
        vb = np.asarray(tb["embedding"].combine_chunks().flatten().to_numpy(zero_copy_only=False))
        same_hash = ta["content_hash"].equals(tb["content_hash"])
        if va.shape != vb.shape:
            return f"vector shapes differ {va.shape} vs {vb.shape}"
        return f"hashes {'identical' if same_hash else 'DIFFER'}, max |dv| {np.abs(va - vb).max():.2e}"
    if ta.equals(tb):
        return "identical"
    if name == "lang":
        same = sum(x == y for x, y in zip(ta["lang"].to_pylist(), tb["lang"].to_pylist(), strict=True))
        sa = np.nan_to_num(np.asarray(ta["lang_score"].to_numpy(zero_copy_only=False), float))
        sb = np.nan_to_num(np.asarray(tb["lang_score"].to_numpy(zero_copy_only=False), float))
        return f"lang equal {same}/{ta.num_rows}, max |d score| {np.abs(sa - sb).max():.1e}"
    rows = sum(ra == rb for ra, rb in zip(ta.to_pylist(), tb.to_pylist(), strict=True))
    return f"{rows}/{ta.num_rows} rows equal"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="documents in the corpus")
    ap.add_argument("--ref", default="671ac26", help="git commit whose kernels are the baseline ('' = none)")
    ap.add_argument("--kernels", default=",".join(KERNELS))
    ap.add_argument("--worker", nargs=2, metavar=("TREE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    kernels = [k for k in args.kernels.split(",") if k]
    path = corpus(args.n)
    if args.worker:
        worker(Path(args.worker[0]), path, kernels, Path(args.worker[1]))
        return
    tmp = Path(tempfile.mkdtemp(prefix="kernels_"))
    trees = {"ours": ROOT}
    if args.ref:
        old = tmp / "old"
        old.mkdir()
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", args.ref, "quality", "pipeline", "schemas"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        trees[args.ref] = old
    results = {}
    for label, tree in trees.items():
        out = tmp / f"{label}.json"
        cmd = [sys.executable, __file__, "--n", str(args.n), "--kernels", args.kernels, "--worker"]
        subprocess.run([*cmd, str(tree), str(out)], check=True)
        results[label] = json.loads(out.read_text())
    load = os.getloadavg()
    print(f"corpus: {args.n:,} ~1 KB documents of real sentences (build_corpus); load {load[0]:.1f} "
          f"(1-min avg, 2 cores); CPU-s = user+sys of the process, warm (models loaded)")  # fmt: skip
    head = f"{'kernel':8s}" + "".join(f" | {lbl[:10]:>10s} CPU-s  docs/CPU-s" for lbl in results)
    if args.ref:
        head += " | speed-up | output vs old"
    print(head)
    for k in kernels:
        row = f"{k:8s}"
        for r in results.values():
            c = r[k]["cpu_s"]
            row += f" | {c:16.2f}  {args.n / max(c, 1e-9):10,.0f}"
        if args.ref:
            ours, old = results["ours"][k]["cpu_s"], results[args.ref][k]["cpu_s"]
            same = _agreement(tmp / f"ours_{k}.parquet", tmp / f"{args.ref}_{k}.parquet", k)
            row += f" | {old / max(ours, 1e-9):7.1f}x | {same}"
        print(row)
    if "embed" in kernels:
        for label, r in results.items():
            e = r["embed"]
            print(f"embed ({label}): every vector a cache hit {e['hit_cpu_s']:.2f} CPU-s; nothing cached but "
                  f"the words met before (a later part) {e['again_cpu_s']:.2f} CPU-s")  # fmt: skip
    if "lang" in kernels:
        for label, r in results.items():
            acc = r["lang"]["turku"]
            cells = ", ".join(f"{lang} {a}/{b}" for lang, (a, b) in acc.items())
            tot = sum(a for a, _ in acc.values()) / sum(b for _, b in acc.values())
            print(f"language ID on Turku documents, all splits ({label}): {cells} (all {tot:.3f})")


if __name__ == "__main__":
    main()

"""DataTrove's equivalent of curate's default text path, for benchmarks/end_to_end.py (in .venv-datatrove).

Four executors, as DataTrove's MinHash example has them:
  1. JsonlReader -> GopherQualityFilter -> JsonlWriter (the passing documents) -> MinhashDedupSignature
     (tasks = one per input file)
  2. MinhashDedupBuckets (tasks = the number of buckets: DataTrove needs a multiple of it)
  3. MinhashDedupCluster (one task)
  4. JsonlReader (stage 1's output) -> MinhashDedupFilter (removed documents to an exclusion writer)
     -> JsonlWriter (the kept documents)
Word n-grams, buckets x hashes per bucket are given on the command line (end_to_end.py passes curate's
[near] defaults: word bigrams, 128 hashes, the same bands x rows). Prints one JSON line starting with
{"datatrove" ...}: documents passed/kept, seconds per stage, and clusters.tsv (id, MinHash cluster or -1,
kept 0/1) for every document its Gopher filter passed.

Usage (setup: bash benchmarks/peers/setup_datatrove.sh):
  .venv-datatrove/bin/python benchmarks/peers/datatrove_minhash.py --input DIR --work DIR [--files N]
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path


def rows_of(folder: Path) -> list[tuple[str, int]]:
    """(id, MinHash cluster id or -1) of the documents in a folder of JSONL(.gz) files DataTrove wrote."""
    out = []
    for f in sorted(folder.glob("*.jsonl*")):
        with gzip.open(f, "rt") if f.suffix == ".gz" else open(f) as fh:
            for line in fh:
                r = json.loads(line)
                out.append((r["id"], int((r.get("metadata") or {}).get("minhash_cluster_id", -1))))
    return out


def main() -> None:
    """Run the four stages, time each, print the summary line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, required=True, help="folder of the corpus' JSONL.gz files")
    ap.add_argument("--glob", default="part-*.jsonl.gz")
    ap.add_argument("--work", type=Path, required=True, help="folder for every stage's output and logs")
    ap.add_argument("--files", type=int, default=1, help="input files (= tasks of stages 1 and 4)")
    ap.add_argument("--workers", type=int, default=2, help="worker processes per stage")
    ap.add_argument("--ngram", type=int, default=2)
    ap.add_argument("--bands", type=int, default=14, help="MinHash buckets")
    ap.add_argument("--rows", type=int, default=8, help="hashes per bucket")
    ap.add_argument("--start-method", default="forkserver", help="multiprocess start method (its default)")
    args = ap.parse_args()

    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature
    from datatrove.pipeline.filters import GopherQualityFilter
    from datatrove.pipeline.readers import JsonlReader
    from datatrove.pipeline.writers import JsonlWriter

    w = args.work
    cfg = MinhashConfig(n_grams=args.ngram, num_buckets=args.bands, hashes_per_bucket=args.rows)
    files = args.files
    common = {"workers": args.workers, "start_method": args.start_method}
    stages = [
        (
            "1_read_gopher_signatures",
            LocalPipelineExecutor(
                pipeline=[
                    JsonlReader(str(args.input), glob_pattern=args.glob),
                    GopherQualityFilter(),
                    JsonlWriter(str(w / "passed")),
                    MinhashDedupSignature(output_folder=str(w / "signatures"), config=cfg),
                ],
                tasks=files,
                logging_dir=str(w / "logs" / "1"),
                **common,
            ),
        ),
        (
            "2_buckets",
            LocalPipelineExecutor(
                pipeline=[
                    MinhashDedupBuckets(
                        input_folder=str(w / "signatures"), output_folder=str(w / "buckets"), config=cfg
                    )
                ],
                tasks=cfg.num_buckets,
                logging_dir=str(w / "logs" / "2"),
                **common,
            ),
        ),
        (
            "3_cluster",
            LocalPipelineExecutor(
                pipeline=[
                    MinhashDedupCluster(
                        input_folder=str(w / "buckets"),
                        output_folder=str(w / "remove_ids"),
                        config=cfg,
                        save_cluster_id=True,
                    )
                ],
                tasks=1,
                logging_dir=str(w / "logs" / "3"),
                **common,
            ),
        ),
        (
            "4_filter_write",
            LocalPipelineExecutor(
                pipeline=[
                    JsonlReader(str(w / "passed")),
                    MinhashDedupFilter(
                        input_folder=str(w / "remove_ids"),
                        exclusion_writer=JsonlWriter(str(w / "removed")),
                        load_cluster_ids=True,
                    ),
                    JsonlWriter(str(w / "output")),
                ],
                tasks=files,
                logging_dir=str(w / "logs" / "4"),
                **common,
            ),
        ),
    ]
    times = {}
    for name, ex in stages:  # run one after another (no `depends`: each waits here for the one before)
        t = time.perf_counter()
        ex.run()
        times[name] = round(time.perf_counter() - t, 2)
    t = time.perf_counter()
    removed, kept = rows_of(w / "removed"), rows_of(w / "output")
    with open(w / "clusters.tsv", "w") as f:  # every document Gopher passed: id, cluster (-1: none), kept
        f.writelines(f"{i}\t{c}\t{k}\n" for k, rows in ((0, removed), (1, kept)) for i, c in rows)
    times["read_results"] = round(time.perf_counter() - t, 2)
    passed = len(removed) + len(kept)
    print(
        json.dumps(
            {
                "datatrove": True,
                "passed": passed,
                "removed": len(removed),
                "kept": len(kept),
                "stage_s": times,
                "clusters_file": str(w / "clusters.tsv"),
                "bands": args.bands,
                "rows": args.rows,
                "ngram": args.ngram,
            }
        )
    )


# The guard matters: DataTrove's LocalPipelineExecutor uses a "forkserver" pool that imports __main__, so an
# unguarded script starts the pipeline again in every worker, which fails ("An attempt has been made to start
# a new process before the current process has finished its bootstrapping phase") and the pool waits forever
# at ~0 CPU: the stall NOTES.md reports. Reproduced without the guard on 200 documents: no task launched in
# 150 s; with it, a 10k run finished in 241 s.
if __name__ == "__main__":
    main()

"""Embedding throughput: the stage vs SentenceTransformer.encode called directly; static vs transformer.

Same texts, same model, same batch size, runs interleaved and the best of `--repeats` kept, in wall time
and in this process's CPU time (the steadier figure when other jobs share the cores). Overhead = stage
time / direct time - 1; the stage must stay within 5 %. `embed_table` also pays hashing and the cache
write (cold cache), and a warm-cache rerun shows what a second run costs. On a loaded machine wall times
swing more than 5 % between runs, so the stage's own work is also timed inside one call: the time
`embed_table` spends outside `SentenceTransformer.encode` (conversion, hashing, lookup, cache write).

Usage: .venv/bin/python benchmarks/embed.py [--n 1000] [--docs 200] [--repeats 3] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(
    0, str(ROOT)
)  # the repo's packages, not this folder (benchmarks/quality.py shadows `quality`)


def sms(n: int) -> list[str]:
    lines = (DATA / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[1:]
    return [ln.split("\t", 1)[1] for ln in lines][:n]


def web_docs(n: int) -> list[str]:
    out: list[str] = []
    for f in sorted((DATA / "commoncrawl_sample_dolma").glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            out += [json.loads(line)["text"] for line in fh]
    return [t for t in out if len(t) > 1500][:n]


class EncodeTimer:
    """Wraps a model's `encode` to add up the time spent inside it (so a stage's own work can be isolated)."""

    def __init__(self, model) -> None:
        self.model, self.encode, self.inside = model, model.encode, 0.0
        model.encode = self

    def __call__(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return self.encode(*args, **kwargs)
        finally:
            self.inside += time.perf_counter() - t

    def restore(self) -> None:
        self.model.encode = self.encode


def best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    from pipeline.embed_cache import embed_table
    from quality.embed import embed_texts, load_transformer
    from schemas.embed import EmbedConfig

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="SMS texts")
    ap.add_argument("--docs", type=int, default=200, help="web documents (~256 tokens after truncation)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    tcfg = EmbedConfig(embedder="transformer", device=args.device, batch_size=args.batch_size)
    scfg = EmbedConfig(embedder="static", device=args.device)
    model = load_transformer(tcfg)
    embed_texts(["warm up"], scfg)
    for name, texts in (("sms", sms(args.n)), ("web docs", web_docs(args.docs))):
        model.encode(texts[:32], batch_size=args.batch_size)  # warm-up
        arr = pa.array(texts)
        times: dict[str, list[float]] = {"direct": [], "stage": [], "table": []}
        cpu: dict[str, list[float]] = {"direct": [], "stage": [], "table": []}
        batch = pa.table({"id": [str(i) for i in range(len(texts))], "text": arr})
        for _ in range(args.repeats):  # interleaved, so load changes hit all sides alike
            for key in ("direct", "stage", "table"):
                with tempfile.TemporaryDirectory() as d:
                    t, c = time.perf_counter(), time.process_time()
                    if key == "direct":
                        model.encode(texts, batch_size=args.batch_size, normalize_embeddings=True)
                    elif key == "stage":
                        embed_texts(arr, tcfg)
                    else:
                        embed_table(batch, tcfg, d)
                    times[key].append(time.perf_counter() - t)
                    cpu[key].append(time.process_time() - c)
        direct, cdirect = min(times["direct"]), min(cpu["direct"])
        timer = EncodeTimer(model)
        own = []
        for _ in range(args.repeats):
            with tempfile.TemporaryDirectory() as d:
                timer.inside = 0.0
                t = time.perf_counter()
                embed_table(batch, tcfg, d)
                total = time.perf_counter() - t
                own.append((total - timer.inside, timer.inside))
        timer.restore()
        own_s, enc_s = min(own)
        with tempfile.TemporaryDirectory() as d:
            embed_table(batch, tcfg, d)
            warm = best(lambda b=batch, d=d: embed_table(b, tcfg, d), args.repeats)
        static = best(lambda a=arr: embed_texts(a, scfg), args.repeats)
        n = len(texts)
        print(f"\n{name}: {n} texts, batch {args.batch_size}, best of {args.repeats}")
        print(f"  SentenceTransformer.encode direct : {direct:7.2f} s  {n / direct:8.0f} texts/s")
        for label, key in (("embed_texts (stage)      ", "stage"), ("embed_table, cold cache  ", "table")):
            w, c = min(times[key]), min(cpu[key])
            print(f"  {label}          : {w:7.2f} s  {n / w:8.0f} texts/s  overhead "
                  f"{100 * (w / direct - 1):+.1f} % wall, {100 * (c / cdirect - 1):+.1f} % CPU")  # fmt: skip
        print(f"  embed_table's own work (outside encode, same call): {own_s:.3f} s = "
              f"{100 * own_s / enc_s:.2f} % of its {enc_s:.2f} s in encode")  # fmt: skip
        print(f"  embed_table, warm cache (rerun)   : {warm:7.3f} s  {n / warm:8.0f} texts/s")
        print(f"  static tier (model2vec)           : {static:7.3f} s  {n / static:8.0f} texts/s  "
              f"= {direct / static:.0f}x the transformer")  # fmt: skip


if __name__ == "__main__":
    main()

"""The benchmark corpus: ~1 KB documents of real sentences with known near-duplicate and exact copies.

Sentences (30-300 characters, deduplicated) come from the Common Crawl sample
(../shared/data/commoncrawl_sample_dolma), the SMS Spam Collection and MRPC. A base document strings
randomly drawn sentences until it reaches 1,000 characters; two base documents share almost no word
bigram (about 32k sentences, ~10 per document). Of the rows (defaults):

  87 % base documents,
  10 % near-duplicates: a copy of an earlier base document with one edit (boilerplate added, a cut,
       typos, reflowed lines or a truncation; see `edit`),
   3 % exact copies: the same text as an earlier base document or near-duplicate, under a new id.

Copies point at any earlier row, so they cross files. Written as JSONL.gz files of `--file-rows` rows
(`{"id": "00000042", "text": ...}`) plus `truth.parquet` (id, group, kind, src: the row a copy was made
from; a base row's group is its own row number) and `corpus.json` (counts, seconds to build). The same
n and seed give the same bytes. Built once and cached under --cache (default tmp/bench, git-ignored).

Usage: .venv/bin/python benchmarks/corpus.py --n 1000000 [--seed 3] [--file-rows 50000] [--cache DIR]
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "tmp" / "bench"
VERSION = 1  # bump when the recipe changes: cached corpora of an older recipe are rebuilt
DOC_CHARS = 1000
CC = DATA / "commoncrawl_sample_dolma" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"

BOILERPLATE = [
    "Home | About us | Contact | Privacy policy | Terms of use",
    "This website uses cookies to improve your experience. By continuing you accept our use of cookies.",
    "Share this: Facebook Twitter Email Print",
    "Copyright 2019 All rights reserved. Powered by WordPress.",
    "Subscribe to our newsletter to get the latest updates in your inbox.",
    "Skip to main content",
]
EDITS = ["boilerplate", "drop_paragraph", "typos", "reflow", "truncate"]


def edit(text: str, kind: str, rng: random.Random) -> str:
    """A near-duplicate of text with one stated edit."""
    lines = [x for x in text.split("\n") if x.strip()]
    if kind == "boilerplate":
        return "\n".join(rng.sample(BOILERPLATE, 2) + lines + rng.sample(BOILERPLATE, 2))
    if kind == "drop_paragraph":
        if len(lines) > 3:
            k = max(1, len(lines) // 8)
            start = rng.randrange(0, len(lines) - k)
            return "\n".join(lines[:start] + lines[start + k :])
        words = text.split()
        return " ".join(words[: int(len(words) * 0.85)])
    if kind == "typos":
        words = text.split(" ")
        for _ in range(max(1, len(words) // 30)):
            i = rng.randrange(len(words))
            w = words[i]
            if len(w) > 3:
                j = rng.randrange(len(w) - 1)
                words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        return " ".join(words)
    if kind == "reflow":
        words = text.split()
        out, line = [], []
        for w in words:
            line.append(w)
            if sum(len(x) + 1 for x in line) > 60:
                out.append(" ".join(line))
                line = []
        return "\n".join(out + [" ".join(line)])
    if kind == "truncate":
        return text[: int(len(text) * 0.8)]
    raise ValueError(kind)


def load_sentences() -> list[str]:
    """Distinct real sentences of 30-300 characters (Common Crawl sample, SMS, MRPC), sorted."""
    sents = []
    with gzip.open(CC, "rt") as f:
        for line in f:
            sents += [s for s in re.split(r"(?<=[.!?])\s+|\n", json.loads(line)["text"]) if 30 < len(s) < 300]
    sents += [
        line.split("\t", 1)[1]
        for line in (DATA / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").split("\n")[1:]
        if "\t" in line
    ]
    for line in (DATA / "mrpc" / "msr_paraphrase_train.txt").read_text(encoding="utf-8-sig").split("\n")[1:]:
        parts = line.split("\t")
        if len(parts) == 5:
            sents += parts[3:]
    # one sentence must not make most of a document (else two documents sharing it are true near-dups)
    return sorted({s for s in sents if 30 < len(s) < 300})


@dataclass
class Corpus:
    """A built corpus on disk."""

    root: Path
    n: int
    files: list[Path]
    truth: Path
    info: dict

    @property
    def glob(self) -> str:
        """A glob naming every data file (for a curate.toml source)."""
        return str(self.root / "part-*.jsonl.gz")


class _Plan:
    """Which row is what (vectorised), and each base row's sentences as a ragged array."""

    def __init__(self, n: int, seed: int, near: float, exact: float, sents: list[str]) -> None:
        rng = np.random.default_rng(seed)
        # 0 base, 1 near copy, 2 exact copy
        kind = rng.choice(3, size=n, p=[1 - near - exact, near, exact]).astype(np.int8)
        kind[0] = 0
        rows = np.arange(n)
        src = rows.copy()
        base = np.flatnonzero(kind == 0)
        nb = np.searchsorted(base, rows)  # base rows before each row (>= 1 for every row but 0)
        u = rng.random(n)
        is_near = kind == 1
        src[is_near] = base[(u[is_near] * nb[is_near]).astype(np.int64)]
        not_exact = np.flatnonzero(kind != 2)
        ne = np.searchsorted(not_exact, rows)
        is_exact = kind == 2
        src[is_exact] = not_exact[(u[is_exact] * ne[is_exact]).astype(np.int64)]
        group = rows.copy()
        group[is_near] = src[is_near]  # a base row's group is itself
        group[is_exact] = group[src[is_exact]]  # src is a base or near row: its group is final
        self.edit_kind = rng.integers(0, len(EDITS), n).astype(np.int8)
        # base documents: draw 40 sentences a row (>= 40 x 31 characters > DOC_CHARS), keep the prefix that
        # first reaches DOC_CHARS (sentence + separating space), as a ragged array over base rows
        lens = np.array([len(s) + 1 for s in sents], dtype=np.int32)
        start = np.zeros(n + 1, dtype=np.int64)
        chunks, counts = [], np.zeros(n, dtype=np.int64)
        for a in range(0, len(base), 100_000):
            b = base[a : a + 100_000]
            m = rng.integers(0, len(sents), (len(b), 40), dtype=np.int32)
            k = np.argmax(np.cumsum(lens[m], axis=1) >= DOC_CHARS, axis=1) + 1
            counts[b] = k
            chunks.append(m[np.arange(40)[None, :] < k[:, None]])
        np.cumsum(counts, out=start[1:])
        self.flat = np.concatenate(chunks) if chunks else np.zeros(0, np.int32)
        self.start, self.kind, self.src, self.group = start, kind, src, group
        self.sents, self.seed = sents, seed

    def text(self, i: int) -> str:
        """The text of row i (base, near copy or exact copy)."""
        k = self.kind[i]
        if k == 0:
            return " ".join([self.sents[j] for j in self.flat[self.start[i] : self.start[i + 1]]])
        if k == 2:
            return self.text(int(self.src[i]))
        rng = random.Random(self.seed * 1_000_003 + i)
        return edit(self.text(int(self.src[i])), EDITS[self.edit_kind[i]], rng)


def build_corpus(
    n: int,
    cache: Path = CACHE,
    seed: int = 3,
    file_rows: int = 50_000,
    near: float = 0.10,
    exact: float = 0.03,
    log=print,  # noqa: ANN001
) -> Corpus:
    """Build (or reuse from `cache`) n documents in JSONL.gz files of file_rows rows plus truth.parquet."""
    import polars as pl

    name = f"corpus-v{VERSION}-n{n}-s{seed}-f{file_rows}-near{near:g}-exact{exact:g}"
    root = Path(cache) / name
    done = root / "corpus.json"
    if done.exists():
        info = json.loads(done.read_text())
        return Corpus(root, n, [root / f for f in info["files"]], root / "truth.parquet", info)
    t0 = time.perf_counter()
    tmp = root.with_name(root.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    plan = _Plan(n, seed, near, exact, load_sentences())
    files = []
    for f, a in enumerate(range(0, n, file_rows)):
        b = min(n, a + file_rows)
        ids = [f"{i:08d}" for i in range(a, b)]
        buf = io.BytesIO()
        pl.DataFrame({"id": ids, "text": [plan.text(i) for i in range(a, b)]}).write_ndjson(buf)
        fname = f"part-{f:04d}.jsonl.gz"
        (tmp / fname).write_bytes(gzip.compress(buf.getvalue(), compresslevel=1, mtime=0))
        files.append(fname)
        log(f"  corpus: wrote {fname} ({b}/{n} rows, {time.perf_counter() - t0:.1f} s)")
    kinds = np.array(["base", "near", "exact"])[plan.kind]
    kinds = np.where(plan.kind == 1, np.char.add("near:", np.array(EDITS)[plan.edit_kind]), kinds)
    pl.DataFrame(
        {
            "id": [f"{i:08d}" for i in range(n)],
            "group": plan.group,
            "kind": kinds,
            "src": [f"{i:08d}" for i in plan.src],
        }
    ).write_parquet(tmp / "truth.parquet")
    info = {
        "n": n,
        "seed": seed,
        "version": VERSION,
        "file_rows": file_rows,
        "files": files,
        "base": int((plan.kind == 0).sum()),
        "near_copies": int((plan.kind == 1).sum()),
        "exact_copies": int((plan.kind == 2).sum()),
        "sentences": len(plan.sents),
        "bytes_gz": sum((tmp / x).stat().st_size for x in files),
        "build_s": round(time.perf_counter() - t0, 1),
    }
    (tmp / "corpus.json").write_text(json.dumps(info, indent=1))
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return Corpus(root, n, [root / x for x in files], root / "truth.parquet", info)


def main() -> None:
    """Command line: build one corpus and print where it is."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=100_000, help="documents")
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--file-rows", type=int, default=50_000, help="rows per JSONL.gz file")
    ap.add_argument("--cache", type=Path, default=CACHE, help="folder of built corpora (default tmp/bench)")
    ap.add_argument("--rebuild", action="store_true", help="build again even when cached")
    args = ap.parse_args()
    if args.rebuild:
        for p in Path(args.cache).glob(f"corpus-v{VERSION}-n{args.n}-s{args.seed}-f{args.file_rows}-*"):
            shutil.rmtree(p)
    c = build_corpus(args.n, args.cache, args.seed, args.file_rows, log=lambda m: print(m, file=sys.stderr))
    print(json.dumps({"root": str(c.root), **c.info}, indent=1))


if __name__ == "__main__":
    main()

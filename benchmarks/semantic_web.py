"""Semantic dedup on real ~1 KB web documents: what each embedder, vector transform and eps drops, and how
precisely.

(a) commoncrawl_sample_dolma (717 raw pages, 63 languages): after removing exact duplicates, near
    duplicates (pipeline.exact / pipeline.near defaults on the same pages) and empty pages, the records each
    setting drops as semantic duplicates per language (one keeper per linked group, smallest id; a member is
    dropped when `semantic_similar` holds against its keeper, as the dedup graph does), and the precision
    of the flagged pairs against LABELS below: every pair any setting flagged here was read side by side
    (`--show-pairs` prints them, first 300 characters each) and judged a duplicate or not by hand.
(b) ~1 KB documents of random real sentences with 10 % edited copies (truth: `group`), at --n documents:
    benchmarks/near_dup.py `build_corpus` as is (its sentence pool is multilingual: Common Crawl lines in 40+
    languages, SMS, MRPC) and the same recipe on English sentences only (language id en >= 0.9). Printed:
    the share of documents with no true copy that are flagged, and pair precision / recall against `group`.
(c) STS-B test pairs (score >= 4.5 = duplicate), pair cosine precision / recall / F1, for reference.

Variants: embedder static (model2vec, first 512 tokens; `static128`: first 128 tokens) or transformer
(all-MiniLM-L6-v2, its 256-token window); `raw` = plain cosine over all languages (the old stage),
`centred` = each language's mean vector subtracted, only same-language pairs.

Usage: .venv/bin/python benchmarks/semantic_web.py [--tiers static,static128,transformer] [--n 10000]
       [--eps 0.02,0.05,0.1,0.15,0.2,0.25,0.3] [--show-pairs] [--cache DIR]
Vectors are cached in --cache (default ~/.cache/curate/bench-semantic-web): the transformer takes ~10 min
for 10k documents on the 2 shared cores here.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(
    0, str(ROOT)
)  # the repo's packages, not this folder (benchmarks/quality.py shadows `quality`)

CC = DATA / "commoncrawl_sample_dolma"
CC_FILES = {
    "main": "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz",
    "head0091": "cc_en_head-0091.jsonl.gz",
    "head0174": "cc_en_head-0174.jsonl.gz",
}

# Hand labels of every pair flagged on commoncrawl_sample_dolma by a setting printed here (read with
# --show-pairs; ids are <file>/<0-based line>). True = the same content: one page contained in the other, or
# the same boilerplate page with nothing else (only a number or a page name differs). False = different
# content, even when the page template is shared (two library records, two user profiles, two Wikipedia
# stubs of different villages, two blog posts).
LABELS: dict[tuple[str, str], tuple[bool, str]] = {}


def _label(ok: bool, why: str, *pairs: str) -> None:
    for p in pairs:
        a, b = sorted(p.split())
        LABELS[a, b] = (ok, why)


_label(True, "first page's text contained in the second (same blog post list)", "main/0448 main/0449")
_label(True, "'Now showing items x-y of z', nothing else", "main/0329 main/0509", "main/0329 main/0330")
_label(True, "'Now showing items x-y of z', nothing else", "main/0330 main/0509")
_label(True, "DokuWiki sitemap stub of one site, only the page name differs", "main/0172 main/0173")
_label(False, "library catalogue records of two different books", "main/0077 main/0078")
_label(False, "two different StackExchange user profiles", "main/0443 main/0545", "main/0253 main/0443")
_label(False, "two different personal blog posts", "main/0116 main/0456", "main/0057 main/0456")
_label(False, "two different blog posts", "main/0359 main/0457", "main/0006 main/0271")
_label(
    True, "DokuWiki sitemap stub, only the page name differs", "main/0172 main/0237", "main/0173 main/0237"
)
_label(False, "two different StackExchange user profiles", "main/0325 main/0545")
_label(
    False, "congress.gov action lists of different amendments", "main/0026 main/0027", "main/0026 main/0028"
)
_label(False, "congress.gov action lists of different amendments", "main/0027 main/0028")
_label(False, "a Wikimedia user page and an AdWords API reference page", "main/0298 main/0312")
_label(False, "two different wiki file pages", "main/0486 main/0531")
_label(False, "two different Italian forums' thread lists", "main/0179 main/0677")
_label(False, "map pages of two different Italian towns", "main/0323 main/0324")
_label(False, "Wikipedia stubs of different villages", "main/0387 main/0389")
_label(False, "Wikipedia stubs of different French communes", "main/0397 main/0401", "main/0397 main/0402")
_label(False, "Wikipedia stubs of different French communes", "main/0401 main/0402")
_label(False, "one blog's header over two different posts", "main/0543 main/0544")
_label(
    True,
    "library 'Context of ...' stub, only the subject name differs",
    "main/0079 main/0095",
    "main/0095 main/0101",
)
_label(False, "two different books' library records", "main/0080 main/0084")
_label(False, "one podcast blog's posts of two different weeks", "main/0231 main/0232")
_label(False, "different StackExchange pages or profiles", "main/0253 main/0545", "main/0325 main/0443")
_label(False, "different StackExchange pages or profiles", "main/0325 main/0512", "main/0312 main/0411")
_label(False, "an Italian repair guide and a Wikipedia user page", "main/0396 main/0528")
_label(
    False,
    "two different blog posts",
    *(
        f"{a} {b}"
        for a, others in (
            ("head0174/0004", "main/0359 main/0448 main/0449 main/0457"),
            ("main/0057", "main/0113 main/0155"),
            ("main/0155", "main/0456"),
            ("main/0271", "main/0448 main/0449"),
            ("main/0359", "main/0448 main/0449 main/0605"),
            ("main/0448", "main/0526 main/0573 main/0605"),
            ("main/0449", "main/0526 main/0573 main/0605"),
            ("main/0456", "main/0560"),
            ("main/0548", "main/0605"),
        )
        for b in others.split()
    ),
)
# the seeded sample of 20 pairs of the old rule (static, raw cosine, eps 0.10): all unrelated pages
_label(
    False,
    "unrelated pages (different subjects, often different languages' scripts)",
    "main/0008 main/0231",
    "main/0025 main/0284",
    "main/0035 main/0663",
    "main/0113 main/0560",
    "main/0160 main/0536",
    "main/0175 main/0350",
    "main/0231 main/0272",
    "main/0231 main/0460",
    "main/0249 main/0334",
    "main/0254 main/0347",
    "main/0271 main/0573",
    "main/0276 main/0601",
    "main/0276 main/0650",
    "main/0279 main/0348",
    "main/0342 main/0432",
    "main/0374 main/0520",
    "main/0425 main/0575",
    "main/0494 main/0602",
    "main/0540 main/0591",
    "main/0590 main/0651",
)


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def near_dup_module():
    """benchmarks/near_dup.py (build_corpus, edit, EDITS) loaded by path."""
    spec = importlib.util.spec_from_file_location("near_dup_bench", ROOT / "benchmarks" / "near_dup.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# --- data --------------------------------------------------------------------------------------------------
def cc_docs() -> tuple[list[str], list[str]]:
    """(ids, texts) of every commoncrawl_sample_dolma page."""
    ids, texts = [], []
    for tag, name in CC_FILES.items():
        with gzip.open(CC / name, "rt", encoding="utf-8") as f:
            for i, line in enumerate(f):
                ids.append(f"{tag}/{i:04d}")
                texts.append(json.loads(line).get("text") or "")
    return ids, texts


def exact_near_dups(ids: list[str], texts: list[str]) -> np.ndarray:
    """True for pages that exact or near dedup (our stages, default settings) already drop, or empty ones."""
    import duckdb
    import polars as pl

    from pipeline.exact import content_hashes, exact_clusters
    from pipeline.near import near_clusters, text_signatures
    from schemas import columns as C
    from schemas.near import NearConfig

    n = len(ids)
    batch = pa.table(
        {
            C.ID: ids,
            C.MODALITY: [C.TEXT_MODALITY] * n,
            C.TEXT: texts,
            C.IMAGE: pa.nulls(n, pa.binary()),
            C.DATA: pa.nulls(n, pa.string()),
        }
    )
    hashes = content_hashes(batch)
    con = duckdb.connect()
    con.register("h", hashes)
    exact = exact_clusters(con, "h")
    cfg = NearConfig()
    near = near_clusters([text_signatures(pl.Series(texts), batch[C.ID], cfg)], cfg)
    dropped = set(exact.filter(pa.compute.is_valid(exact[C.EXACT_DUP_OF]))[C.ID].to_pylist())
    dropped |= set(near.filter(pa.compute.is_valid(near[C.DUP_OF]))[C.ID].to_pylist())
    empty = np.array([h is None for h in hashes[C.CONTENT_HASH].to_pylist()])
    return np.array([i in dropped for i in ids]) | empty


def english_corpus(n: int, seed: int = 3) -> tuple[list[str], np.ndarray]:
    """build_corpus's recipe (same sources, 10 % edited copies) on sentences identified as en (>= 0.9)."""
    from quality.langid import detect_texts

    nd = near_dup_module()
    sents: list[str] = []
    with gzip.open(CC / CC_FILES["main"], "rt", encoding="utf-8") as f:
        for line in f:
            sents += [s for s in re.split(r"(?<=[.!?])\s+|\n", json.loads(line)["text"]) if 30 < len(s) < 300]
    sms = (DATA / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").split("\n")[1:]
    sents += [ln.split("\t", 1)[1] for ln in sms if "\t" in ln]
    for line in (DATA / "mrpc" / "msr_paraphrase_train.txt").read_text(encoding="utf-8-sig").split("\n")[1:]:
        parts = line.split("\t")
        if len(parts) == 5:
            sents += parts[3:]
    sents = sorted({s for s in sents if 30 < len(s) < 300})
    lang = detect_texts(sents)
    en = [
        s
        for s, code, score in zip(
            sents, lang["lang"].to_pylist(), lang["lang_score"].to_pylist(), strict=True
        )
        if code == "en" and score >= 0.9
    ]
    rng = random.Random(seed)
    docs: list[str] = []
    group: list[int] = []
    while len(docs) < n:
        if docs and rng.random() < 0.1:
            src = rng.randrange(len(docs))
            docs.append(nd.edit(docs[src], rng.choice(nd.EDITS), rng))
            group.append(group[src])
            continue
        d, size = [], 0
        while size < 1000:
            s = rng.choice(en)
            d.append(s)
            size += len(s) + 1
        docs.append(" ".join(d))
        group.append(len(group))
    return docs, np.array(group)


def mixed_corpus(n: int, cache: Path) -> tuple[list[str], np.ndarray]:
    """benchmarks/near_dup.py build_corpus(n) as is."""
    import polars as pl

    path = cache / f"build_corpus_{n}.parquet"
    if not path.exists():
        near_dup_module().build_corpus(n, path)
    df = pl.read_parquet(path)
    return df["text"].to_list(), df["group"].to_numpy()


def vectors(texts: list[str], tier: str, cache: Path) -> np.ndarray:
    """Vectors of `texts` for a tier name (static, static128, transformer), cached on disk."""
    from quality.embed import embed_texts
    from schemas.embed import EmbedConfig

    embedder, max_length = {"static": ("static", None), "static128": ("static", 128)}.get(tier, (tier, None))
    h = hashlib.blake2b(digest_size=12)
    for t in texts:
        h.update(t.encode("utf-8", "surrogatepass") + b"\0")
    path = cache / f"{tier}-{h.hexdigest()}.npy"
    if path.exists():
        return np.load(path)
    t0 = time.perf_counter()
    v = embed_texts(texts, EmbedConfig(embedder=embedder, device="cpu", max_length=max_length))
    print(f"  ({tier}: embedded {len(texts)} texts in {time.perf_counter() - t0:.0f} s)", flush=True)
    np.save(path, v)
    return v


def table_of(ids: list[str], v: np.ndarray, lang: list[str | None], score: list[float | None]) -> pa.Table:
    from quality.vectors import vectors_to_arrow
    from schemas import columns as C

    return pa.table(
        {
            C.ID: pa.array(ids, pa.string()),
            C.EMBEDDING: vectors_to_arrow(v),
            C.LANG: pa.array(lang, pa.string()),
            C.LANG_SCORE: pa.array(score, pa.float32()),
        }
    )


def raw_edges(table: pa.Table, eps: float) -> pa.Table:
    """The old rule: raw cosine >= 1 - eps, every language together, via semantic_edges with one language."""
    from pipeline.semantic import semantic_edges
    from schemas import columns as C
    from schemas.embed import SemanticConfig

    one = table.set_column(
        table.schema.get_field_index(C.LANG), C.LANG, pa.array(["all"] * table.num_rows, pa.string())
    ).drop_columns([C.LANG_SCORE])
    cfg = SemanticConfig(eps=eps, languages=["all"], center=False, max_component_size=10**9)
    return semantic_edges(one, cfg)[0]


def dropped(table: pa.Table, edges: pa.Table, cfg, raw: bool) -> np.ndarray:
    """Rows dropped when each linked group keeps its smallest id and a member goes if it is similar to it."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from pipeline.semantic import semantic_similar
    from schemas import columns as C

    ids = table[C.ID].to_pylist()
    pos = {x: i for i, x in enumerate(ids)}
    n = len(ids)
    out = np.zeros(n, bool)
    if not edges.num_rows:
        return out
    i = np.array([pos[x] for x in edges[C.ID_A].to_pylist()])
    j = np.array([pos[x] for x in edges[C.ID_B].to_pylist()])
    _, comp = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)), directed=False)
    order = np.argsort(np.array(ids, dtype=object).astype(str), kind="stable")
    keeper = np.full(comp.max() + 1, -1)
    for r in order[::-1]:
        keeper[comp[r]] = r
    member = np.flatnonzero((np.bincount(comp)[comp] > 1) & (keeper[comp] != np.arange(n)))
    pairs = pa.table({C.ID_A: [ids[m] for m in member], C.ID_B: [ids[keeper[comp[m]]] for m in member]})
    if raw:
        one = table.set_column(
            table.schema.get_field_index(C.LANG), C.LANG, pa.array(["all"] * n, pa.string())
        ).drop_columns([C.LANG_SCORE])
        ok = semantic_similar(one, pairs, cfg)
    else:
        ok = semantic_similar(table, pairs, cfg)
    out[member[ok]] = True
    return out


# --- (a) Common Crawl ------------------------------------------------------------------------------------
def common_crawl(tiers: list[str], grid: list[float], cache: Path, show: bool) -> None:
    from pipeline.semantic import semantic_edges
    from quality.langid import detect_texts
    from schemas import columns as C
    from schemas.embed import SemanticConfig

    ids, texts = cc_docs()
    gone = exact_near_dups(ids, texts)
    lang = detect_texts(texts)
    codes = lang["lang"].to_pylist()
    scores = lang["lang_score"].to_pylist()
    keep = np.flatnonzero(~gone)
    ids_k = [ids[i] for i in keep]
    text_of = dict(zip(ids, texts, strict=True))
    lang_k = [codes[i] for i in keep]
    score_k = [scores[i] for i in keep]
    is_en = np.array([c == "en" for c in lang_k])
    all_langs = sorted({c for c in lang_k if c})
    print(
        f"\n(a) commoncrawl_sample_dolma: {len(ids)} pages, {int(gone.sum())} exact/near duplicates or "
        f"empty; left {len(keep)}: {int(is_en.sum())} en, {int((~is_en).sum())} other "
        f"({len(all_langs)} languages)"
    )
    print(
        "drop: one keeper per linked group, a member dropped if similar to its keeper; unguarded: every\n"
        "member but one per group (the old stage); pairs T/F/?: judged duplicate / not / unread;\n"
        "largest: the largest linked group"
    )
    print(
        f"{'variant':<24} {'eps':>4} {'en drop':>8} {'non-en drop':>12} {'unguarded':>9} "
        f"{'en pairs T/F/?':>15} {'non-en pairs T/F/?':>19}  largest"
    )
    seen: dict[tuple[str, str], list[str]] = {}
    for tier in tiers:
        v = vectors([texts[i] for i in keep], tier, cache)
        table = table_of(ids_k, v, lang_k, score_k)
        for eps in grid:
            for mode in ("raw", "centred all-lang", "centred en"):
                if mode == "raw":
                    edges = raw_edges(table, eps)
                    cfg = SemanticConfig(eps=eps, languages=["all"], center=False)
                else:
                    langs = ["en"] if mode == "centred en" else all_langs
                    cfg = SemanticConfig(eps=eps, languages=langs)
                    edges = semantic_edges(table, cfg)[0]
                drop = dropped(table, edges, cfg, raw=mode == "raw")
                pos = {x: i for i, x in enumerate(ids_k)}
                tally = {True: [0, 0, 0], False: [0, 0, 0]}
                for a, b, s in zip(
                    *(edges[c].to_pylist() for c in (C.ID_A, C.ID_B, C.SIMILARITY)), strict=True
                ):
                    en_pair = bool(is_en[pos[a]] and is_en[pos[b]])
                    lab = LABELS.get((a, b))
                    tally[en_pair][0 if lab and lab[0] else 1 if lab else 2] += 1
                    if mode != "raw" or (tier == "transformer" and en_pair):
                        seen.setdefault((a, b), []).append(f"{tier}/{mode}/{eps}:{s:.3f}")
                if mode == "raw" and tier == "static" and eps == 0.10 and edges.num_rows:
                    # the old default: too many pairs to read all, so a seeded sample of 20
                    rng = np.random.default_rng(0)
                    for r in sorted(rng.choice(edges.num_rows, min(20, edges.num_rows), replace=False)):
                        a, b = edges[C.ID_A][int(r)].as_py(), edges[C.ID_B][int(r)].as_py()
                        s = edges[C.SIMILARITY][int(r)].as_py()
                        seen.setdefault((a, b), []).append(f"{tier}/raw/0.1 sample:{s:.3f}")
                largest, unguarded = 0, np.zeros(len(ids_k), bool)
                if edges.num_rows:
                    from scipy.sparse import coo_matrix
                    from scipy.sparse.csgraph import connected_components

                    i = np.array([pos[x] for x in edges[C.ID_A].to_pylist()])
                    j = np.array([pos[x] for x in edges[C.ID_B].to_pylist()])
                    n = len(ids_k)
                    _, comp = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(n, n)))
                    sizes = np.bincount(comp)
                    largest = int(sizes.max())
                    # without the check against the keeper: every member but one per group goes
                    first = np.zeros(n, bool)
                    first[np.unique(comp, return_index=True)[1]] = True
                    unguarded = (sizes[comp] > 1) & ~first
                non = ~is_en
                t_en, t_non = tally[True], tally[False]
                print(
                    f"{tier + ' ' + mode:<24} {eps:>4.2f} {int(drop[is_en].sum()):>3}/{int(is_en.sum()):<4}"
                    f" {int(drop[non].sum()):>4}/{int(non.sum())} {100 * drop[non].mean():4.1f}%"
                    f" {100 * unguarded[non].mean():>7.1f}%"
                    f" {t_en[0]:>5}/{t_en[1]}/{t_en[2]:<5} {t_non[0]:>7}/{t_non[1]}/{t_non[2]:<6}  {largest}"
                )
    if show:
        print("\nflagged pairs (static raw: a sample of 20 at eps 0.10), side by side, first 300 characters:")
        for (a, b), tags in sorted(seen.items()):
            lab = LABELS.get((a, b))
            verdict = (
                "unlabelled"
                if lab is None
                else ("DUPLICATE" if lab[0] else "not a duplicate") + f": {lab[1]}"
            )
            print(f"=== {a} vs {b} [{lang_k[ids_k.index(a)]}] {verdict}\n    {' '.join(tags[:6])}")
            for x in (a, b):
                print(f"    {x}: {text_of[x][:300]!r}")


# --- (b) 1 KB sentence documents --------------------------------------------------------------------------
def sentence_docs(tiers: list[str], grid: list[float], n: int, cache: Path) -> None:
    from pipeline.semantic import semantic_edges
    from quality.langid import detect_texts
    from schemas import columns as C
    from schemas.embed import SemanticConfig

    for name, (texts, group) in (
        ("build_corpus (multilingual sentence pool)", mixed_corpus(n, cache)),
        ("English sentences only", english_corpus(n)),
    ):
        ids = [f"{i:07d}" for i in range(len(texts))]
        lang = detect_texts(texts)
        codes, scores = lang["lang"].to_pylist(), lang["lang_score"].to_pylist()
        sizes = np.bincount(group)
        alone = sizes[group] == 1
        covered = np.array([c == "en" and (s or 0) >= 0.5 for c, s in zip(codes, scores, strict=True)])
        true_all = int((sizes * (sizes - 1) // 2).sum())
        print(
            f"\n(b) {n} ~1 KB docs, {name}: {int(alone.sum())} with no true copy, {true_all} true pairs; "
            f"{int(covered.sum())} identified en >= 0.5 (compared by default)"
        )
        print(f"{'variant':<22} {'eps':>5} {'no-copy docs flagged':>21} {'pairs':>7} {'P':>6} {'R':>6}")
        for tier in tiers:
            table = table_of(ids, vectors(texts, tier, cache), codes, scores)
            for eps in grid:
                for mode in ("raw", "centred en"):
                    if mode == "raw":
                        edges = raw_edges(table, eps)
                    else:
                        edges = semantic_edges(table, SemanticConfig(eps=eps))[0]
                    a = np.array(edges[C.ID_A].to_pylist(), dtype=np.int64)
                    b = np.array(edges[C.ID_B].to_pylist(), dtype=np.int64)
                    flagged = np.zeros(len(texts), bool)
                    flagged[a] = flagged[b] = True
                    tp = int((group[a] == group[b]).sum())
                    p = tp / len(a) if len(a) else 1.0
                    print(
                        f"{tier + ' ' + mode:<22} {eps:>5.2f} {100 * flagged[alone].mean():>6.2f}% "
                        f"({int(flagged[alone].sum()):>5})   {len(a):>7} {p:>6.3f} "
                        f"{tp / max(true_all, 1):>6.3f}"
                    )


# --- (c) STS-B -------------------------------------------------------------------------------------------
def stsb(tiers: list[str], grid: list[float], cache: Path) -> None:
    rows = [
        ln.split("\t") for ln in (DATA / "stsb" / "sts-test.csv").read_text(encoding="utf-8").splitlines()
    ]
    a, b = [r[5] for r in rows], [r[6] for r in rows]
    truth = np.array([float(r[4]) >= 4.5 for r in rows])
    sents = list(dict.fromkeys(a + b))
    pos = {s: i for i, s in enumerate(sents)}
    ia, ib = np.array([pos[s] for s in a]), np.array([pos[s] for s in b])
    print(f"\n(c) STS-B test: {len(rows)} pairs, {int(truth.sum())} duplicates (score >= 4.5)")
    for tier in tiers:
        v = vectors(sents, tier, cache)
        for mode in ("raw", "centred"):
            x = v - v.mean(axis=0, dtype=np.float64).astype(np.float32) if mode == "centred" else v.copy()
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            cos = np.einsum("ij,ij->i", x[ia], x[ib])
            line = []
            for eps in grid:
                pred = cos >= 1 - eps
                tp = int((pred & truth).sum())
                p, r = tp / max(pred.sum(), 1), tp / truth.sum()
                line.append(f"eps {eps:.2f} P {p:.2f} R {r:.2f} F1 {2 * p * r / max(p + r, 1e-9):.2f}")
            print(f"  {tier + ' ' + mode:<20} " + " | ".join(line))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiers", default="static,static128,transformer")
    ap.add_argument("--eps", default="0.02,0.05,0.1,0.15,0.2,0.25,0.3")
    ap.add_argument("--n", type=int, default=10_000, help="sentence documents in (b)")
    ap.add_argument("--parts", default="a,b,c", help="which of (a), (b), (c) to run")
    ap.add_argument("--show-pairs", action="store_true", help="print every pair flagged in (a)")
    ap.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "curate" / "bench-semantic-web")
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    tiers = args.tiers.split(",")
    grid = [float(e) for e in args.eps.split(",")]
    print(f"load at start: {uptime()}")
    t0 = time.perf_counter()
    if "a" in args.parts:
        common_crawl(tiers, grid, args.cache, args.show_pairs)
    if "b" in args.parts:
        sentence_docs(tiers, grid, args.n, args.cache)
    if "c" in args.parts:
        stsb(tiers, grid, args.cache)
    print(f"\n{time.perf_counter() - t0:.0f} s; load at end: {uptime()}")


if __name__ == "__main__":
    main()

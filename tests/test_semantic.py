"""Semantic dedup on real data with the real static model: Common Crawl pages in 60+ languages, ~1 KB
documents of real English sentences with edited copies, STS-B sentences, SMS duplicates across parts."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from schemas import columns as C
from schemas.embed import STATIC_EPS, TRANSFORMER_EPS, EmbedConfig, SemanticConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")
STATIC = EmbedConfig(embedder="static", device="cpu")


def vector_table(ids: list[str], texts: list[str], langs: list[str | None] | None = None) -> pa.Table:
    """`id`, `embedding` (static), `lang`, `lang_score` (the language stage's, unless `langs` is given)."""
    from quality.embed import embed_texts
    from quality.langid import detect_texts
    from quality.vectors import vectors_to_arrow

    if langs is None:
        found = detect_texts(texts)
        lang, score = found[C.LANG], found[C.LANG_SCORE]
    else:
        lang, score = pa.array(langs, pa.string()), pa.array([1.0] * len(ids), pa.float32())
    return pa.table(
        {
            C.ID: pa.array(ids, pa.string()),
            C.EMBEDDING: vectors_to_arrow(embed_texts(texts, STATIC)),
            C.LANG: lang,
            C.LANG_SCORE: score,
        }
    )


@pytest.fixture(scope="module")
def cc() -> pa.Table:
    """Every commoncrawl_sample_dolma page (63 languages, some empty) with static vectors and language."""
    ids, texts = [], []
    for f in sorted((DATA / "commoncrawl_sample_dolma").glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                ids.append(f"{f.name[:16]}/{i:04d}")
                texts.append(json.loads(line).get("text") or "")
    return vector_table(ids, texts)


def sentence_docs(n: int, seed: int = 5) -> tuple[list[str], np.ndarray]:
    """~1 KB documents of random real English sentences (MRPC's first sentences), 10 % of them edited
    copies of an earlier document (a sentence dropped, two swapped, or a sentence added); `group` is the
    document each was copied from (the truth)."""
    rows = (DATA / "mrpc" / "msr_paraphrase_train.txt").read_text(encoding="utf-8-sig").splitlines()[1:]
    sents = sorted({r.split("\t")[3] for r in rows if r.count("\t") == 4})
    rng = random.Random(seed)
    docs: list[list[str]] = []
    group: list[int] = []
    while len(docs) < n:
        if docs and rng.random() < 0.1:
            src = rng.randrange(len(docs))
            d = list(docs[src])
            kind = rng.randrange(3)
            if kind == 0:
                d.pop(rng.randrange(len(d)))
            elif kind == 1:
                a, b = rng.sample(range(len(d)), 2)
                d[a], d[b] = d[b], d[a]
            else:
                d.insert(rng.randrange(len(d)), rng.choice(sents))
            docs.append(d)
            group.append(group[src])
            continue
        d, size = [], 0
        while size < 1000:
            d.append(rng.choice(sents))
            size += len(d[-1]) + 1
        docs.append(d)
        group.append(len(group))
    return [" ".join(d) for d in docs], np.array(group)


@pytest.fixture(scope="module")
def docs() -> tuple[pa.Table, np.ndarray]:
    texts, group = sentence_docs(2000)
    return vector_table([f"d{i:05d}" for i in range(len(texts))], texts), group


def linked(edges: pa.Table) -> set[str]:
    return set(edges[C.ID_A].to_pylist()) | set(edges[C.ID_B].to_pylist())


def pairs_of(edges: pa.Table) -> list[tuple[str, str]]:
    return list(zip(edges[C.ID_A].to_pylist(), edges[C.ID_B].to_pylist(), strict=True))


def test_pairs_stay_within_one_covered_language(cc):
    from pipeline.semantic import semantic_edges

    lang = dict(zip(cc[C.ID].to_pylist(), cc[C.LANG].to_pylist(), strict=True))
    everything = sorted({v for v in lang.values() if v})
    edges, _ = semantic_edges(cc, SemanticConfig(eps=0.15, languages=everything))
    assert edges.num_rows > 0
    assert all(lang[a] == lang[b] for a, b in pairs_of(edges))
    default, _ = semantic_edges(cc, SemanticConfig())
    assert {lang[x] for x in linked(default)} <= {"en"}

    # the same English pages again labelled "de" (vectors nudged by 1e-4): near-identical vectors in two
    # languages are never paired, while the same copies labelled "en" are
    is_en = pa.compute.and_(pa.compute.equal(cc[C.LANG], "en"), pa.compute.greater(cc[C.LANG_SCORE], 0.5))
    en = cc.filter(is_en).slice(0, 60)
    emb = np.asarray(en[C.EMBEDDING].combine_chunks().flatten(), np.float32).reshape(en.num_rows, -1)
    from quality.vectors import vectors_to_arrow

    nudged = vectors_to_arrow(emb + 1e-4)
    copies = {
        c: pa.table(
            {
                C.ID: pa.compute.binary_join_element_wise(c, en[C.ID], ""),
                C.EMBEDDING: nudged,
                C.LANG: pa.array([c] * en.num_rows),
                C.LANG_SCORE: en[C.LANG_SCORE],
            }
        )
        for c in ("de", "en")
    }
    both = SemanticConfig(eps=0.05, languages=["en", "de"])
    cross, _ = semantic_edges(pa.concat_tables([en, copies["de"]]), both)
    assert not any(a.startswith("de") != b.startswith("de") for a, b in pairs_of(cross))
    same, _ = semantic_edges(pa.concat_tables([en, copies["en"]]), both)
    assert {(x, "en" + x) for x in en[C.ID].to_pylist()} <= set(pairs_of(same))  # each page with its copy


def test_uncovered_and_unknown_languages_are_skipped_and_counted(cc):
    from pipeline.semantic import UNKNOWN_LANGUAGE, semantic_edges

    edges, stats = semantic_edges(cc, SemanticConfig())
    langs = np.array([v or UNKNOWN_LANGUAGE for v in cc[C.LANG].to_pylist()], dtype=object)
    score = np.array([np.nan if s is None else s for s in cc[C.LANG_SCORE].to_pylist()])
    langs[~(score >= 0.5)] = UNKNOWN_LANGUAGE
    per = stats["languages"]
    assert set(per) == set(langs)
    for code, row in per.items():
        assert row["compared"] + row["skipped"] == (langs == code).sum()
        assert row["compared"] == (0 if code != "en" else (langs == "en").sum())
    assert per[UNKNOWN_LANGUAGE]["skipped"] > 0 and per["ru"]["skipped"] > 0
    assert stats["compared"] + stats["skipped"] == cc.num_rows
    assert stats["pairs"] == edges.num_rows and stats["compared"] > 250
    json.dumps(stats)  # the run summary stores it as JSON

    # the old rule (every language together, raw cosine, eps 0.10) links most non-English pages
    one = cc.set_column(cc.schema.get_field_index(C.LANG), C.LANG, pa.array(["x"] * cc.num_rows))
    old, _ = semantic_edges(
        one.drop_columns([C.LANG_SCORE]), SemanticConfig(eps=0.1, languages=["x"], center=False)
    )
    ids = np.array(cc[C.ID].to_pylist(), dtype=object)
    non_en = set(ids[(langs != "en") & (langs != UNKNOWN_LANGUAGE)])
    assert len(linked(old) & non_en) > 0.2 * len(non_en)
    assert not linked(edges) & non_en


def test_semantic_similar_agrees_with_semantic_edges(docs):
    from pipeline.semantic import semantic_edges, semantic_similar

    table, _ = docs
    cfg = SemanticConfig(eps=0.2)
    edges, stats = semantic_edges(table, cfg)
    assert edges.num_rows > 50 and stats["components_cut"] == 0
    assert edges[C.SIMILARITY].type == pa.float32()
    assert all(a < b for a, b in pairs_of(edges))
    assert semantic_similar(table, edges, cfg).all()
    # a table holding only the linked records gives the same answer with the means of the full run
    sub = table.filter(pa.compute.is_in(table[C.ID], pa.array(sorted(linked(edges)))))
    assert semantic_similar(sub, edges, cfg, means=stats["means"]).all()

    # every pair of 300 records: similar exactly where semantic_edges linked them (n <= max_cluster_size,
    # so all pairs were compared)
    rng = np.random.default_rng(0)
    ids = np.array(table[C.ID].to_pylist(), dtype=object)
    pick = np.sort(rng.choice(len(ids), 300, replace=False))
    found = set(pairs_of(edges))
    ii, jj = np.triu_indices(300, 1)
    pairs = pa.table({C.ID_A: ids[pick[ii]].tolist(), C.ID_B: ids[pick[jj]].tolist()})
    got = semantic_similar(table, pairs, cfg)
    want = np.array([(a, b) in found for a, b in zip(ids[pick[ii]], ids[pick[jj]], strict=True)])
    assert want.any() and (got == want).all()
    swapped = pa.table({C.ID_A: pairs[C.ID_B], C.ID_B: pairs[C.ID_A]})
    assert (semantic_similar(table, swapped, cfg) == want).all()
    # with k-means clusters (not every pair compared) the links are a subset of the similar pairs
    km, _ = semantic_edges(table, cfg.model_copy(update={"max_cluster_size": 200}))
    assert linked(km) and semantic_similar(table, km, cfg).all()


def test_documents_without_a_copy_are_not_flagged(docs):
    """Bound from benchmarks/semantic_web.py: on 10k such documents (English sentences), centred static
    vectors flagged none of the 8,247 with no true copy at any eps up to 0.20; raw cosine at the old eps 0.10
    flagged 43 %. The bound here (0.5 % at eps 0.20, 10x the default) leaves room for this smaller corpus
    built with other edits, and the old rule must fail it by far."""
    from pipeline.semantic import semantic_edges

    table, group = docs
    alone = np.bincount(group)[group] == 1
    ids = np.array(table[C.ID].to_pylist(), dtype=object)
    for eps in (STATIC_EPS, 0.2):
        edges, _ = semantic_edges(table, SemanticConfig(eps=eps))
        flagged = np.isin(ids, list(linked(edges)))
        assert flagged[alone].mean() <= 0.005, (eps, flagged[alone].sum())
        a = np.searchsorted(ids, edges[C.ID_A].to_pylist())
        b = np.searchsorted(ids, edges[C.ID_B].to_pylist())
        assert (group[a] == group[b]).mean() >= 0.95  # linked pairs are true copies
    assert flagged[~alone].mean() > 0.5  # and at eps 0.20 most copies are found
    old, _ = semantic_edges(table, SemanticConfig(eps=0.1, center=False))
    assert np.isin(ids[alone], list(linked(old))).mean() > 0.01  # fails the bound


def test_oversized_groups_are_cut_by_raising_their_threshold():
    from pipeline.semantic import semantic_edges

    rows = [ln.split("\t") for ln in (DATA / "stsb" / "sts-dev.csv").read_text(encoding="utf-8").splitlines()]
    sents = list(dict.fromkeys([r[5] for r in rows] + [r[6] for r in rows]))
    table = vector_table([f"s{i:05d}" for i in range(len(sents))], sents, ["en"] * len(sents))
    loose = SemanticConfig(eps=0.45, max_component_size=10**6)
    edges, stats = semantic_edges(table, loose)
    assert stats["largest_component"] > 20 and stats["components_cut"] == 0
    capped, cut = semantic_edges(table, loose.model_copy(update={"max_component_size": 20}))
    assert cut["components_cut"] > 0 and cut["links_cut"] == edges.num_rows - capped.num_rows > 0
    assert cut["largest_component"] <= 20
    kept = set(pairs_of(capped))
    assert kept <= set(pairs_of(edges))


def test_exact_duplicate_sms_across_parts_are_linked(tmp_path):
    import pyarrow.parquet as pq
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from pipeline.embed_cache import embed_table
    from pipeline.semantic import read_vectors, semantic_edges

    lines = (DATA / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[1:800]
    texts = [ln.split("\t", 1)[1] for ln in lines]
    ids = [f"sms-{i:04d}" for i in range(len(texts))]
    batch = pa.table({C.ID: ids, C.TEXT: texts})
    parts = []
    for n, part in enumerate((batch.slice(0, 400), batch.slice(400))):  # two workspace parts
        parts.append(tmp_path / "embed" / f"part-{n}.parquet")
        parts[-1].parent.mkdir(exist_ok=True)
        pq.write_table(embed_table(part, STATIC, tmp_path / "embeddings"), parts[-1])
    vectors = read_vectors(parts)
    assert vectors.column_names == [C.ID, C.EMBEDDING] and vectors.num_rows == len(texts)
    table = vectors.append_column(C.LANG, pa.array(["en"] * len(texts)))
    edges, _ = semantic_edges(table, SemanticConfig())
    pos = {x: i for i, x in enumerate(ids)}
    i = [pos[x] for x in edges[C.ID_A].to_pylist()]
    j = [pos[x] for x in edges[C.ID_B].to_pylist()]
    _, comp = connected_components(coo_matrix((np.ones(len(i)), (i, j)), shape=(len(ids), len(ids))))
    first: dict[str, int] = {}
    checked = 0
    for k, t in enumerate(texts):
        if t in first:
            assert comp[k] == comp[first[t]], t
            checked += 1
        else:
            first[t] = k
    assert checked > 5


def test_empty_input_missing_vectors_and_unknown_ids(docs):
    from pipeline.semantic import EDGE_SCHEMA, semantic_edges, semantic_similar

    table, _ = docs
    edges, stats = semantic_edges(table.slice(0, 0), SemanticConfig())
    assert edges.schema.equals(EDGE_SCHEMA) and edges.num_rows == 0 and stats["compared"] == 0
    sub = table.slice(0, 400)
    emb = pa.array(sub[C.EMBEDDING].to_pylist()[:-3] + [None] * 3, sub[C.EMBEDDING].type)
    nulls = sub.set_column(1, C.EMBEDDING, emb)
    edges, stats = semantic_edges(nulls, SemanticConfig(eps=0.3))
    assert stats["no_vector"] == 3 and stats["languages"]["en"]["skipped"] >= 3
    assert not linked(edges) & set(sub[C.ID].to_pylist()[-3:])
    pairs = pa.table({C.ID_A: ["nope", sub[C.ID][0].as_py()], C.ID_B: [sub[C.ID][1].as_py(), "gone"]})
    assert not semantic_similar(nulls, pairs, SemanticConfig(eps=0.99)).any()
    again, _ = semantic_edges(nulls, SemanticConfig(eps=0.3))
    assert again.equals(edges)  # deterministic


def test_eps_follows_the_embedder_unless_set():
    cfg = SemanticConfig()
    assert cfg.for_embedder("transformer").eps == TRANSFORMER_EPS
    assert cfg.for_embedder("static").eps == cfg.for_embedder("cascade").eps == STATIC_EPS
    assert cfg.threshold() == 1 - STATIC_EPS  # unresolved: the conservative value
    assert SemanticConfig(eps=0.3).for_embedder("transformer").eps == 0.3

"""Semantic dedup on real sentence pairs (STS-B) and real SMS duplicates, static-tier vectors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from schemas import columns as C
from schemas.embed import EmbedConfig, SemanticConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")
STATIC = EmbedConfig(embedder="static", device="cpu")


@pytest.fixture(scope="module")
def stsb_dev():
    """All distinct STS-B dev sentences as a table, plus each pair's row indices and gold score."""
    from quality.embed import embed_texts
    from quality.embed_cache import vectors_to_arrow

    rows = [ln.split("\t") for ln in (DATA / "stsb" / "sts-dev.csv").read_text(encoding="utf-8").splitlines()]
    sents = list(dict.fromkeys([r[5] for r in rows] + [r[6] for r in rows]))
    pos = {s: i for i, s in enumerate(sents)}
    pairs = np.array([(pos[r[5]], pos[r[6]]) for r in rows])
    score = np.array([float(r[4]) for r in rows])
    table = pa.table(
        {
            C.ID: [f"sts-{i:05d}" for i in range(len(sents))],
            C.EMBEDDING: vectors_to_arrow(embed_texts(sents, STATIC)),
        }
    )
    return table, pairs, score


def same_cluster(out: pa.Table, pairs: np.ndarray) -> np.ndarray:
    cl = np.array(out[C.SEMANTIC_CLUSTER].to_pylist(), dtype=object)
    return np.array([cl[i] is not None and cl[i] == cl[j] for i, j in pairs])


def test_near_identical_pairs_are_grouped_and_unrelated_ones_are_not(stsb_dev):
    from pipeline.semantic import semantic_clusters

    table, pairs, score = stsb_dev
    out = semantic_clusters(table, SemanticConfig())
    same = same_cluster(out, pairs)
    high, low = same[score >= 4.8].mean(), same[score <= 1.5].mean()
    assert high > 0.4, high
    assert low < high / 10, (high, low)


def test_groups_keep_one_record_and_point_the_others_at_it(stsb_dev):
    from pipeline.semantic import semantic_clusters

    table, _, _ = stsb_dev
    for keep in ("first", "central"):
        out = semantic_clusters(table, SemanticConfig(keep=keep, eps=0.12))
        assert out.schema.names == [C.ID, C.SEMANTIC_CLUSTER, C.SEMANTIC_DUP_OF, C.KMEANS_CLUSTER]
        assert out[C.ID].equals(table[C.ID])
        rows = out.to_pylist()
        groups: dict[str, list[dict]] = {}
        for r in rows:
            if r[C.SEMANTIC_CLUSTER] is not None:
                groups.setdefault(r[C.SEMANTIC_CLUSTER], []).append(r)
            else:
                assert r[C.SEMANTIC_DUP_OF] is None
        assert groups, "no semantic duplicates at all in STS-B dev"
        for kept, members in groups.items():
            assert len(members) > 1
            assert [m[C.ID] for m in members if m[C.SEMANTIC_DUP_OF] is None] == [kept]
            assert all(m[C.SEMANTIC_DUP_OF] == kept for m in members if m[C.ID] != kept)
            assert len({m[C.KMEANS_CLUSTER] for m in members}) == 1  # pairs never cross k-means clusters
            if keep == "first":
                assert kept == min(m[C.ID] for m in members)


def test_k_defaults_to_sqrt_n_and_missing_vectors_get_nulls(stsb_dev):
    from pipeline.semantic import semantic_clusters

    table, _, _ = stsb_dev
    sub = table.slice(0, 400)
    emb = pa.array(sub[C.EMBEDDING].to_pylist()[:-3] + [None] * 3, sub[C.EMBEDDING].type)
    out = semantic_clusters(pa.table({C.ID: sub[C.ID], C.EMBEDDING: emb}))
    km = out[C.KMEANS_CLUSTER].to_pylist()
    assert km[-3:] == [None] * 3 and out[C.SEMANTIC_CLUSTER].to_pylist()[-3:] == [None] * 3
    assert len(set(km[:-3])) <= math.ceil(math.sqrt(397))
    assert len(set(semantic_clusters(sub, SemanticConfig(k=5))[C.KMEANS_CLUSTER].to_pylist())) <= 5
    again = semantic_clusters(pa.table({C.ID: sub[C.ID], C.EMBEDDING: emb}))
    assert again.equals(out)  # seeded: the same input gives the same clusters
    empty = semantic_clusters(table.slice(0, 0))
    assert empty.num_rows == 0 and empty.schema.names == out.schema.names


def test_splitting_oversized_clusters_keeps_most_pairs(stsb_dev):
    from pipeline.semantic import semantic_clusters

    table, pairs, score = stsb_dev
    sub = table.slice(0, 1200)
    inside = (pairs < 1200).all(axis=1)
    whole = same_cluster(semantic_clusters(sub, SemanticConfig(k=1)), pairs[inside])
    split = same_cluster(semantic_clusters(sub, SemanticConfig(k=1, max_cluster_size=200)), pairs[inside])
    assert whole.sum() > 0
    assert split.sum() >= 0.6 * whole.sum()


def test_exact_duplicate_sms_across_parts_are_semantic_duplicates(tmp_path):
    import pyarrow.parquet as pq

    from pipeline.semantic import read_vectors, semantic_clusters
    from quality.embed_cache import embed_table

    lines = (DATA / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[1:800]
    texts = [ln.split("\t", 1)[1] for ln in lines]
    batch = pa.table({C.ID: [f"sms-{i:04d}" for i in range(len(texts))], C.TEXT: texts})
    parts = []
    for n, part in enumerate(
        (batch.slice(0, 400), batch.slice(400))
    ):  # two workspace parts, as the flow writes
        parts.append(tmp_path / "embed" / f"part-{n}.parquet")
        parts[-1].parent.mkdir(exist_ok=True)
        pq.write_table(embed_table(part, STATIC, tmp_path / "embeddings"), parts[-1])
    vectors = read_vectors(parts)
    assert vectors.column_names == [C.ID, C.EMBEDDING] and vectors.num_rows == len(texts)
    out = semantic_clusters(vectors, SemanticConfig(eps=0.02))
    first: dict[str, int] = {}
    checked = 0
    cl = out[C.SEMANTIC_CLUSTER].to_pylist()
    for i, t in enumerate(texts):
        if t in first:
            assert cl[i] is not None and cl[i] == cl[first[t]], t
            checked += 1
        else:
            first[t] = i
    assert checked > 5

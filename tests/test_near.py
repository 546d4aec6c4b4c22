"""Near-duplicate detection on real data: text (Common Crawl, Clough), records (dblp-acm), images (CIFAR-10).

Near-duplicates the tests make are stated where they are made (boilerplate added, typos, truncation,
a paragraph dropped, re-encoded or resized images).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import lsh, minhash
from pipeline.image_hash import hamming_pairs, image_clusters, image_phash
from pipeline.near import near_clusters, near_text_signatures, write_signatures
from pipeline.record_near import record_clusters, record_signatures
from schemas import columns as C
from schemas.near import NearConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
if not DATA.exists():
    pytest.skip(
        f"real data folder {DATA} is absent (CI lays shared/ beside the checkout)", allow_module_level=True
    )

CC = DATA / "commoncrawl_sample_dolma" / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
BOILERPLATE = [
    "Home | About us | Contact | Privacy policy",
    "This site uses cookies. By continuing you accept them.",
    "Copyright 2019 All rights reserved.",
    "Subscribe to our newsletter for the latest updates.",
]


def _cc_docs(n: int = 120, min_chars: int = 1500) -> list[str]:
    """Mutually dissimilar real Common Crawl documents: a page whose exact word-bigram Jaccard similarity
    with one kept already is 0.2 or more (repeats, pages of one template) is left out."""
    docs, sets = [], []
    with gzip.open(CC, "rt", encoding="utf-8") as f:
        for line in f:
            t = json.loads(line)["text"]
            if len(t) < min_chars or t.count(" ") < 200:
                continue
            s = _reference_shingles(t, 2)
            if all(len(s & o) / len(s | o) < 0.2 for o in sets):
                docs.append(t)
                sets.append(s)
            if len(docs) == n:
                break
    return docs


def _typos(text: str, rng: random.Random, every: int = 25) -> str:
    words = text.split(" ")
    for _ in range(max(1, len(words) // every)):
        i = rng.randrange(len(words))
        w = words[i]
        if len(w) > 3:
            j = rng.randrange(len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def _variant(text: str, kind: str, rng: random.Random) -> str:
    """A near-duplicate of a real document with one stated edit."""
    if kind == "boilerplate":
        return "\n".join([BOILERPLATE[0], BOILERPLATE[1], text, BOILERPLATE[2], BOILERPLATE[3]])
    if kind == "typos":
        return _typos(text, rng)
    if kind == "truncate":
        return text[: int(len(text) * 0.8)]
    if kind == "drop_paragraph":
        lines = text.split("\n")
        if len(lines) > 4:
            k = max(1, len(lines) // 10)
            s = rng.randrange(len(lines) - k)
            return "\n".join(lines[:s] + lines[s + k :])
        return text[int(len(text) * 0.1) :]
    if kind == "reflow":
        return " ".join(text.split()).upper()
    raise ValueError(kind)


KINDS = ["boilerplate", "typos", "truncate", "drop_paragraph", "reflow"]


@pytest.fixture(scope="module")
def corpus() -> tuple[pa.Table, dict[str, str]]:
    """Real documents plus one edited copy each; truth maps every id to the id of its base document."""
    rng = random.Random(11)
    docs = _cc_docs()
    ids, texts, truth = [], [], {}
    for i, d in enumerate(docs):
        ids.append(f"doc{i:03d}")
        texts.append(d)
        truth[ids[-1]] = ids[-1]
        kind = KINDS[i % len(KINDS)]
        ids.append(f"doc{i:03d}-{kind}")
        texts.append(_variant(d, kind, rng))
        truth[ids[-1]] = f"doc{i:03d}"
    return pa.table({C.ID: ids, C.TEXT: texts}), truth


def _pairs(labels: dict[str, str]) -> set[tuple[str, str]]:
    groups: dict[str, list[str]] = {}
    for k, v in labels.items():
        groups.setdefault(v, []).append(k)
    return {(a, b) for g in groups.values() for a in g for b in g if a < b}


def _labels(out: pa.Table, ids: list[str]) -> dict[str, str]:
    lab = {i: i for i in ids}
    for r in out.to_pylist():
        lab[r[C.ID]] = r[C.NEAR_CLUSTER]
    return lab


def test_defaults_find_edited_copies_of_real_documents(corpus):
    table, truth = corpus
    cfg = NearConfig()
    out = near_clusters([near_text_signatures(table, cfg)], cfg)
    pred, true = _pairs(_labels(out, table[C.ID].to_pylist())), _pairs(truth)
    tp = len(pred & true)
    assert tp / len(true) >= 0.9, f"recall {tp / len(true):.2f}: missed {sorted(true - pred)[:5]}"
    assert tp / max(1, len(pred)) >= 0.95, f"precision: false pairs {sorted(pred - true)[:5]}"
    missed = {k.split("-", 1)[1] for a, k in true - pred}
    assert len(missed) <= 1, f"edit kinds missed: {missed}"


def test_every_kept_record_has_no_dup_of_and_dups_point_to_a_kept_member(corpus):
    table, _ = corpus
    cfg = NearConfig()
    out = pl.from_arrow(near_clusters([near_text_signatures(table, cfg)], cfg))
    kept = out.filter(pl.col(C.DUP_OF).is_null())
    assert (kept[C.ID] == kept[C.NEAR_CLUSTER]).all()
    dups = out.filter(pl.col(C.DUP_OF).is_not_null())
    assert dups.height > 0
    assert (dups[C.DUP_OF] == dups[C.NEAR_CLUSTER]).all()
    assert set(dups[C.DUP_OF]) <= set(kept[C.ID])
    assert out[C.NEAR_CLUSTER].n_unique() == kept.height


def test_keep_policy_quality_then_longest_then_first_id(corpus):
    table, _ = corpus
    cfg = NearConfig()
    base = table.filter(pa.compute.equal(table[C.ID], "doc002"))[C.TEXT][0].as_py()
    texts = [base[: int(len(base) * 0.85)], base, base[: int(len(base) * 0.95)]]
    t = pa.table({C.ID: ["b-trunc", "c-full", "a-short"], C.TEXT: texts})
    sig = near_text_signatures(t, cfg)
    by_len = {r[C.ID]: r[C.DUP_OF] for r in near_clusters([sig], cfg).to_pylist()}
    assert by_len == {"c-full": None, "b-trunc": "c-full", "a-short": "c-full"}
    quality = pa.table({C.ID: ["b-trunc", "c-full", "a-short"], C.QUALITY: [0.9, 0.1, 0.5]})
    by_q = {r[C.ID]: r[C.DUP_OF] for r in near_clusters([sig], cfg, quality=quality).to_pylist()}
    assert by_q["b-trunc"] is None and by_q["c-full"] == "b-trunc" and by_q["a-short"] == "b-trunc"
    same = pa.table({C.ID: ["z", "m", "q"], C.TEXT: [base] * 3})
    by_id = {r[C.ID]: r[C.DUP_OF] for r in near_clusters([near_text_signatures(same, cfg)], cfg).to_pylist()}
    assert by_id == {"m": None, "q": "m", "z": "m"}


def test_parts_on_disk_give_the_same_clusters_as_one_table(corpus, tmp_path):
    table, _ = corpus
    cfg = NearConfig()
    whole = near_clusters([near_text_signatures(table, cfg)], cfg).sort_by(C.ID)
    paths = []
    for i, s in enumerate(range(0, table.num_rows, 37)):
        p = tmp_path / f"part-{i}.parquet"
        sig = near_text_signatures(table.slice(s, 37), cfg)
        if i % 2:  # both stored forms of `minhash`: fixed-size list (plain) and binary (write_signatures)
            pq.write_table(sig, p)
        else:
            write_signatures(sig, p)
        paths.append(p)
    parts = near_clusters(paths, cfg).sort_by(C.ID)
    assert parts.equals(whole)


def test_incremental_matches_new_records_against_published_signatures(corpus, tmp_path):
    table, truth = corpus
    cfg = NearConfig()
    is_base = pa.array([truth[i] == i for i in table[C.ID].to_pylist()])
    old, new = table.filter(is_base), table.filter(pa.compute.invert(is_base))
    published = tmp_path / "published.parquet"
    pq.write_table(near_text_signatures(old, cfg), published)
    out = near_clusters([near_text_signatures(new, cfg)], cfg, published=[published]).to_pylist()
    ids = set(new[C.ID].to_pylist())
    assert {r[C.ID] for r in out} <= ids, "published records are never reported"
    hits = [r for r in out if r[C.DUP_OF] == truth[r[C.ID]]]
    assert len(hits) >= 0.9 * len(ids)
    assert all(r[C.DUP_OF] is None or r[C.DUP_OF] in truth.values() for r in out)


def test_signatures_are_stable_across_processes(corpus):
    table, _ = corpus
    texts = table[C.TEXT].to_pylist()[:40]
    here, _, _ = minhash.signatures(pl.Series(texts), 64, 3, "word", seed=5)
    code = (
        "import sys, json, numpy as np, polars as pl; from pipeline import minhash;"
        "t = json.load(sys.stdin); s, _, _ = minhash.signatures(pl.Series(t), 64, 3, 'word', seed=5);"
        "sys.stdout.write(s.tobytes().hex())"
    )
    res = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    there = np.frombuffer(bytes.fromhex(res.stdout), dtype=np.uint32).reshape(here.shape)
    assert np.array_equal(here, there)


def _reference_shingles(text: str, n: int) -> set[str]:
    import re
    import unicodedata

    toks = re.sub(r"[\W_]+", " ", unicodedata.normalize("NFKC", text).lower()).split()
    return (
        {" ".join(toks[i : i + n]) for i in range(len(toks) - n + 1)} if len(toks) >= n else {" ".join(toks)}
    )


def test_estimated_jaccard_follows_the_exact_jaccard_of_real_texts(corpus):
    table, _ = corpus
    texts = table[C.TEXT].to_pylist()[:60]
    sig, counts, _ = minhash.signatures(pl.Series(texts), 256, 3)
    rng = random.Random(5)
    errors = []
    for i in range(0, 60, 2):  # a document and its edited copy, and a random other pair
        for a, b in ((i, i + 1), (i, rng.randrange(60))):
            sa, sb = _reference_shingles(texts[a], 3), _reference_shingles(texts[b], 3)
            exact = len(sa & sb) / len(sa | sb)
            est = float(minhash.jaccard_estimates(sig[a : a + 1], sig[b : b + 1])[0])
            errors.append(abs(est - exact))
    assert np.mean(errors) < 0.03 and max(errors) < 0.12, (np.mean(errors), max(errors))
    ref = [len(_reference_shingles(t, 3)) for t in texts]  # distinct shingles <= shingles counted
    assert all(r <= c + 1 for c, r in zip(counts, ref, strict=True))


def test_empty_and_short_texts():
    cfg = NearConfig(ngram=3)
    t = pa.table(
        {C.ID: ["e1", "e2", "p", "s1", "s2"], C.TEXT: ["", None, "!!! ...", "Hello World", "hello, world!"]}
    )
    sig = near_text_signatures(t, cfg)
    assert sig[C.MINHASH].null_count == 3
    out = {r[C.ID]: r[C.DUP_OF] for r in near_clusters([sig], cfg).to_pylist()}
    assert out == {"s1": None, "s2": "s1"} or out == {"s2": None, "s1": "s2"}


def test_band_choice_matches_datasketch():
    from datasketch.lsh import _optimal_param

    for t in (0.3, 0.5, 0.7, 0.85):
        for num_perm in (64, 128):
            assert lsh.optimal_bands(t, num_perm) == _optimal_param(t, num_perm, 0.5, 0.5)


def test_clough_similarity_orders_cut_light_heavy_non():
    d = DATA / "clough_plagiarism"
    with open(d / "file_information.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Category"] != "orig"]
    texts = [(d / f"orig_task{t}.txt").read_text(errors="replace") for t in "abcde"]
    texts += [(d / r["File"]).read_text(errors="replace") for r in rows]
    sig, _, _ = minhash.signatures(pl.Series(texts), 256, 3)
    sims: dict[str, list[float]] = {}
    for i, r in enumerate(rows):
        src = "abcde".index(r["Task"])
        sims.setdefault(r["Category"], []).append(float((sig[5 + i] == sig[src]).mean()))
    mean = {k: np.mean(v) for k, v in sims.items()}
    assert mean["cut"] > mean["light"] > mean["heavy"] > mean["non"], mean


def _dblp() -> tuple[pa.Table, set[tuple[str, str]]]:
    d = DATA / "er_magellan" / "structured_dblp_acm"
    ids, data = [], []
    for side in ("a", "b"):
        with open(d / f"table_{side}.csv", newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                ids.append(f"{side}{row.pop('_id')}")
                data.append(json.dumps(row, sort_keys=True))
    with open(d / "gold.csv", newline="") as f:
        gold = {(f"a{r['id1']}", f"b{r['id2']}") for r in csv.DictReader(f)}
    return pa.table({C.ID: ids, C.DATA: data}), gold


def test_records_dblp_acm_against_gold():
    table, gold = _dblp()
    cfg = NearConfig(record_fields=["title", "authors", "venue", "year"])
    out = record_clusters([record_signatures(table, cfg)], cfg)
    groups: dict[str, list[str]] = {}
    for r in out.to_pylist():
        groups.setdefault(r[C.NEAR_CLUSTER], []).append(r[C.ID])
    pred = {(a, b) for g in groups.values() for a in g if a[0] == "a" for b in g if b[0] == "b"}
    tp = len(pred & gold)
    precision, recall = tp / len(pred), tp / len(gold)
    f1 = 2 * precision * recall / (precision + recall)
    assert f1 >= 0.75, (precision, recall)
    tagged = cfg.model_copy(update={"record_tag_fields": True})
    sig_tagged = record_signatures(table, tagged)
    assert not sig_tagged[C.MINHASH].equals(record_signatures(table, cfg)[C.MINHASH])


def _cifar(n: int = 150) -> tuple[list[str], list[bytes]]:
    paths = sorted((DATA / "cifar10_sample" / "images").rglob("*.jpg"))[:: max(1, 1000 // n)][:n]
    return [p.stem + p.parent.name for p in paths], [p.read_bytes() for p in paths]


def _image_variant(blob: bytes, k: int) -> bytes:
    """A re-encoded (JPEG q=40), resized (2x, PNG) or brightened (+10 %) copy of an image."""
    from PIL import Image, ImageEnhance

    im = Image.open(io.BytesIO(blob)).convert("RGB")
    out = io.BytesIO()
    if k == 0:
        im.save(out, "JPEG", quality=40)
    elif k == 1:
        im.resize((im.width * 2, im.height * 2)).save(out, "PNG")
    else:
        ImageEnhance.Brightness(im).enhance(1.1).save(out, "JPEG", quality=90)
    return out.getvalue()


def test_phash_equals_imagehash_and_variants_cluster_with_their_originals():
    import imagehash
    from PIL import Image

    ids, blobs = _cifar()
    var_ids = [f"{i}-v" for i in ids[:60]]
    var_blobs = [_image_variant(b, k % 3) for k, b in enumerate(blobs[:60])]
    t = pa.table({C.ID: ids + var_ids, C.IMAGE: blobs + var_blobs})
    cfg = NearConfig()
    ph = image_phash(t, cfg)
    ref = [int(str(imagehash.phash(Image.open(io.BytesIO(b)))), 16) for b in blobs + var_blobs]
    assert ph[C.PHASH].to_pylist() == ref
    out = {r[C.ID]: r[C.NEAR_CLUSTER] for r in image_clusters([ph], cfg).to_pylist()}
    found = sum(1 for i, v in zip(ids, var_ids, strict=False) if v in out and out[v] == out.get(i))
    assert found >= 0.95 * len(var_ids)
    wrong = sum(
        1 for a in out for b in out if a < b and out[a] == out[b] and a.split("-")[0] != b.split("-")[0]
    )
    assert wrong <= 2


def test_multi_index_hamming_search_equals_brute_force():
    ids, blobs = _cifar(300)
    h = np.asarray(image_phash(pa.table({C.ID: ids, C.IMAGE: blobs}), NearConfig())[C.PHASH])
    for d in (3, 10, 20):
        brute = {
            (i, j) for i in range(len(h)) for j in range(i + 1, len(h)) if int(h[i] ^ h[j]).bit_count() <= d
        }
        assert set(map(tuple, hamming_pairs(h, d).tolist())) == brute


def test_dedup_command_writes_one_row_per_record(corpus, tmp_path):
    table, truth = corpus
    src = tmp_path / "docs.jsonl"
    with open(src, "w", encoding="utf-8") as f:
        for i, t in zip(table[C.ID].to_pylist(), table[C.TEXT].to_pylist(), strict=True):
            f.write(json.dumps({"key": i, "body": t}) + "\n")
        f.write(json.dumps({"key": "copy", "body": table[C.TEXT][0].as_py()}) + "\n")
    out = tmp_path / "out.parquet"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "flows.cli",
            "dedup",
            str(src),
            "--out",
            str(out),
            "--text-field",
            "body",
            "--id-field",
            "key",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert res.returncode == 0, res.stderr
    df = pl.read_parquet(out)
    assert df.height == table.num_rows + 1 and df[C.ID].n_unique() == df.height
    for col in (C.ID, C.CONTENT_HASH, C.EXACT_CLUSTER, C.NEAR_CLUSTER, C.DUP_OF):
        assert col in df.columns
    key = {i: i.split("/", 1)[1] for i in df[C.ID]}
    dup = df.filter(pl.col(C.DUP_OF).is_not_null())
    assert dup.height >= 0.9 * (len(truth) - len(set(truth.values())))
    assert all(
        truth.get(key[r], key[r]) == truth.get(key[d], key[d]) or key[r] == "copy"
        for r, d in zip(dup[C.ID], dup[C.DUP_OF], strict=True)
    )
    copy = df.filter(pl.col(C.ID).str.ends_with("/copy"))
    assert copy[C.EXACT_CLUSTER][0] is not None and copy[C.NEAR_CLUSTER][0] is not None

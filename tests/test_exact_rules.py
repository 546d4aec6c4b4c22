"""Exact dedup and heuristic rules on real data."""

from __future__ import annotations

import io
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
from conftest import data_dir
from PIL import Image

from pipeline import relations
from pipeline.exact import content_hashes, exact_clusters
from pipeline.ingest import read_source
from quality.rules import apply_rules
from schemas import columns as C
from schemas.config import RulesConfig, SourceConfig


def _records(path: Path, **src: object) -> pa.Table:
    return pa.concat_tables([r for r, _ in read_source(path, SourceConfig(path=str(path), **src))])


def test_commoncrawl_exact_groups(cc_dir: Path) -> None:
    t = _records(cc_dir / "*.jsonl.gz")
    hashes = content_hashes(t)
    texts = t[C.TEXT].to_pylist()
    empty = [i for i, x in enumerate(texts) if not x.strip()]
    assert len(empty) == 27
    assert all(hashes[C.CONTENT_HASH][i].as_py() is None for i in empty)
    con = relations.connect()
    con.register("h", hashes)
    groups = pl.from_arrow(exact_clusters(con, "h"))
    sizes = groups.group_by(C.EXACT_CLUSTER).len()["len"].sort().to_list()
    assert sizes == [2, 3, 7]
    by_text = dict(zip(t[C.ID].to_pylist(), texts, strict=True))
    for cluster in groups.partition_by(C.EXACT_CLUSTER):
        kept = cluster.filter(pl.col(C.EXACT_DUP_OF).is_null())[C.ID].to_list()
        assert len(kept) == 1 and kept[0] == min(cluster[C.ID])
        assert len({by_text[i] for i in cluster[C.ID]}) == 1
    assert "Processing Feedback" in by_text[groups.filter(pl.len().over(C.EXACT_CLUSTER) == 7)[C.ID][0]]


def test_hash_ignores_whitespace_and_covers_images_and_records(tmp_path: Path) -> None:
    n = 5
    cat = sorted((data_dir("cifar10_sample") / "images" / "cat").glob("*.jpg"))[0].read_bytes()
    t = pa.table(
        {
            C.ID: [str(i) for i in range(n)],
            C.MODALITY: ["text", "text", "image", "image", "record"],
            C.TEXT: ["A  cat\nsat. ", "A cat sat.", None, None, None],
            C.IMAGE: [None, None, cat, cat[:-1] + b"\x00", None],
            C.DATA: [None, None, None, None, json.dumps({"a": 1})],
        }
    )
    h = content_hashes(t)[C.CONTENT_HASH].to_pylist()
    assert h[0] == h[1] and h[2] != h[3] and len(set(h)) == 4 and all(len(x) == 32 for x in h)


def _batch(texts: list[str]) -> pa.Table:
    n = len(texts)
    return pa.table(
        {
            C.ID: [str(i) for i in range(n)],
            C.MODALITY: ["text"] * n,
            C.TEXT: texts,
            C.IMAGE: pa.nulls(n, pa.binary()),
            C.WIDTH: pa.nulls(n, pa.int32()),
            C.HEIGHT: pa.nulls(n, pa.int32()),
            C.DATA: pa.nulls(n, pa.string()),
        }
    )


def test_rules_pass_clean_lines_and_fail_boilerplate_on_turku() -> None:
    root = data_dir("turku_web_line_quality") / "en"
    docs = [d for f in ("train", "dev", "test") for d in json.loads((root / f"{f}.json").read_text())]
    clean = ["\n".join(x for x, y in zip(d["text"], d["labels"], strict=True) if y == "1") for d in docs]
    junk = ["\n".join(x for x, y in zip(d["text"], d["labels"], strict=True) if y == "0") for d in docs]
    clean, junk = [c for c in clean if c.strip()], [j for j in junk if j.strip()]

    def pass_rate(texts: list[str]) -> float:
        return pl.from_arrow(apply_rules(_batch(texts), RulesConfig()))[C.RULE_REASON].is_null().mean()

    assert pass_rate(clean) - pass_rate(junk) > 0.3


def test_rules_columns_and_first_failed_rule(cc_dir: Path) -> None:
    t = _records(cc_dir / "*.jsonl.gz")
    out = pl.from_arrow(apply_rules(t, RulesConfig()))
    assert out[C.ID].to_list() == t[C.ID].to_pylist()
    texts = t[C.TEXT].to_pylist()
    reasons = out[C.RULE_REASON].to_list()
    assert all(reasons[i] == "empty" for i, x in enumerate(texts) if not x.strip())
    assert {c for c in out.columns if c.startswith(C.RULE_PREFIX)} >= {"rule_words", "rule_stopwords"}
    words = out["rule_words"].to_list()
    strict = RulesConfig.model_validate({"text": {"min_words": 200}})
    reasons2 = pl.from_arrow(apply_rules(t, strict))[C.RULE_REASON].to_list()
    assert all(r == "too_few_words" for w, r in zip(words, reasons2, strict=True) if 0 < w < 200)


def test_image_and_record_rules() -> None:
    cifar = sorted((data_dir("cifar10_sample") / "images" / "ship").glob("*.jpg"))[:10]

    def png(img: Image.Image) -> bytes:
        buf = io.BytesIO()
        img.save(buf, "PNG")
        return buf.getvalue()

    real = Image.open(cifar[0]).convert("RGB")
    blobs = [p.read_bytes() for p in cifar] + [
        png(Image.new("RGB", (64, 64), (200, 200, 200))),
        png(real.resize((8, 8))),
        png(real.resize((200, 20))),
    ]
    sizes = [Image.open(io.BytesIO(b)).size for b in blobs]
    n = len(blobs)
    t = pa.table(
        {
            C.ID: [str(i) for i in range(n + 2)],
            C.MODALITY: ["image"] * n + ["record"] * 2,
            C.TEXT: pa.nulls(n + 2, pa.string()),
            C.IMAGE: blobs + [None, None],
            C.WIDTH: pa.array([s[0] for s in sizes] + [None, None], pa.int32()),
            C.HEIGHT: pa.array([s[1] for s in sizes] + [None, None], pa.int32()),
            C.DATA: [None] * n
            + [json.dumps({"name": "x", "city": "", "zip": None}), json.dumps({"name": "y"})],
        }
    )
    cfg = RulesConfig.model_validate({"record": {"required_fields": ["name"], "max_null_fraction": 0.5}})
    reasons = pl.from_arrow(apply_rules(t, cfg))[C.RULE_REASON].to_list()
    assert reasons[:10] == [None] * 10
    assert reasons[10:] == ["blank_image", "too_small", "aspect_ratio", "mostly_null", None]


def test_stopword_and_normalisation_kernels_match_their_definitions() -> None:
    """rule_stopwords counts on the lower-cased text what the case-insensitive stop-word regex counts, and
    normalise_text (NFC / whitespace fold only on rows that need it) equals NFC + fold + trim of every row:
    checked on real en/de/es/fi web lines and pages plus made edge cases (long s, all caps, NBSP, NFD,
    conjoining Hangul jamo, singletons such as the Angstrom sign, composition exclusions)."""
    import unicodedata

    from pipeline.exact import normalise_text
    from quality.rules import _STOP_RE, R

    texts = []
    for lang in ("en", "de", "es", "fi"):
        for d in json.loads((data_dir("turku_web_line_quality") / lang / "dev.json").read_text()):
            texts += d["text"] + ["\n".join(d["text"])]
    texts += ["ſe THE The_end ÄR NÃO İl", "la-la LA", "", "  a\u00a0 b\n\tc  ", "e\u0301 e\u0301"]
    texts += ["\u1100\u1161\u11a8 가\u11a8", "\u212b \u2126", "a\u0327\u0301", "\u0958", "\uac00\u0301"]
    got = pl.from_arrow(apply_rules(_batch(texts), RulesConfig()))[R + "stopwords"]
    want = pl.Series(texts).str.count_matches(_STOP_RE).cast(pl.Float64)
    assert got.to_list() == want.to_list()
    norm = normalise_text(pl.Series(texts)).to_list()
    assert norm == [" ".join(unicodedata.normalize("NFC", t).split()) for t in texts]

"""Embedders and the embedding cache on real text (SMS, STS-B, Turku web docs) and real COCO photos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from schemas import columns as C
from schemas.embed import EmbedConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")

TRANSFORMER = EmbedConfig(embedder="transformer", device="cpu")
STATIC = EmbedConfig(embedder="static", device="cpu")


def sms_texts() -> list[str]:
    lines = (DATA / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").splitlines()[1:]
    return [ln.split("\t", 1)[1] for ln in lines]


def stsb_pairs(split: str = "dev") -> tuple[list[str], list[str], np.ndarray]:
    rows = [
        ln.split("\t") for ln in (DATA / "stsb" / f"sts-{split}.csv").read_text(encoding="utf-8").splitlines()
    ]
    return [r[5] for r in rows], [r[6] for r in rows], np.array([float(r[4]) for r in rows])


def turku_docs(lang: str = "en") -> list[str]:
    docs = json.loads((DATA / "turku_web_line_quality" / lang / "train.json").read_text(encoding="utf-8"))
    return ["\n".join(d["text"]) for d in docs]


def test_transformer_stage_equals_direct_encode_in_input_order():
    from quality.embed import embed_texts, load_transformer

    texts = sms_texts()[:80]
    v = embed_texts(texts, TRANSFORMER)
    assert v.shape == (80, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    direct = load_transformer(TRANSFORMER).encode(texts, batch_size=64, normalize_embeddings=True)
    np.testing.assert_allclose(v, direct, atol=2e-5)
    perm = np.random.default_rng(0).permutation(len(texts))
    shuffled = embed_texts(pa.array([texts[i] for i in perm]), TRANSFORMER)
    np.testing.assert_allclose(shuffled, v[perm], atol=2e-5)


def test_both_tiers_put_paraphrases_closer_than_unrelated_pairs():
    from quality.embed import embed_texts

    a, b, score = stsb_pairs("dev")
    pick = np.r_[np.flatnonzero(score >= 4.5)[:60], np.flatnonzero(score <= 1.0)[:60]]
    for cfg, dim in ((TRANSFORMER, 384), (STATIC, 256)):
        va = embed_texts([a[i] for i in pick], cfg)
        vb = embed_texts([b[i] for i in pick], cfg)
        assert va.shape[1] == dim
        np.testing.assert_allclose(np.linalg.norm(va, axis=1), 1.0, atol=1e-4)
        cos = np.einsum("ij,ij->i", va, vb)
        assert cos[:60].mean() > cos[60:].mean() + 0.25, (cfg.embedder, cos[:60].mean(), cos[60:].mean())


def test_chunked_long_text_sees_the_whole_document():
    from quality.embed import embed_texts, load_transformer

    tok = load_transformer(TRANSFORMER).tokenizer
    docs = [d for d in turku_docs("en") if len(tok.tokenize(d)) > 700][:6]
    assert len(docs) >= 3, "need long Turku documents"
    tails = [tok.convert_tokens_to_string(tok.tokenize(d)[400:650]) for d in docs]
    trunc = embed_texts(docs, TRANSFORMER)
    chunk = embed_texts(docs, TRANSFORMER.model_copy(update={"long_text": "chunk"}))
    vt = embed_texts(tails, TRANSFORMER)
    np.testing.assert_allclose(np.linalg.norm(chunk, axis=1), 1.0, atol=1e-5)
    # the tail lies past the 256-token window: only the chunked vector has read it
    assert (np.einsum("ij,ij->i", chunk, vt) > np.einsum("ij,ij->i", trunc, vt)).all()
    short = ["a man is playing a flute .", "the cat sat on the mat"]
    np.testing.assert_allclose(
        embed_texts(short, TRANSFORMER.model_copy(update={"long_text": "chunk"})),
        embed_texts(short, TRANSFORMER),
        atol=1e-5,
    )


def test_cache_embeds_each_content_once_across_runs_and_sources(tmp_path):
    from pipeline.embed_cache import EMBEDDED_KEY, embed_table
    from quality.vectors import arrow_to_vectors

    texts = sms_texts()[:400]  # the SMS set has natural exact duplicates ("Sorry, I'll call later", ...)
    batch = pa.table({C.ID: [f"sms-{i}" for i in range(len(texts))], C.TEXT: texts})
    first = embed_table(batch, STATIC, tmp_path)
    seen = set(first[C.CONTENT_HASH].to_pylist())
    distinct = len(seen)
    assert distinct < len(texts)
    assert first.column_names == [C.ID, C.CONTENT_HASH, C.EMBEDDING]
    assert first[C.ID].equals(batch[C.ID])
    assert int(first.schema.metadata[EMBEDDED_KEY]) == distinct
    files = sorted(tmp_path.rglob("*.parquet"))
    second = embed_table(batch, STATIC, tmp_path)
    assert int(second.schema.metadata[EMBEDDED_KEY]) == 0
    assert sorted(tmp_path.rglob("*.parquet")) == files
    assert second[C.EMBEDDING].equals(first[C.EMBEDDING])
    # another source: half old content under new ids, half new content, plus an empty text
    more = sms_texts()[200:600] + [""]
    other = pa.table({C.ID: [f"other-{i}" for i in range(len(more))], C.TEXT: more})
    third = embed_table(other, STATIC, tmp_path)
    assert int(third.schema.metadata[EMBEDDED_KEY]) == len(
        set(third[C.CONTENT_HASH].to_pylist()) - seen - {None}
    )
    assert third[C.CONTENT_HASH][len(more) - 1].as_py() is None
    vecs, valid = arrow_to_vectors(third[C.EMBEDDING])
    assert not valid[-1] and valid[:-1].all()
    old, _ = arrow_to_vectors(first[C.EMBEDDING])
    np.testing.assert_allclose(vecs[:200], old[200:400], atol=1e-6)


def test_cache_keys_vector_spaces_apart_and_stores_float16(tmp_path):
    from pipeline.embed_cache import EMBEDDED_KEY, embed_table, model_key
    from quality.vectors import arrow_to_vectors

    texts = sms_texts()[1000:1040]
    batch = pa.table({C.ID: [str(i) for i in range(len(texts))], C.TEXT: texts})
    half = TRANSFORMER.model_copy(update={"dtype": "float16"})
    keys = {model_key(STATIC), model_key(TRANSFORMER), model_key(half)}
    assert len(keys) == 3
    t32 = embed_table(batch, TRANSFORMER, tmp_path)
    t16 = embed_table(batch, half, tmp_path)
    assert int(t16.schema.metadata[EMBEDDED_KEY]) == len(set(texts))  # another space: computed, not reused
    assert t16[C.EMBEDDING].type.value_type == pa.float16()
    assert t32[C.EMBEDDING].type == pa.list_(pa.float32(), 384)
    np.testing.assert_allclose(
        arrow_to_vectors(t16[C.EMBEDDING])[0], arrow_to_vectors(t32[C.EMBEDDING])[0], atol=2e-3
    )


def test_static_model_is_distilled_once_and_keyed_by_source_model():
    from quality.static_embed import distill, static_key

    path = distill(STATIC)
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert distill(STATIC) == path and (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert "all-MiniLM-L6-v2" in static_key(STATIC)
    assert static_key(STATIC) != static_key(STATIC.model_copy(update={"static_dims": 128}))
    assert static_key(STATIC) != static_key(STATIC.model_copy(update={"model": "some/other-model"}))


def _tiny_clip(dest: Path) -> Path:
    """A CLIP model with random weights and MiniLM's tokenizer, saved locally (no CLIP weights exist here)."""
    import torch
    from transformers import AutoTokenizer, CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from quality.models import default_model_path

    tok = AutoTokenizer.from_pretrained(default_model_path())
    tok.model_max_length = 64
    cfg = CLIPConfig(
        text_config=dict(
            vocab_size=tok.vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
            num_attention_heads=2, max_position_embeddings=64, eos_token_id=tok.sep_token_id,
            pad_token_id=tok.pad_token_id, bos_token_id=tok.cls_token_id,
        ),
        vision_config=dict(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2, image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )  # fmt: skip
    torch.manual_seed(0)
    CLIPModel(cfg).save_pretrained(dest)
    ip = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    CLIPProcessor(image_processor=ip, tokenizer=tok).save_pretrained(dest)
    return dest


def test_image_model_plumbing_with_a_tiny_random_clip(tmp_path):
    """Random weights: this checks loading, shapes, caching and null handling, not semantics."""
    from pipeline.embed_cache import EMBEDDED_KEY, embed_image_table

    coco = DATA / "coco_mini"
    ann = json.loads((coco / "annotations" / "captions_val2017.json").read_text(encoding="utf-8"))
    caption = {}
    for a in ann["annotations"]:
        caption.setdefault(a["image_id"], a["caption"])
    files = {im["id"]: coco / "val2017" / im["file_name"] for im in ann["images"]}
    picked = [i for i in sorted(files) if files[i].exists()][:5]
    images = [files[i].read_bytes() for i in picked]
    cfg = EmbedConfig(image_model=str(_tiny_clip(tmp_path / "tiny-clip")), device="cpu")
    import xxhash

    batch = pa.table(
        {
            C.ID: [f"coco-{i}" for i in picked] + ["txt-1"],
            C.MODALITY: [C.IMAGE_MODALITY] * len(picked) + [C.TEXT_MODALITY],
            C.TEXT: [caption[i] for i in picked] + ["a text record"],
            C.IMAGE: images + [None],
            C.CONTENT_HASH: [xxhash.xxh3_128_hexdigest(b) for b in images] + ["texthash"],
        }
    )
    out = embed_image_table(batch, cfg, tmp_path / "emb")
    assert out.column_names == [C.ID, C.CONTENT_HASH, C.EMBEDDING, C.CAPTION_ALIGNMENT]
    assert out[C.EMBEDDING].type.list_size == 16
    assert out[C.EMBEDDING].null_count == 1 and out[C.CAPTION_ALIGNMENT].null_count == 1
    align = np.array(out[C.CAPTION_ALIGNMENT].to_pylist()[:-1], dtype=float)
    assert np.all(np.abs(align) <= 1.0 + 1e-5)
    again = embed_image_table(batch, cfg, tmp_path / "emb")
    assert int(again.schema.metadata[EMBEDDED_KEY]) == 0
    np.testing.assert_allclose(
        np.array(again[C.CAPTION_ALIGNMENT].to_pylist()[:-1], dtype=float), align, atol=1e-5
    )


def test_empty_and_null_inputs():
    from quality.embed import embed_texts

    assert embed_texts([], STATIC).shape == (0, 256)
    v = embed_texts(pa.array(["hello there", None]), STATIC)
    assert v.shape == (2, 256) and np.isfinite(v).all()


def test_records_embed_their_fields_and_images_are_left_to_the_image_model(tmp_path):
    from pipeline.embed_cache import embed_table
    from pipeline.exact import content_hashes

    texts = sms_texts()[:2]
    batch = pa.table(
        {
            C.ID: ["t", "r", "i"],
            C.MODALITY: [C.TEXT_MODALITY, C.RECORD_MODALITY, C.IMAGE_MODALITY],
            C.TEXT: [texts[0], None, texts[1]],
            C.IMAGE: [None, None, (DATA / "cifar10_sample" / "labels.csv").read_bytes()[:64]],
            C.DATA: [None, '{"title":"Entity matching","venue":"VLDB"}', None],
        }
    )
    batch = batch.append_column(C.CONTENT_HASH, content_hashes(batch)[C.CONTENT_HASH])
    out = embed_table(batch, STATIC, tmp_path)
    assert out[C.EMBEDDING].is_valid().to_pylist() == [True, True, False]
    assert out[C.CONTENT_HASH].to_pylist()[:2] == batch[C.CONTENT_HASH].to_pylist()[:2]


def test_static_batch_encode_equals_model2vec_encode_on_multilingual_text():
    """The batched static encoder (Polars normaliser, WordPiece per distinct word, compiled pooling) gives
    model2vec's own `encode` vectors on real en/de/es/fi web pages (some past the 512-token cut), SMS, and
    text with accents, capital sigma, CJK, control characters and an over-long word."""
    from quality.static_embed import encode_static, load_static

    texts = [d for lang in ("en", "de", "es", "fi") for d in turku_docs(lang)[:15]] + sms_texts()[:200]
    texts += ["ΣΟΦΟΣ Σ", "a\x0bb\u200bc", "中文字abc 한국어", "x" * 150, "Ünïcödé, naïve café!", "", "   "]
    got = encode_static(texts, STATIC)
    v = load_static(STATIC).encode(texts, max_length=512, use_multiprocessing=False).astype(np.float32)
    v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)
    np.testing.assert_allclose(got, v, atol=5e-4)  # float16 rounding of the mean, as model2vec does
    again = encode_static(texts[::-1], STATIC)  # words now come from the vocabulary cache
    np.testing.assert_allclose(again[::-1], got, atol=1e-6)


def test_cache_index_grows_per_file_and_the_stage_keeps_the_only_copy(tmp_path):
    """The cache index adds each new file once (no re-read per call), a hit reads the stored vector back
    exactly, and the embed stage in a workspace's default cache folder writes no second copy of what it
    computes (its stage file holds it); with an explicit shared cache_dir it does."""
    from pipeline.embed_cache import _INDEXES, EMBEDDED_KEY, embed_table, model_key
    from pipeline.stages.embed import STAGE
    from schemas.config import CurateConfig

    texts = sms_texts()[2000:2600]
    batch = pa.table({C.ID: [str(i) for i in range(len(texts))], C.TEXT: texts})
    cache = tmp_path / "cache"
    first = embed_table(batch.slice(0, 300), STATIC, cache)
    folder = cache / model_key(STATIC)
    second = embed_table(batch.slice(200, 400), STATIC, cache)  # 100 rows seen, 300 new
    assert len(_INDEXES[str(folder)].files) == 1  # the second file is indexed on the next call
    assert int(second.schema.metadata[EMBEDDED_KEY]) == len(
        set(second[C.CONTENT_HASH].to_pylist()) - set(first[C.CONTENT_HASH].to_pylist())
    )
    again = embed_table(batch, STATIC, cache, store=False)
    assert int(again.schema.metadata[EMBEDDED_KEY]) == 0
    assert len(_INDEXES[str(folder)].files) == 2 and len(list(folder.glob("*.parquet"))) == 2
    assert again[C.EMBEDDING].slice(0, 300).equals(first[C.EMBEDDING])

    records = batch.append_column(C.MODALITY, pa.array(["text"] * batch.num_rows))
    records = records.append_column(C.DATA, pa.nulls(batch.num_rows, pa.string()))
    ws = tmp_path / "ws"
    cfg = CurateConfig.model_validate({"embed": {"embedder": "static"}})
    out = STAGE.map_fn(records, cfg, ws)
    assert int(out.schema.metadata[EMBEDDED_KEY]) == len(set(texts))
    assert not list(ws.rglob("*.parquet"))  # nothing but the stage file (written by the runner) holds them
    shared = cfg.model_copy(update={"embed": cfg.embed.model_copy(update={"cache_dir": str(tmp_path / "s")})})
    STAGE.map_fn(records, shared, ws)
    assert len(list((tmp_path / "s").rglob("*.parquet"))) == 1

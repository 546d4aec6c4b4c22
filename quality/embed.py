"""Text and image embedders: one L2-normalised vector per text or image, float32, rows in input order."""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from quality.models import model_source
from schemas.embed import EmbedConfig

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

_LOCK = threading.Lock()


def resolve_device(device: str) -> str:
    """`auto` becomes cuda when a GPU is visible (else mps, else cpu); other values pass through."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


@lru_cache(maxsize=4)
def _load(model: str, device: str, half: bool, max_length: int | None) -> SentenceTransformer:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(model, device=device)
    if half:
        st.half()
    if max_length is not None:
        st.max_seq_length = max_length
    return st


def load_transformer(cfg: EmbedConfig | None = None, image: bool = False) -> SentenceTransformer:
    """The sentence-transformers model of `cfg` (the image model when `image`), loaded once per process."""
    cfg = cfg or EmbedConfig()
    name = cfg.image_model if image else model_source(cfg)
    if name is None:
        raise ValueError("no image model configured: set embed.image_model to a CLIP-style model")
    device = resolve_device(cfg.device)
    half = cfg.dtype == "float16" and device.startswith("cuda")
    with _LOCK:
        return _load(name, device, half, None if image else cfg.max_length)


def as_texts(texts: Sequence[str | None] | pa.Array | pa.ChunkedArray) -> list[str]:
    """Plain list of str, nulls as empty strings."""
    if isinstance(texts, pa.ChunkedArray | pa.Array):
        import pyarrow.compute as pc

        return pc.fill_null(texts.cast(pa.string()), "").to_pylist()
    return ["" if t is None else t for t in texts]


def _normalise(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(n, 1e-12, out=n)
    return v / n


def embed_texts(texts: Sequence[str] | pa.Array, cfg: EmbedConfig | None = None) -> np.ndarray:
    """n x d float32 L2-normalised vectors of `texts` with the configured embedder (cascade: static)."""
    cfg = cfg or EmbedConfig()
    items = as_texts(texts)
    if cfg.embedder in ("static", "cascade"):
        from quality.static_embed import encode_static

        return encode_static(items, cfg)
    return encode_transformer(items, cfg)


def encode_transformer(texts: list[str], cfg: EmbedConfig) -> np.ndarray:
    """Transformer vectors (SentenceTransformer.encode sorts by length and batches); long texts per config."""
    model = load_transformer(cfg)
    if not texts:
        return np.zeros((0, model.get_sentence_embedding_dimension() or 0), np.float32)
    if cfg.long_text == "chunk":
        return _encode_chunked(model, texts, cfg)
    v = model.encode(texts, batch_size=cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(v, dtype=np.float32)


def _encode_chunked(model: Any, texts: list[str], cfg: EmbedConfig) -> np.ndarray:
    """Texts longer than the model's window are cut in token windows; their chunk vectors are mean-pooled."""
    window = int(model.max_seq_length) - 2  # room for [CLS] and [SEP]
    enc = model.tokenizer(
        texts, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
    )
    pieces: list[str] = []
    owner: list[int] = []
    for i, (text, offsets) in enumerate(zip(texts, enc["offset_mapping"], strict=True)):
        if len(offsets) <= window:
            pieces.append(text)
            owner.append(i)
            continue
        for s in range(0, len(offsets), window):
            chunk = offsets[s : s + window]
            pieces.append(text[chunk[0][0] : chunk[-1][1]])
            owner.append(i)
    v = model.encode(pieces, batch_size=cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    own = np.asarray(owner)
    starts = np.flatnonzero(np.r_[True, own[1:] != own[:-1]])
    pooled = np.add.reduceat(np.asarray(v, dtype=np.float32), starts, axis=0)
    return _normalise(pooled)


def _images(images: Sequence[bytes | None] | pa.Array) -> list[Any]:
    from PIL import Image

    raw = images.to_pylist() if isinstance(images, pa.ChunkedArray | pa.Array) else list(images)
    out = []
    for b in raw:
        img = Image.open(io.BytesIO(b)) if b else Image.new("RGB", (1, 1))
        out.append(img.convert("RGB"))
    return out


def embed_images(images: Sequence[bytes | None] | pa.Array, cfg: EmbedConfig) -> np.ndarray:
    """n x d float32 L2-normalised vectors of encoded images with the configured CLIP-style `image_model`."""
    model = load_transformer(cfg, image=True)
    imgs = _images(images)
    if not imgs:
        return np.zeros((0, model.get_sentence_embedding_dimension() or 0), np.float32)
    v = model.encode(imgs, batch_size=cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(v, dtype=np.float32)


def embed_captions(texts: Sequence[str] | pa.Array, cfg: EmbedConfig) -> np.ndarray:
    """Vectors of captions in the image model's space (so they compare with `embed_images`)."""
    model = load_transformer(cfg, image=True)
    items = as_texts(texts)
    v = model.encode(items, batch_size=cfg.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return np.asarray(v, dtype=np.float32).reshape(len(items), -1)


def caption_alignment(
    images: Sequence[bytes | None] | pa.Array, captions: Sequence[str | None] | pa.Array, cfg: EmbedConfig
) -> np.ndarray:
    """Cosine of each image with its caption in the image model's space; NaN where either is missing."""
    caps = captions.to_pylist() if isinstance(captions, pa.ChunkedArray | pa.Array) else list(captions)
    raw = images.to_pylist() if isinstance(images, pa.ChunkedArray | pa.Array) else list(images)
    out = np.full(len(caps), np.nan, dtype=np.float32)
    idx = [i for i, (b, c) in enumerate(zip(raw, caps, strict=True)) if b and c]
    if idx:
        vi = embed_images([raw[i] for i in idx], cfg)
        vt = embed_captions([caps[i] for i in idx], cfg)
        out[idx] = np.einsum("ij,ij->i", vi, vt)
    return out

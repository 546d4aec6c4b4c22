"""Static (model2vec) tier: a table of token vectors distilled once from the transformer, ~100x faster."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import threading
import uuid
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from schemas.embed import EmbedConfig

if TYPE_CHECKING:
    from model2vec import StaticModel

_LOCK = threading.Lock()


def static_root(cfg: EmbedConfig) -> Path:
    """Folder holding distilled models: `static_dir`, else $CURATE_STATIC_DIR, else ~/.cache/curate/static."""
    if cfg.static_dir:
        return Path(cfg.static_dir).expanduser()
    env = os.environ.get("CURATE_STATIC_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "curate" / "static"


def static_key(cfg: EmbedConfig) -> str:
    """Cache key of the distilled model: the source model's name and the PCA size (not the install path)."""
    from quality.embed import model_label

    label = model_label(cfg.model)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(label.split("@")[0]).name or label)[:48]
    digest = hashlib.blake2b(f"{label}|pca{cfg.static_dims}".encode(), digest_size=5).hexdigest()
    return f"{slug}-pca{cfg.static_dims}-{digest}"


def static_path(cfg: EmbedConfig) -> Path:
    """Folder of the distilled model for `cfg`."""
    return static_root(cfg) / static_key(cfg)


def distill(cfg: EmbedConfig | None = None, force: bool = False) -> Path:
    """Distil the configured transformer into a static model (once; ~25-60 s on 2 cores); its folder."""
    cfg = cfg or EmbedConfig()
    dest = static_path(cfg)
    if (dest / "model.safetensors").exists() and not force:
        return dest
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from model2vec.distill import distill as m2v_distill

    print(
        f"curate: distilling the static embedding model once into {dest} (~25-60 s on 2 cores)",
        file=sys.stderr,
        flush=True,
    )

    from quality.embed import model_source

    model = m2v_distill(model_name=model_source(cfg), pca_dims=cfg.static_dims)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
    model.save_pretrained(str(tmp))
    if dest.exists():
        shutil.rmtree(dest)
    try:
        os.replace(tmp, dest)
    except OSError:  # another process finished first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@lru_cache(maxsize=4)
def _load(path: str) -> StaticModel:
    from model2vec import StaticModel

    return StaticModel.from_pretrained(path, normalize=True)


def load_static(cfg: EmbedConfig | None = None) -> StaticModel:
    """The static model of `cfg`, distilled on first use, loaded once per process."""
    cfg = cfg or EmbedConfig()
    with _LOCK:
        return _load(str(distill(cfg)))


def encode_static(texts: list[str], cfg: EmbedConfig) -> np.ndarray:
    """n x d float32 L2-normalised static vectors (mean of token vectors; chunk mode reads 8192 tokens)."""
    model = load_static(cfg)
    max_len = cfg.max_length if cfg.max_length is not None else (8192 if cfg.long_text == "chunk" else 512)
    if not texts:
        return np.zeros((0, model.dim), np.float32)
    v = model.encode(texts, max_length=max_len, batch_size=4096, use_multiprocessing=False)
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(n, 1e-12, out=n)
    return v / n

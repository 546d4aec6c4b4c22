"""Static (model2vec) tier: a table of token vectors distilled once from the transformer, ~100x faster.

Thread-safe: one loaded model per folder per process, and its encode runs under that model's lock (the
Hugging Face tokenizer inside is one Rust object that two threads must not borrow at once: "Already
borrowed"). Encoding is ~10k texts/s, so the lock costs little next to the rest of a stage.

The first-use distillation is atomic across processes: it runs under a file lock beside the model folder,
writes into a temp folder and renames it into place whole. A killed distillation leaves only a temp folder,
which the next one deletes before starting over; the model folder is complete or absent, never partial.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from schemas.embed import EmbedConfig

if TYPE_CHECKING:
    from model2vec import StaticModel

_LOCK = threading.Lock()
MODEL_FILES = ("model.safetensors", "tokenizer.json", "config.json")


def static_root(cfg: EmbedConfig) -> Path:
    """Folder holding distilled models: `static_dir`, else $CURATE_STATIC_DIR, else ~/.cache/curate/static."""
    if cfg.static_dir:
        return Path(cfg.static_dir).expanduser()
    env = os.environ.get("CURATE_STATIC_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "curate" / "static"


def static_key(cfg: EmbedConfig) -> str:
    """Cache key of the distilled model: the source model's name and the PCA size (not the install path)."""
    from quality.models import model_label

    label = model_label(cfg.model)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(label.split("@")[0]).name or label)[:48]
    digest = hashlib.blake2b(f"{label}|pca{cfg.static_dims}".encode(), digest_size=5).hexdigest()
    return f"{slug}-pca{cfg.static_dims}-{digest}"


def static_path(cfg: EmbedConfig) -> Path:
    """Folder of the distilled model for `cfg`."""
    return static_root(cfg) / static_key(cfg)


def is_complete(path: Path) -> bool:
    """True when `path` holds a whole distilled model (every file model2vec loads)."""
    return all((path / f).is_file() for f in MODEL_FILES)


@contextmanager
def _distill_lock(dest: Path) -> Iterator[None]:
    """One distillation of `dest` at a time across processes (the kernel drops the lock of a killed one)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(dest.parent / f".{dest.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def distill(cfg: EmbedConfig | None = None, force: bool = False) -> Path:
    """Distil the configured transformer into a static model (once; ~25-60 s on 2 cores); its folder."""
    cfg = cfg or EmbedConfig()
    dest = static_path(cfg)
    if is_complete(dest) and not force:
        return dest
    with _distill_lock(dest):
        if is_complete(dest) and not force:  # another process finished it while we waited
            return dest
        for stale in dest.parent.glob(f".{dest.name}.*.tmp"):  # left by a killed distillation
            shutil.rmtree(stale, ignore_errors=True)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from model2vec.distill import distill as m2v_distill

        print(
            f"curate: distilling the static embedding model once into {dest} (~25-60 s on 2 cores)",
            file=sys.stderr,
            flush=True,
        )

        from quality.models import model_source

        model = m2v_distill(model_name=model_source(cfg), pca_dims=cfg.static_dims)
        tmp = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
        model.save_pretrained(str(tmp))
        if not is_complete(tmp):
            raise RuntimeError(f"{tmp}: model2vec saved no {', '.join(MODEL_FILES)}")
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if dest.exists():  # force, or a partial folder from an older curate: move it out whole first
            old = dest.parent / f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp"
            os.rename(dest, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(tmp, dest)
    return dest


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[StaticModel, threading.Lock]:
    from model2vec import StaticModel

    return StaticModel.from_pretrained(path, normalize=True), threading.Lock()


def _model(cfg: EmbedConfig | None) -> tuple[StaticModel, threading.Lock]:
    cfg = cfg or EmbedConfig()
    with _LOCK:
        return _load(str(distill(cfg)))


def load_static(cfg: EmbedConfig | None = None) -> StaticModel:
    """The static model of `cfg`, distilled on first use, loaded once per process.

    Its tokenizer is not thread-safe: encode through `encode_static`, which takes the model's lock.
    """
    return _model(cfg)[0]


def encode_static(texts: list[str], cfg: EmbedConfig) -> np.ndarray:
    """n x d float32 L2-normalised static vectors (mean of token vectors; chunk mode reads 8192 tokens)."""
    model, lock = _model(cfg)
    max_len = cfg.max_length if cfg.max_length is not None else (8192 if cfg.long_text == "chunk" else 512)
    if not texts:
        return np.zeros((0, model.dim), np.float32)
    with lock:  # encode sets the tokenizer's truncation: one thread at a time
        v = model.encode(texts, max_length=max_len, batch_size=4096, use_multiprocessing=False)
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(n, 1e-12, out=n)
    return v / n

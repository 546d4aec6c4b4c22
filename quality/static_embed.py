"""Static (model2vec) tier: a table of token vectors distilled once from the transformer, ~100x faster.

Thread-safe: one loaded model per folder per process, and its encode runs under that model's lock (the
Hugging Face tokenizer inside is one Rust object that two threads must not borrow at once: "Already
borrowed"). Encoding is ~10k texts/s, so the lock costs little next to the rest of a stage.

Encoding runs model2vec's arithmetic batch-wise without its per-text Python: Polars string kernels do the
BERT normaliser and pre-tokeniser over the whole column (clean, split CJK characters, strip accents,
lower-case, split at spaces and punctuation), Hugging Face's WordPiece runs once per *distinct* word of the
batch, and a compiled kernel (numba, GIL released) averages each text's token vectors (first max_length
tokens, unknown tokens left out), as model2vec's `encode` does.

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
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import polars as pl
import pyarrow as pa

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


# Hugging Face's BertNormalizer + BertPreTokenizer as Polars string kernels
_PUNCT = r"\p{P}!-/:-@\[-`{-~"  # Unicode punctuation and ASCII punctuation / symbols
_CJK = (
    r"\x{4E00}-\x{9FFF}\x{3400}-\x{4DBF}\x{20000}-\x{2A6DF}\x{2A700}-\x{2B73F}\x{2B740}-\x{2B81F}"
    r"\x{2B820}-\x{2CEAF}\x{F900}-\x{FAFF}\x{2F800}-\x{2FA1F}"
)
_WORD = f"[{_PUNCT}]|[{_CJK}]|[^\\s{_PUNCT}{_CJK}]+"


def _words(texts: pl.Series, max_chars: int | None) -> pa.LargeListArray:
    """The pre-tokens (words, punctuation, CJK characters) of each text, as BERT's uncased tokenizer cuts
    them after normalising: control characters dropped, accents stripped (NFD, no combining marks),
    lower-cased character by character (a final capital sigma stays σ, as in the Rust tokenizer)."""
    t = texts.fill_null("")
    if max_chars is not None:
        t = t.str.slice(0, max_chars)
    t = t.str.replace_all(r"[\p{C}&&[^\t\n\r]]|\x{FFFD}", "")
    wide = t.str.contains(r"[^\x00-\x7F]")  # only these can have accents, Σ or CJK characters
    if wide.any():
        accents = t.filter(wide).str.normalize("NFD").str.replace_all(r"\p{Mn}", "")
        t = t.scatter(wide.arg_true(), accents.str.replace_all("Σ", "σ", literal=True))
    arr = t.str.to_lowercase().str.extract_all(_WORD).to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_list(pa.large_string()))


@numba.njit(cache=True, nogil=True, fastmath=True)
def _pool(word_off, wstart, wlen, tokens, emb, unk, max_tokens, out):  # noqa: ANN001, ANN202
    """out[d] = mean of the vectors of text d's first max_tokens tokens, unknown tokens left out (0 if none).

    Text d's words are w in word_off[d]:word_off[d + 1]; word w's tokens are tokens[wstart[w]:+wlen[w]]."""
    dim = emb.shape[1]
    acc = np.zeros(dim, np.float32)
    for d in range(word_off.shape[0] - 1):
        acc[:] = 0.0
        used = 0
        n = 0
        for w in range(word_off[d], word_off[d + 1]):
            for j in range(wstart[w], wstart[w] + wlen[w]):
                if used >= max_tokens:
                    break
                used += 1
                t = tokens[j]
                if t != unk:
                    n += 1
                    for k in range(dim):
                        acc[k] += emb[t, k]
            if used >= max_tokens:
                break
        if n:
            inv = np.float32(1.0) / np.float32(n)
            for k in range(dim):
                out[d, k] = acc[k] * inv


@lru_cache(maxsize=4)
def _wordpiece(path: str) -> tuple[object, np.ndarray]:
    """A copy of the model's tokenizer that splits only at spaces (its input: pre-tokens joined by spaces)
    and runs WordPiece, and the float32 token vectors."""
    from tokenizers import Tokenizer
    from tokenizers.pre_tokenizers import WhitespaceSplit

    model, _ = _load(path)
    tok = Tokenizer.from_str(model.tokenizer.to_str())
    tok.normalizer = None
    tok.pre_tokenizer = WhitespaceSplit()
    tok.no_truncation()
    tok.no_padding()
    return tok, np.ascontiguousarray(model.embedding, dtype=np.float32)


class _Vocab:
    """Word -> its WordPiece ids (a slice of one growing token array), so a stream of parts tokenises only
    words it has not met; bounded: cleared past _VOCAB_MAX words. Words are looked up by a 64-bit hash of
    their text: a join on the strings kept ~250 MB of a worker's memory allocated (measured on 50k-document
    parts), a join on the hashes does not; two of 1M distinct words share a hash with probability ~3e-8."""

    def __init__(self) -> None:
        self.words = pl.DataFrame(schema={"k": pl.UInt64, "start": pl.Int64, "n": pl.Int64})
        self.tokens = np.zeros(0, np.int64)


_VOCABS: dict[str, _Vocab] = {}
_VOCAB_MAX = 1_000_000
_HASH_SEED = 0x5EED


def _wordpiece_ids(tok: Any, words: list[str], chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """WordPiece ids of `words` (concatenated) and how many each word has; the words go in space-joined
    chunks through encode_batch (Rust, GIL released)."""
    pieces = [" ".join(words[i : i + chunk]) for i in range(0, len(words), chunk)]
    encs = tok.encode_batch(pieces, add_special_tokens=False)
    ids = np.concatenate([np.asarray(e.ids, np.int64) for e in encs]) if encs else np.zeros(0, np.int64)
    owner = (
        np.concatenate([np.asarray(e.word_ids, np.int64) + i * chunk for i, e in enumerate(encs)])
        if encs
        else np.zeros(0, np.int64)
    )
    return ids, np.bincount(owner, minlength=len(words))


def _word_slices(path: str, words: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(start, length) of each word's WordPiece ids in the returned token array."""
    tok, _ = _wordpiece(path)
    frame = words.hash(_HASH_SEED).alias("k").to_frame()
    with _LOCK:
        vocab = _VOCABS.setdefault(path, _Vocab())
        if vocab.words.height > _VOCAB_MAX:
            vocab = _VOCABS[path] = _Vocab()
        looked = frame.join(vocab.words, on="k", how="left", maintain_order="left")
        unseen = looked["start"].is_null()
        if unseen.any():
            at = unseen.arg_true()
            first = looked.select("k").with_row_index("i").filter(unseen).unique("k", keep="first")
            ids, counts = _wordpiece_ids(tok, words.gather(first["i"]).to_list())
            starts = np.zeros(first.height, np.int64)
            np.cumsum(counts[:-1], out=starts[1:])
            fresh = pl.DataFrame({"k": first["k"], "start": starts + len(vocab.tokens), "n": counts})
            vocab.words = pl.concat([vocab.words, fresh])
            vocab.tokens = np.concatenate([vocab.tokens, ids])
            filled = looked.select("k").filter(unseen).join(fresh, on="k", how="left", maintain_order="left")
            looked = pl.DataFrame(
                {
                    "start": looked["start"].scatter(at, filled["start"]),
                    "n": looked["n"].scatter(at, filled["n"]),
                }
            )
        tokens = vocab.tokens
    return looked["start"].to_numpy(), looked["n"].to_numpy(), tokens


def _encode_batched(model: StaticModel, path: str, texts: list[str], max_len: int) -> np.ndarray:
    """model2vec's `encode(texts, max_length=max_len)` (mean of token vectors, then its normalisation in the
    model's dtype), computed batch-wise."""
    lists = _words(pl.Series(texts, dtype=pl.String), max_len * model.median_token_length)
    words = pl.from_arrow(lists.values)
    assert isinstance(words, pl.Series)
    wstart, wlen, tokens = _word_slices(path, words)
    _, emb = _wordpiece(path)
    word_off = np.asarray(lists.offsets.to_numpy(), np.int64)
    unk = -1 if model.unk_token_id is None else int(model.unk_token_id)
    out = np.zeros((len(texts), emb.shape[1]), np.float32)
    _pool(word_off, wstart, wlen, tokens, emb, unk, max_len, out)
    out = out.astype(model.embedding.dtype)  # model2vec averages into the model's dtype (float16 here)
    if model.normalize:
        o32 = out.astype(np.float32)
        out = (o32 / (np.linalg.norm(o32, axis=1, keepdims=True) + 1e-32)).astype(out.dtype)
    return out


def encode_static(texts: list[str], cfg: EmbedConfig) -> np.ndarray:
    """n x d float32 L2-normalised static vectors (mean of token vectors; chunk mode reads 8192 tokens)."""
    path = str(distill(cfg))
    model, lock = _model(cfg)
    max_len = cfg.max_length if cfg.max_length is not None else (8192 if cfg.long_text == "chunk" else 512)
    if not texts:
        return np.zeros((0, model.dim), np.float32)
    if model.token_mapping is None and model.weights is None and model.embedding.dtype != np.int8:
        v = _encode_batched(model, path, texts, max_len)
    else:
        with lock:  # encode sets the tokenizer's truncation: one thread at a time
            v = model.encode(texts, max_length=max_len, batch_size=4096, use_multiprocessing=False)
    v = np.asarray(v, dtype=np.float32)
    n = np.linalg.norm(v, axis=1, keepdims=True)
    np.maximum(n, 1e-12, out=n)
    return v / n

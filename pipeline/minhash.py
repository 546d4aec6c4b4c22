"""Shingling and MinHash signatures over a whole batch of texts.

The hash is defined here, not borrowed from a library, so signatures stored in a workspace stay valid
across processes and library versions: a token (or character) is hashed with FNV-1a 64 over its
code points plus the murmur3 finaliser, an n-gram is the finaliser of the sum of its token hashes times
fixed odd constants (order matters), and permutation p maps the 32-bit shingle hash x to
(a_p * x + b_p) mod 2**64 >> 32 (multiply-add-shift, strongly universal), with a_p, b_p drawn by
splitmix64 from the seed. Normalisation (lower case, punctuation/symbols/spaces as separators) uses
code point tables built from `unicodedata`; texts holding a code point NFKC may change are NFKC-
normalised and shingled again. The batch kernel is compiled by numba (one pass over the UTF-8 bytes).
"""

from __future__ import annotations

import functools
import itertools
import unicodedata

import numba
import numpy as np
import polars as pl
import pyarrow as pa

EMPTY = np.uint32(0xFFFFFFFF)  # signature value of a text without shingles
_M64 = (1 << 64) - 1
TABLE_SIZE = 0x30000  # code points with a lower-case and class table entry (planes 0-2); others are kept
KEEP, SEPARATOR, DROP = 0, 1, 2
# CJK Extension B-F (0x20000-0x2F7FF) are letters NFKC leaves alone: the tables keep their defaults there
_SCANNED = (range(0, 0x20000), range(0x2F800, TABLE_SIZE))


@functools.cache
def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Per code point below TABLE_SIZE: its lower-case code point, and its class (KEEP, SEPARATOR, DROP)."""
    lower = np.arange(TABLE_SIZE, dtype=np.uint32)
    cls = np.zeros(TABLE_SIZE, dtype=np.uint8)
    for cp in itertools.chain(*_SCANNED):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat[0] in "PSZ" or cat == "Cc":
            cls[cp] = SEPARATOR
        elif cat in ("Cf", "Cs"):
            cls[cp] = DROP
        else:
            low = ch.lower()
            lower[cp] = ord(low[0]) if low else cp
    return lower, cls


@functools.cache
def _packed_table() -> np.ndarray:
    """One uint32 per code point below TABLE_SIZE: lower-case code point | class << 24 | NFKC-unsafe << 26."""
    lower, cls = _tables()
    return (
        lower | (cls.astype(np.uint32) << np.uint32(24)) | (_nfkc_unsafe().astype(np.uint32) << np.uint32(26))
    )


@functools.cache
def _nfkc_unsafe() -> np.ndarray:
    """1 for each code point below TABLE_SIZE that NFKC may change (quick-check No or Maybe), else 0.

    Separators that NFKC maps to separators only (no-break space, full-width comma) are left out: they
    cannot change the shingles.
    """
    _, cls = _tables()
    unsafe = set()
    for cp in itertools.chain(range(0x80, 0x20000), _SCANNED[1]):
        ch = chr(cp)
        mapped = unicodedata.normalize("NFKC", ch)
        if cls[cp] == SEPARATOR and all(cls[ord(c)] == SEPARATOR for c in mapped if ord(c) < TABLE_SIZE):
            continue  # a separator that stays separators: NFKC cannot change the shingles
        if mapped != ch or unicodedata.combining(ch):
            unsafe.add(cp)
        dec = unicodedata.decomposition(ch).split()
        if len(dec) == 2 and not dec[0].startswith("<"):
            unsafe.add(int(dec[1], 16))  # second half of a canonical composition
    unsafe.update(range(0x1161, 0x1176))  # Hangul vowel and trailing jamo compose algorithmically
    unsafe.update(range(0x11A8, 0x11C3))
    table = np.zeros(TABLE_SIZE, dtype=np.uint8)
    table[sorted(unsafe)] = 1
    return table


def _splitmix64(values: list[int]) -> list[int]:
    out = []
    for v in values:
        z = (v + 0x9E3779B97F4A7C15) & _M64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        out.append(z ^ (z >> 31))
    return out


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) uint64 parameters of the num_perm MinHash permutations for a seed (a is odd)."""
    base = (seed & 0xFFFFFFFF) << 32
    a = _splitmix64([base + 2 * p for p in range(num_perm)])
    b = _splitmix64([base + 2 * p + 1 for p in range(num_perm)])
    return np.array([x | 1 for x in a], dtype=np.uint64), np.array(b, dtype=np.uint64)


@numba.njit(inline="always")
def _fmix64(h):
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xFF51AFD7ED558CCD)
    h ^= h >> np.uint64(33)
    h *= np.uint64(0xC4CEB9FE1A85EC53)
    h ^= h >> np.uint64(33)
    return h


@numba.njit(inline="always")
def _combine(ring, lo, hi, salt):
    """32-bit hash of the ordered token hashes ring[lo:hi]: fmix64(salt + sum of ring[k] * odd constant k)."""
    g = salt
    for k in range(lo, hi):
        g += ring[k] * (np.uint64(0x9E3779B97F4A7C15) * np.uint64(2 * (k - lo) + 1))
    return _fmix64(g) >> np.uint64(32)


@numba.njit(inline="always")
def _push(ring, seen, tok, ngram, xs, nx, salt):
    """Add one token (or character) hash; once ngram are seen, append the n-gram's 32-bit hash to xs.

    ring holds the last ngram hashes, oldest first.
    """
    for k in range(ngram - 1):
        ring[k] = ring[k + 1]
    ring[ngram - 1] = tok
    seen += 1
    if seen >= ngram:
        xs[nx] = _combine(ring, 0, ngram, salt)
        nx += 1
    return seen, nx


@numba.njit(inline="always")
def _minhash(xs, nx, a, b, row):
    """row[p] = min over the nx shingle hashes x of (a[p] * x + b[p]) mod 2**64 >> 32."""
    for p in range(a.shape[0]):
        ap = a[p]
        bp = b[p]
        m = np.uint64(0xFFFFFFFFFFFFFFFF)
        for s in range(nx):
            m = min(m, ap * xs[s] + bp)
        row[p] = np.uint32(m >> np.uint64(32))


@numba.njit(cache=True, nogil=True)
def _signatures_kernel(data, offsets, ngram, char_mode, salt, packed, a, b, sig, counts, lengths, flags):
    """MinHash of text i (UTF-8 bytes data[offsets[i]:offsets[i+1]]) into sig[i]; shingle and char counts.

    Code points are lower-cased and classed with the packed table; separators end a word (char mode: a
    run of them is one space, none at the ends); DROP code points are skipped; flags[i] is 1 when text i
    holds a code point NFKC may change.
    """
    n_docs = offsets.shape[0] - 1
    ring = np.zeros(ngram, dtype=np.uint64)
    fnv_offset = np.uint64(0xCBF29CE484222325)
    fnv_prime = np.uint64(0x100000001B3)
    space = _fmix64(np.uint64(32) + fnv_offset)
    table = packed.shape[0]
    longest = 0
    for i in range(n_docs):
        longest = max(longest, offsets[i + 1] - offsets[i])
    xs = np.empty(longest + 1, dtype=np.uint64)
    for i in range(n_docs):
        nx = 0
        row = sig[i]
        j = offsets[i]
        hi = offsets[i + 1]
        seen = 0
        length = 0
        in_tok = False
        pending = False
        flag = np.uint8(0)
        h = fnv_offset
        while j < hi:
            c0 = np.uint32(data[j])
            if c0 < 0x80:
                cp = c0
                j += 1
            elif c0 < 0xE0:
                cp = ((c0 & np.uint32(0x1F)) << np.uint32(6)) | (np.uint32(data[j + 1]) & np.uint32(0x3F))
                j += 2
            elif c0 < 0xF0:
                cp = (
                    ((c0 & np.uint32(0x0F)) << np.uint32(12))
                    | ((np.uint32(data[j + 1]) & np.uint32(0x3F)) << np.uint32(6))
                    | (np.uint32(data[j + 2]) & np.uint32(0x3F))
                )
                j += 3
            else:
                cp = (
                    ((c0 & np.uint32(0x07)) << np.uint32(18))
                    | ((np.uint32(data[j + 1]) & np.uint32(0x3F)) << np.uint32(12))
                    | ((np.uint32(data[j + 2]) & np.uint32(0x3F)) << np.uint32(6))
                    | (np.uint32(data[j + 3]) & np.uint32(0x3F))
                )
                j += 4
            k = 0
            if cp < table:
                e = packed[cp]
                k = (e >> np.uint32(24)) & np.uint32(3)
                flag |= np.uint8(e >> np.uint32(26))
                cp = e & np.uint32(0xFFFFFF)
            if k == 2:
                continue
            if k == 1:
                if char_mode:
                    pending = length > 0
                elif in_tok:
                    seen, nx = _push(ring, seen, _fmix64(h), ngram, xs, nx, salt)
                    in_tok = False
                    h = fnv_offset
                continue
            length += 1
            if char_mode:
                if pending:
                    seen, nx = _push(ring, seen, space, ngram, xs, nx, salt)
                    length += 1
                    pending = False
                seen, nx = _push(ring, seen, _fmix64(np.uint64(cp) + fnv_offset), ngram, xs, nx, salt)
            else:
                h = (h ^ np.uint64(cp)) * fnv_prime
                in_tok = True
        if in_tok:
            seen, nx = _push(ring, seen, _fmix64(h), ngram, xs, nx, salt)
        if 0 < seen < ngram:  # a text shorter than one shingle is one shingle of what it has
            xs[0] = _combine(ring, ngram - seen, ngram, salt)
            nx = 1
        if nx > 0:
            _minhash(xs, nx, a, b, row)
        else:
            row[:] = np.uint32(0xFFFFFFFF)
        counts[i] = nx
        flags[i] = flag
        lengths[i] = length


def _utf8_buffers(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    arr = texts.cast(pl.String).to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    arr = arr.cast(pa.large_string())
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return data, offsets


def signatures(
    texts: pl.Series, num_perm: int, ngram: int, shingle: str = "word", seed: int = 1, salt: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """MinHash signatures (n, num_perm) uint32 of texts, each text's shingle count and normalised length.

    Texts are normalised first: NFKC, lower case, punctuation, symbols and whitespace folded to one
    separator. A text with no shingle (empty after normalising) gets EMPTY values and count 0. A
    non-zero salt gives other shingle hashes (field-tagged tokens of records) under the same permutations.
    """
    packed = _packed_table()
    a, b = permutations(num_perm, seed)
    texts = texts.fill_null("")
    n = len(texts)
    sig = np.empty((n, num_perm), dtype=np.uint32)
    counts = np.zeros(n, dtype=np.int64)
    lengths = np.zeros(n, dtype=np.int64)
    flags = np.zeros(n, dtype=np.uint8)
    char_mode = shingle == "char"
    data, offsets = _utf8_buffers(texts)
    _signatures_kernel(
        data, offsets, ngram, char_mode, np.uint64(salt), packed, a, b, sig, counts, lengths, flags
    )
    redo = np.flatnonzero(flags)
    if len(redo):  # texts NFKC may change: normalise those, and shingle again the ones it changed
        before = texts.gather(redo)
        after = before.str.normalize("NFKC")
        changed = (before != after).to_numpy()
        redo, after = redo[changed], after.filter(changed)
    if len(redo):
        data, offsets = _utf8_buffers(after)
        s2, c2, l2, f2 = sig[redo], counts[redo], lengths[redo], flags[redo]
        _signatures_kernel(data, offsets, ngram, char_mode, np.uint64(salt), packed, a, b, s2, c2, l2, f2)
        sig[redo], counts[redo], lengths[redo] = s2, c2, l2
    return sig, counts, lengths


def name_salt(name: str) -> int:
    """A stable non-zero 64-bit salt for a name (FNV-1a 64 of its UTF-8 bytes)."""
    h = 0xCBF29CE484222325
    for byte in name.encode():
        h = ((h ^ byte) * 0x100000001B3) & _M64
    return h or 1


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """One 64-bit key per (text, band): a hash of the band's `rows` signature values, shape (n, bands).

    The band index is part of the hash, so keys of different bands never meet.
    """
    keys = np.empty((sig.shape[0], bands), dtype=np.uint64)
    _band_keys_kernel(sig, rows, keys)
    return keys


@numba.njit(cache=True, nogil=True)
def _band_keys_kernel(sig, rows, keys):
    for i in range(sig.shape[0]):
        for j in range(keys.shape[1]):
            h = np.uint64(0x9E3779B97F4A7C15) + np.uint64(j)
            for c in range(j * rows, (j + 1) * rows):
                h = _fmix64(h ^ np.uint64(sig[i, c]))
            keys[i, j] = h


def jaccard_estimates(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of paired rows of two signature arrays (fraction of equal values)."""
    return (sig_a == sig_b).mean(axis=1)

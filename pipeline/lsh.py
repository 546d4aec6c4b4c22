"""LSH over MinHash signatures: band/row choice, candidate pairs from band buckets, verification and
connected components, over many per-part signature files without loading them whole.

Buckets are found one band at a time: the band's key column is read from every part (8 bytes a record)
and sorted; equal keys are candidates. Only the signatures of candidates are read back, to verify each
pair by estimated Jaccard similarity. Memory is O(records) for one band, never O(records x bands).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from schemas import columns as C

ROW = "_row"  # global row index over all parts (internal, never written)


def _collision(s: np.ndarray, bands: int, rows: int) -> np.ndarray:
    return 1.0 - (1.0 - s**rows) ** bands


def optimal_bands(threshold: float, num_perm: int, fp_weight: float = 0.5) -> tuple[int, int]:
    """(bands, rows) with bands*rows <= num_perm minimising the weighted false-positive and false-negative
    areas of the LSH S-curve around the Jaccard threshold (the choice of datasketch and Data-Juicer)."""
    fn_weight = 1.0 - fp_weight
    lo = np.linspace(0.0, threshold, 201)
    hi = np.linspace(threshold, 1.0, 201)
    best, best_err = (1, num_perm), float("inf")
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            fp = np.trapezoid(_collision(lo, b, r), lo)
            fn = np.trapezoid(1.0 - _collision(hi, b, r), hi)
            err = fp_weight * fp + fn_weight * fn
            if err < best_err:
                best, best_err = (b, r), err
    return best


class SignatureSet:
    """Signature tables (per-part Parquet files or in-memory Arrow tables) under one global row index."""

    def __init__(self, parts: Sequence[str | Path | pa.Table]) -> None:
        self.parts = [p if isinstance(p, pa.Table) else Path(p) for p in parts]
        self._files: dict[Path, pq.ParquetFile] = {}
        sizes = [
            p.num_rows if isinstance(p, pa.Table) else self._file(p).metadata.num_rows for p in self.parts
        ]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)

    def _file(self, path: Path) -> pq.ParquetFile:
        if path not in self._files:
            self._files[path] = pq.ParquetFile(path, pre_buffer=False)
        return self._files[path]

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def columns(self) -> list[str]:
        """Column names of the first part (all parts share a schema)."""
        p = self.parts[0]
        return p.schema.names if isinstance(p, pa.Table) else self._file(p).schema_arrow.names

    def column(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """One uint64 column over all parts (read one part at a time) and its validity mask."""
        values = np.zeros(len(self), dtype=np.uint64)
        valid = np.zeros(len(self), dtype=bool)
        for i, part in enumerate(self.parts):
            col = (
                part.column(name)
                if isinstance(part, pa.Table)
                else self._file(part).read(columns=[name])[name]
            )
            col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            valid[lo:hi] = np.asarray(col.is_valid())
            values[lo:hi] = np.asarray(col.fill_null(0))
        return values, valid

    def gather(self, rows: np.ndarray, columns: list[str]) -> pa.Table:
        """The given columns of the given (sorted, unique) global rows, reading one part at a time."""
        pieces = []
        for i, part in enumerate(self.parts):
            lo, hi = int(self.offsets[i]), int(self.offsets[i + 1])
            a, b = np.searchsorted(rows, [lo, hi])
            if a == b:
                continue
            table = (
                part.select(columns) if isinstance(part, pa.Table) else self._file(part).read(columns=columns)
            )
            piece = table.take(pa.array(rows[a:b] - lo))
            if C.MINHASH in columns:  # parts may store it as list or binary: one form for concat
                i = piece.schema.get_field_index(C.MINHASH)
                piece = piece.set_column(i, C.MINHASH, minhash_binary(piece.column(C.MINHASH)))
            pieces.append(piece)
        if not pieces:
            return pa.table({c: pa.array([]) for c in columns})
        return pa.concat_tables(pieces)


def signature_matrix(col: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """(n, num_perm) uint32 from a `minhash` column, stored as fixed-size list or fixed-size binary."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_fixed_size_binary(col.type):
        data = np.frombuffer(col.buffers()[1], dtype="<u4")
        width = col.type.byte_width // 4
        return data[col.offset * width : (col.offset + len(col)) * width].reshape(len(col), width)
    return np.asarray(col.values.fill_null(0), dtype=np.uint32)[
        col.offset * col.type.list_size : (col.offset + len(col)) * col.type.list_size
    ].reshape(len(col), col.type.list_size)


def minhash_binary(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A `minhash` column as fixed-size binary (uint32 little-endian values); nulls stay null."""
    col = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if pa.types.is_fixed_size_binary(col.type):
        return col
    sig = np.ascontiguousarray(signature_matrix(col), dtype="<u4")
    valid = np.asarray(col.is_valid())
    bitmap = None if valid.all() else pa.array(valid).buffers()[1]
    width = sig.shape[1] * 4
    return pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(col), [bitmap, pa.py_buffer(sig.tobytes())]
    )


def band_edges(keys: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Candidate pairs (E, 2) of rows sharing a key of one band: each bucket member with the bucket's
    first and previous member (in sort order; any order spans the bucket).

    Linking to the first and previous member (not all pairs) keeps big buckets linear; a pair that
    fails verification may still be joined through another band or member.
    """
    rows = np.flatnonzero(valid)
    k = keys[rows]
    order = np.argsort(k)
    ks, gs = k[order], rows[order]
    same = ks[1:] == ks[:-1]
    if not same.any():
        return np.zeros((0, 2), dtype=np.int64)
    start = np.concatenate([[True], ~same])
    first = gs[np.flatnonzero(start)[np.cumsum(start) - 1]]
    idx = np.flatnonzero(same) + 1
    return np.concatenate([np.stack([first[idx], gs[idx]], axis=1), np.stack([gs[idx - 1], gs[idx]], axis=1)])


def unique_edges(edges: np.ndarray) -> np.ndarray:
    """Distinct undirected edges (lower row first), self-loops removed."""
    edges = np.sort(edges, axis=1)
    edges = edges[edges[:, 0] != edges[:, 1]]
    if len(edges) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    base = np.int64(edges.max()) + 1
    keys = np.unique(edges[:, 0] * base + edges[:, 1])
    return np.stack([keys // base, keys % base], axis=1)


def verify_edges(sig: np.ndarray, edges: np.ndarray, threshold: float, chunk: int = 1 << 18) -> np.ndarray:
    """Mask of edges (rows into sig) whose estimated Jaccard similarity is at least threshold."""
    keep = np.zeros(len(edges), dtype=bool)
    for s in range(0, len(edges), chunk):
        e = edges[s : s + chunk]
        keep[s : s + chunk] = (sig[e[:, 0]] == sig[e[:, 1]]).mean(axis=1) >= threshold - 1e-9
    return keep


def components(n: int, edges: np.ndarray) -> np.ndarray:
    """Connected-component label of each of n nodes given undirected edges (E, 2) of node indices."""
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(edges), dtype=np.int8), (edges[:, 0], edges[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1].astype(np.int64)


def candidate_edges(sigs: SignatureSet) -> np.ndarray:
    """Distinct candidate pairs of global rows sharing a key in any band (one band in memory at a time)."""
    edges = np.zeros((0, 2), dtype=np.int64)
    for c in sorted(c for c in sigs.columns() if c.startswith(C.LSH_BAND)):
        new = band_edges(*sigs.column(c))
        if len(new):  # merged band by band: memory holds distinct edges, not one copy per band
            edges = unique_edges(np.concatenate([edges, new]))
    return edges


def near_pairs(
    sigs: SignatureSet, threshold: float, columns: Sequence[str] = (C.ID, C.NEAR_LENGTH)
) -> tuple[np.ndarray, pa.Table, np.ndarray]:
    """Records with a verified near-duplicate: their global rows, their `columns`, and their component.

    Candidates come from shared band keys and are kept when the estimated Jaccard similarity of their
    MinHash signatures is at least threshold; only the signatures of candidates are read.
    """
    empty = (np.zeros(0, np.int64), pa.table({c: pa.array([]) for c in columns}), np.zeros(0, np.int64))
    if len(sigs) == 0:
        return empty
    edges = candidate_edges(sigs)
    if len(edges) == 0:
        return empty
    nodes = np.unique(edges)
    table = sigs.gather(nodes, [C.MINHASH, *columns])
    sig = signature_matrix(table.column(C.MINHASH))
    local = np.searchsorted(nodes, edges)
    local = local[verify_edges(sig, local, threshold)]
    if len(local) == 0:
        return empty
    labels = components(len(nodes), local)
    linked = np.zeros(len(nodes), dtype=bool)
    linked[local.ravel()] = True
    keep = np.flatnonzero(linked)
    return nodes[keep], table.drop_columns([C.MINHASH]).take(pa.array(keep)), labels[keep]

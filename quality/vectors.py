"""Vectors as Arrow columns: fixed-size lists of float32 (or float16), one row per record."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def vector_type(dim: int, dtype: str) -> pa.DataType:
    """Arrow type of a `dim`-wide vector stored as `dtype` (float32 or float16)."""
    return pa.list_(pa.float16() if dtype == "float16" else pa.float32(), dim)


def vectors_to_arrow(v: np.ndarray, dtype: str = "float32") -> pa.FixedSizeListArray:
    """n x d matrix as a fixed-size-list column of float32 or float16."""
    v = np.ascontiguousarray(v, dtype=np.float16 if dtype == "float16" else np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])


def arrow_to_vectors(col: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-size-list column as (n x d float32 matrix with zero rows for nulls, boolean valid mask)."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks else pa.array([], col.type)
    d = col.type.list_size
    valid = np.asarray(col.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    filled = col.fill_null(pa.scalar([0.0] * d, col.type)) if col.null_count else col
    flat = filled.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(flat, dtype=np.float32).reshape(len(col), d), valid

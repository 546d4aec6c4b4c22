"""Features for routing and for the labelling loop's classifier, when no embedding stage ran.

Text: TF-IDF (word 1-2 grams, sublinear tf). Images: colour histogram + gradient-orientation histogram per
cell + a coarse grey thumbnail, from the encoded bytes. Dense views (for k-means) are L2-normalised.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

IMAGE_SIDE = 32


def text_matrix(texts: Sequence[str | None], min_df: int = 1) -> Any:
    """Sparse TF-IDF matrix of texts (rows L2-normalised)."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=min_df, max_features=50_000)
    return vec.fit_transform([t or "" for t in texts])


def dense(x: Any, dims: int = 64, seed: int = 0) -> np.ndarray:
    """An L2-normalised dense view of a feature matrix (truncated SVD when wider than `dims`)."""
    from sklearn.decomposition import TruncatedSVD

    n, d = x.shape
    if d > dims and n > dims:
        v = TruncatedSVD(n_components=dims, random_state=seed).fit_transform(x)
    else:
        v = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    v = np.asarray(v, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return v / np.maximum(norms, 1e-12)


def _image_vector(data: bytes | None) -> np.ndarray:
    from PIL import Image

    out = np.zeros(24 + 16 * 8 + 64, dtype=np.float32)
    if not data:
        return out
    img = Image.open(io.BytesIO(data)).convert("RGB").resize((IMAGE_SIDE, IMAGE_SIDE))
    rgb = np.asarray(img, dtype=np.float32) / 255.0
    hsv = np.asarray(img.convert("HSV"), dtype=np.float32) / 255.0
    hist = [np.histogram(hsv[..., c], bins=8, range=(0, 1))[0] for c in range(3)]
    colour = np.concatenate(hist).astype(np.float32) / (IMAGE_SIDE * IMAGE_SIDE)
    grey = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    gy, gx = np.gradient(grey)
    mag = np.hypot(gx, gy)
    ang = (np.arctan2(gy, gx) % np.pi) / np.pi  # unsigned orientation in [0, 1)
    bins = np.minimum((ang * 8).astype(int), 7)
    cell = IMAGE_SIDE // 4
    hog = np.zeros((4, 4, 8), dtype=np.float32)
    for i in range(4):
        for j in range(4):
            sl = (slice(i * cell, (i + 1) * cell), slice(j * cell, (j + 1) * cell))
            hog[i, j] = np.bincount(bins[sl].ravel(), weights=mag[sl].ravel(), minlength=8)
    hog = hog / np.maximum(np.linalg.norm(hog, axis=2, keepdims=True), 1e-6)
    thumb = grey.reshape(8, 4, 8, 4).mean(axis=(1, 3)).ravel()
    return np.concatenate([colour, hog.ravel(), thumb - thumb.mean()])


def image_matrix(images: Sequence[bytes | None]) -> np.ndarray:
    """n x 216 hand-made image features (colour, gradient orientations, thumbnail) from encoded bytes."""
    return np.stack([_image_vector(b) for b in images]) if len(images) else np.zeros((0, 216), np.float32)

"""Image folders (optionally with a captions file or COCO captions JSON) and WebDataset-style tars."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from pipeline.readers.builder import Batch, RecordBuilder, dumps
from schemas.config import SourceConfig

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff"}
CAPTION_EXTENSIONS = {".txt", ".caption"}


def probe_image(blob: bytes) -> tuple[int, int, str]:
    """Decode an image fully once; return (width, height, format) or raise ValueError saying why."""
    try:
        with Image.open(io.BytesIO(blob)) as img:
            fmt = (img.format or "unknown").lower()
            img.load()
            return img.width, img.height, fmt
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise ValueError(f"undecodable_image: {exc}") from None


def _add_image(
    b: RecordBuilder, row: int, key: str, blob: bytes, path: str, caption: str | None, meta: dict | None
) -> None:
    try:
        width, height, fmt = probe_image(blob)
    except ValueError as exc:
        b.bad(row, str(exc), path)
        return
    b.add(
        row,
        key,
        text=caption,
        image=blob,
        image_path=path,
        width=width,
        height=height,
        image_format=fmt,
        meta=dumps(meta) if meta else None,
    )


def load_captions(path: Path) -> dict[str, list[str]]:
    """Captions by image file name (relative path or base name) from JSONL/CSV/TSV or COCO captions JSON."""
    text = path.read_text(encoding="utf-8")
    out: dict[str, list[str]] = {}
    if path.suffix == ".json":
        coco = json.loads(text)
        if "annotations" not in coco or "images" not in coco:
            raise ValueError(f"{path}: not a COCO captions file (needs 'images' and 'annotations')")
        names = {img["id"]: img["file_name"] for img in coco["images"]}
        for ann in sorted(coco["annotations"], key=lambda a: a.get("id", 0)):
            out.setdefault(names[ann["image_id"]], []).append(ann["caption"].strip())
        return out
    if path.suffix == ".jsonl":
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        rows = list(csv.DictReader(io.StringIO(text), delimiter="\t" if path.suffix == ".tsv" else ","))
    for lineno, r in enumerate(rows, start=2):
        name = r.get("file") or r.get("image") or r.get("file_name")
        cap = r.get("caption") or r.get("text")
        if not name or cap is None:
            raise ValueError(f"{path}: row {lineno} needs 'file' (or 'image') and 'caption' (or 'text')")
        out.setdefault(str(name), []).append(str(cap))
    return out


def read_image_folder(root: Path, src: SourceConfig, builder: RecordBuilder) -> Iterator[Batch]:
    """Every image file under `root` (sorted, recursive) as one image record."""
    captions = load_captions(Path(src.captions)) if src.captions else {}
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    for row, p in enumerate(files, start=1):
        rel = p.relative_to(root).as_posix()
        caps = captions.get(rel) or captions.get(p.name)
        meta = {"captions": caps} if caps and len(caps) > 1 else None
        _add_image(builder, row, rel, p.read_bytes(), str(p), caps[0] if caps else None, meta)
        if builder.ready():
            yield builder.flush()
    yield from builder.drain()


def read_webdataset(path: Path, src: SourceConfig, builder: RecordBuilder) -> Iterator[Batch]:
    """A WebDataset tar: consecutive members sharing a key (name up to the first dot) form one sample."""
    key, parts, row = None, {}, 0
    try:
        with tarfile.open(path, "r|*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or base.startswith("."):
                    continue
                folder = member.name[: -len(base)]
                stem, _, ext = base.partition(".")
                fh = tar.extractfile(member)
                if fh is None:
                    continue
                if folder + stem != key:
                    if key is not None:
                        row += 1
                        _add_sample(builder, row, key, parts, path, src)
                        if builder.ready():
                            yield builder.flush()
                    key, parts = folder + stem, {}
                parts["." + ext.lower()] = fh.read()
    except (tarfile.TarError, EOFError, OSError) as exc:
        builder.bad(None, f"corrupt_file: tar truncated or corrupt: {exc}")
    if key is not None:
        _add_sample(builder, row + 1, key, parts, path, src)
    yield from builder.drain()


def _add_sample(
    b: RecordBuilder, row: int, key: str, parts: dict[str, bytes], path: Path, src: SourceConfig
) -> None:
    img_ext = next((e for e in parts if e in IMAGE_EXTENSIONS), None)
    if img_ext is None:
        b.bad(row, f"no_image: sample '{key}' has no image member (members: {', '.join(sorted(parts))})", key)
        return
    caption, meta = None, None
    if ".json" in parts:
        try:
            meta = json.loads(parts[".json"])
        except json.JSONDecodeError as exc:
            b.bad(row, f"invalid_json: sample '{key}' JSON member: {exc}", parts[".json"])
            return
        caption = meta.pop(src.text_field, None) if isinstance(meta, dict) else None
    for ext in CAPTION_EXTENSIONS:
        if ext in parts:
            caption = parts[ext].decode("utf-8", errors="replace").strip()
    _add_image(b, row, key, parts[img_ext], f"{path}#{key}{img_ext}", caption, meta or None)

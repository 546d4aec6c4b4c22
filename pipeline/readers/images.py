"""Image folders (optionally with a captions file or COCO captions JSON) and WebDataset-style tars."""

from __future__ import annotations

import csv
import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path

import orjson
from PIL import Image, UnidentifiedImageError

from pipeline.readers.builder import Batch, RecordBuilder, dumps
from pipeline.readers.streams import (
    STREAM_ERRORS,
    BadFile,
    Encoding,
    has_surrogates,
    open_stream,
    open_text,
    sniff_encoding,
    suffix_codec,
)
from pipeline.readers.tabular import CsvRecords
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


CaptionProblem = tuple[int | None, str, bytes | str | None]  # (line, reason, raw) of an unusable row


def load_captions(path: Path) -> tuple[dict[str, list[str]], list[CaptionProblem]]:
    """Captions by image file name (relative path or base name) from JSONL/CSV/TSV or COCO captions JSON
    (any codec of `streams`), and the rows that cannot be used; BadFile when the file cannot be read."""
    name = path.name.lower()
    if suffix_codec(path) is not None:
        name = name.rsplit(".", 1)[0]
    kind = name.rsplit(".", 1)[-1] if "." in name else "csv"
    enc = sniff_encoding(path)
    if kind == "json":
        with open_text(path, enc, newline=None) as f:
            return _coco_captions(f.read())
    out: dict[str, list[str]] = {}
    problems: list[CaptionProblem] = []
    for line, row, raw, why in _caption_rows(path, enc, kind):
        if row is None:
            problems.append((line, why or "bad_row", raw))
            continue
        file = row.get("file") or row.get("image") or row.get("file_name")
        cap = row.get("caption") if row.get("caption") is not None else row.get("text")
        if not file:
            problems.append((line, "missing_field: needs 'file' (or 'image', 'file_name')", raw))
        elif cap is None or not str(cap).strip():
            problems.append(
                (line, f"missing_caption: the row names '{file}' but has no caption; image kept without", raw)
            )
        else:
            out.setdefault(str(file), []).append(str(cap))
    return out, problems


def _caption_rows(
    path: Path, enc: Encoding, kind: str
) -> Iterator[tuple[int, dict | None, bytes | str, str | None]]:
    """(line, row or None, raw, why) for every non-blank row of a JSONL/CSV/TSV captions file."""
    with open_text(path, enc, newline="" if kind != "jsonl" and kind != "ndjson" else "\n") as f:
        if kind in ("jsonl", "ndjson"):
            for line, text in enumerate(f, start=1):
                if not text.strip():
                    continue
                try:
                    obj = orjson.loads(text.encode("utf-8", "surrogatepass"))
                except orjson.JSONDecodeError as exc:
                    yield line, None, text, f"invalid_json: {exc}"
                    continue
                ok = isinstance(obj, dict)
                yield line, obj if ok else None, text, None if ok else "not_an_object: expected a JSON object"
            return
        records = CsvRecords(
            f, "\t" if kind == "tsv" else ",", csv.QUOTE_NONE if kind == "tsv" else csv.QUOTE_MINIMAL
        )
        header = None
        for line, values, raw, why in records:
            if values is not None and (not values or values == [""]):
                continue
            if values is None or has_surrogates(raw):
                yield (
                    line,
                    None,
                    raw,
                    why or f"invalid_{enc.label}: the row has bytes that are not {enc.python}",
                )
            elif header is None:
                header = [h.lstrip("\ufeff").strip() for h in values]
                records.width = len(header)
            elif len(values) > len(header):
                yield (
                    line,
                    None,
                    raw,
                    f"ragged_row: expected {len(header)} fields (as the header), got {len(values)}",
                )
            else:  # a short row leaves its missing columns None (csv.DictReader's behaviour)
                padded = values + [None] * (len(header) - len(values))
                yield line, dict(zip(header, padded, strict=True)), raw, None


def _coco_captions(text: str) -> tuple[dict[str, list[str]], list[CaptionProblem]]:
    try:
        coco = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadFile(
            "corrupt_file",
            f"the captions file is not valid JSON ({exc.msg}: line {exc.lineno}, column {exc.colno}; "
            "truncated?); images are read without captions",
        ) from None
    if (
        not isinstance(coco, dict)
        or not isinstance(coco.get("annotations"), list)
        or not isinstance(coco.get("images"), list)
    ):
        raise BadFile("bad_captions", "not a COCO captions file (needs 'images' and 'annotations' lists)")
    names = {
        img["id"]: img["file_name"]
        for img in coco["images"]
        if isinstance(img, dict) and "id" in img and "file_name" in img
    }
    out: dict[str, list[str]] = {}
    problems: list[CaptionProblem] = []
    anns = [a for a in coco["annotations"] if isinstance(a, dict)]
    for ann in sorted(anns, key=lambda a: a.get("id", 0) if isinstance(a.get("id", 0), int) else 0):
        cap, image = ann.get("caption"), names.get(ann.get("image_id"))
        if image is None or not isinstance(cap, str) or not cap.strip():
            why = (
                "no caption" if image is not None else f"image_id {ann.get('image_id')!r} is not in 'images'"
            )
            problems.append((None, f"bad_caption: annotation {ann.get('id')!r}: {why}", dumps(ann)))
            continue
        out.setdefault(str(image), []).append(cap.strip())
    return out, problems


def read_image_folder(root: Path, src: SourceConfig, builder: RecordBuilder) -> Iterator[Batch]:
    """Every image file under `root` (sorted, recursive) as one image record.

    A captions row that cannot be used is quarantined (file = the captions file) and counts as a row
    read; its image is kept without a caption. A captions file that cannot be read at all is one such row.
    """
    captions: dict[str, list[str]] = {}
    if src.captions:
        cap_path = Path(src.captions)
        try:
            captions, problems = load_captions(cap_path)
        except BadFile as exc:
            problems = [(None, str(exc), None)]
        except STREAM_ERRORS as exc:
            problems = [(None, f"corrupt_file: the captions file cannot be read: {exc}", None)]
        for line, reason, raw in problems:
            builder.file_error(reason, line, raw, file=str(cap_path))
    prefix = "" if builder.file_key in (None, "", ".") else f"{builder.file_key}/"
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)
    for row, p in enumerate(files, start=1):
        builder.read()
        rel = p.relative_to(root).as_posix()
        try:
            blob = p.read_bytes()
        except OSError as exc:
            builder.bad(row, f"unreadable_file: {exc.strerror or exc}", str(p))
            builder.reread = True
            continue
        caps = captions.get(rel) or captions.get(p.name)
        meta = {"captions": caps} if caps and len(caps) > 1 else None
        _add_image(builder, row, prefix + rel, blob, str(p), caps[0] if caps else None, meta)
        if builder.ready():
            yield builder.flush()
    yield from builder.drain()


def read_webdataset(path: Path, src: SourceConfig, builder: RecordBuilder) -> Iterator[Batch]:
    """A WebDataset tar (plain or in any codec of `streams`): consecutive members sharing a key (name up
    to the first dot) form one sample."""
    key, parts, row = None, {}, 0
    try:
        with open_stream(path) as raw, tarfile.open(fileobj=raw, mode="r|") as tar:
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
    except (tarfile.TarError, *STREAM_ERRORS) as exc:
        builder.file_error(f"corrupt_file: tar truncated or corrupt after sample {row}: {exc}")
    if key is not None:
        _add_sample(builder, row + 1, key, parts, path, src)
    yield from builder.drain()


def _add_sample(
    b: RecordBuilder, row: int, key: str, parts: dict[str, bytes], path: Path, src: SourceConfig
) -> None:
    b.read()
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

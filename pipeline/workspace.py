"""The workspace: every stage's output per part, written atomically, so runs resume and SQL can explain.

Layout::

    <ws>/ingest/<part>.parquet       Record rows
    <ws>/quarantine/<part>.parquet   bad rows with reason
    <ws>/ingest/_done/<file>.json    one marker per finished input file (its parts, counts, fingerprint)
    <ws>/<stage>/<part>.parquet      id + the stage's columns (map stages)
    <ws>/<stage>.parquet             global steps (exact clusters, decisions, ...)
    <ws>/shards/<split>-NNNNN.arrow  published shards, <ws>/manifest.json
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

CONFIG_HASH_KEY = b"curate.config_hash"

INGEST = "ingest"
QUARANTINE = "quarantine"
EXACT = "exact"
RULES = "rules"
DECISIONS = "decisions"
NEAR_TEXT, NEAR_IMAGE, NEAR_RECORD = "near_text", "near_image", "near_record"
EMBED, LANG, PII, QUALITY = "embed", "lang", "pii", "quality"
NEAR, SEMANTIC = "near", "semantic"  # global steps
SHARDS = "shards"
MANIFEST = "manifest.json"


class Workspace:
    """Paths and atomic I/O for one workspace folder."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()

    def __repr__(self) -> str:
        return f"Workspace({str(self.root)!r})"

    def stage_dir(self, stage: str) -> Path:
        """Folder of a map stage's per-part files."""
        return self.root / stage

    def part_path(self, stage: str, part: str) -> Path:
        """File of one part of a map stage."""
        return self.stage_dir(stage) / f"{part}.parquet"

    def global_path(self, stage: str) -> Path:
        """File of a global step."""
        return self.root / f"{stage}.parquet"

    def parts(self) -> list[str]:
        """Names of the ingested parts, sorted."""
        d = self.stage_dir(INGEST)
        return sorted(p.stem for p in d.glob("*.parquet")) if d.exists() else []

    def stage_files(self, stage: str) -> list[Path]:
        """Existing per-part files of a stage, sorted."""
        d = self.stage_dir(stage)
        return sorted(d.glob("*.parquet")) if d.exists() else []

    @property
    def done_dir(self) -> Path:
        return self.stage_dir(INGEST) / "_done"

    @property
    def shards_dir(self) -> Path:
        return self.root / SHARDS

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path beside `final`; rename it onto `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".tmp-{uuid.uuid4().hex[:8]}-{final.name}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet(table: pa.Table, path: Path, config_hash: str | None = None) -> Path:
    """Write a table atomically, tagging it with the config hash that produced it."""
    if config_hash is not None:
        meta = dict(table.schema.metadata or {})
        meta[CONFIG_HASH_KEY] = config_hash.encode()
        table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def is_fresh(path: Path, config_hash: str) -> bool:
    """True when `path` exists and was written under the same config hash (so the work can be skipped)."""
    if not path.exists():
        return False
    try:
        meta = pq.read_schema(path).metadata or {}
    except (pa.ArrowInvalid, OSError):
        return False
    return meta.get(CONFIG_HASH_KEY) == config_hash.encode()


def write_json(obj: Any, path: Path) -> Path:
    """Write JSON atomically (sorted keys, stable bytes)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_json(path: Path) -> Any:
    """Read a JSON file written by write_json."""
    return json.loads(path.read_text(encoding="utf-8"))

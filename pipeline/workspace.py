"""The workspace: every stage's output per part, written atomically, so runs resume and SQL can explain.

Layout::

    <ws>/ingest/<part>.parquet       Record rows
    <ws>/quarantine/<part>.parquet   bad rows with reason
    <ws>/ingest/_done/<file>.json    one marker per finished input file (its parts, counts, fingerprint)
    <ws>/<stage>/<part>.parquet      id + the stage's columns (map stages)
    <ws>/<stage>.parquet             global steps (exact clusters, decisions, ...)
    <ws>/versions/v<N>/              one published version: <split>-NNNNN.arrow shards + its manifest.json
    <ws>/manifest.json               the current version's manifest (switched by one atomic rename)
    <ws>/.staging/                   temp files of writes in progress (renamed into place when complete)
    <ws>/.lock                       the workspace lock (pid and start of the run holding it)

Names starting with '.' are never committed outputs: every listing here skips them.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from schemas import columns as C

CONFIG_HASH_KEY = b"curate.config_hash"

INGEST = "ingest"
QUARANTINE = "quarantine"
EXACT = "exact"
RULES = "rules"
DECISIONS = "decisions"
NEAR_TEXT, NEAR_IMAGE, NEAR_RECORD = "near_text", "near_image", "near_record"
EMBED, LANG, PII, QUALITY = "embed", "lang", "pii", "quality"
NEAR, SEMANTIC = "near", "semantic"  # global steps
SHARDS = "shards"  # shards of a workspace published before versions existed
VERSIONS = "versions"
MANIFEST = "manifest.json"
STAGING = ".staging"
LOCK_FILE = ".lock"


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
        return [p.stem for p in committed(self.stage_dir(INGEST), ".parquet")]

    def stage_files(self, stage: str) -> list[Path]:
        """Existing per-part files of a stage, sorted."""
        return committed(self.stage_dir(stage), ".parquet")

    @property
    def done_dir(self) -> Path:
        return self.stage_dir(INGEST) / "_done"

    @property
    def shards_dir(self) -> Path:
        return self.root / SHARDS

    @property
    def manifest_path(self) -> Path:
        return self.root / MANIFEST

    @property
    def versions_dir(self) -> Path:
        return self.root / VERSIONS

    def version_dir(self, n: int) -> Path:
        """Folder of published version `n`."""
        return self.versions_dir / f"v{n}"

    def versions(self) -> list[int]:
        """Numbers of the published version folders, ascending."""
        d = self.versions_dir
        if not d.is_dir():
            return []
        return sorted(int(p.name[1:]) for p in d.iterdir() if p.name[:1] == "v" and p.name[1:].isdigit())

    @property
    def staging_dir(self) -> Path:
        return self.root / STAGING

    @property
    def lock_path(self) -> Path:
        return self.root / LOCK_FILE

    def reset_staging(self) -> None:
        """Empty `<ws>/.staging` and delete the dot-named temp files that killed writers left beside outputs
        (`.tmp-*`, `.*.tmp`, up to two folders deep; the Label Studio server's own folder is not ours).

        Only call this while holding the workspace lock: a running writer's temp files live there.
        """
        if self.staging_dir.exists():
            shutil.rmtree(self.staging_dir)
        folders, level = [self.root], [self.root]
        for _ in range(2):
            level = [
                d
                for f in level
                for d in f.iterdir()
                if d.is_dir() and d.name[:1] != "." and d.name != "labelstudio"
            ]
            folders += level
        for d in folders:
            for f in d.iterdir():
                if (
                    f.name[:1] == "."
                    and (f.name.startswith(".tmp-") or f.name.endswith(".tmp"))
                    and f.is_file()
                ):
                    f.unlink()
        self.staging_dir.mkdir(parents=True, exist_ok=True)


def committed(folder: Path, suffix: str) -> list[Path]:
    """The committed files of `folder` ending in `suffix`, sorted: names starting with '.' are skipped."""
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.iterdir() if p.name.endswith(suffix) and p.name[:1] != "." and p.is_file()
    )


class WorkspaceError(RuntimeError):
    """A workspace operation was refused or failed for the reason its one-line message states."""


class WorkspaceWriteError(OSError):
    """A write into the workspace failed for a reason outside curate (disk full, read-only, no permission)."""

    def __init__(self, path: Path, cause: OSError) -> None:
        super().__init__(cause.errno, _reason(cause), str(path))
        self.path = path

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.strerror}"

    def __repr__(self) -> str:  # what Prefect's task-failure lines show: keep the path in it
        return f"{type(self).__name__}({str(self)!r})"

    def __reduce__(self):  # type: ignore[no-untyped-def]  # pickles across Dask workers and Prefect results
        return (_rebuild_write_error, (str(self.path), self.errno, self.strerror))


def _rebuild_write_error(path: str, code: int | None, reason: str) -> WorkspaceWriteError:
    return WorkspaceWriteError(Path(path), OSError(code, reason))


_HINTS = {
    errno.ENOSPC: "no space left on the device (free space, then re-run: finished work is kept)",
    errno.EDQUOT: "disk quota exceeded (free space, then re-run: finished work is kept)",
    errno.EROFS: "the file system is read-only (use a writable --workspace)",
    errno.EACCES: "permission denied (use a workspace you can write)",
    errno.EPERM: "operation not permitted (immutable file or folder? see lsattr)",
}


def _reason(exc: OSError) -> str:
    return _HINTS.get(exc.errno or 0) or (exc.strerror or str(exc)).splitlines()[0]


def is_environment_error(exc: BaseException) -> bool:
    """True for write failures that a retry cannot fix (disk full, read-only, no permission)."""
    return isinstance(exc, OSError) and exc.errno in _HINTS


def staging_for(final: Path) -> Path:
    """Where a temp file for `final` goes: the `.staging` folder of the workspace holding it.

    The workspace is the nearest of the three folders above `final` that has a `.staging` folder on the
    same file system (so the closing rename is atomic); elsewhere (an --out file) the temp file is a
    dot-file beside `final`.
    """
    folder = final.parent
    try:
        dev = folder.stat().st_dev
        for d in (folder, *list(folder.parents)[:3]):
            s = d / STAGING
            if s.is_dir() and s.stat().st_dev == dev:
                return s
    except OSError:
        pass
    return folder


@contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temp path in the workspace's `.staging`; rename it onto `final` only if the block succeeds.

    A write that fails on the file system (disk full, read-only) raises WorkspaceWriteError naming `final`.
    """
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WorkspaceWriteError(final.parent, exc) from exc
    where = staging_for(final)
    tag = uuid.uuid4().hex[:8]
    # beside `final` (no workspace around it), a dot-name ending in .tmp: no `*.parquet` glob matches it
    tmp = where / (
        f".{final.name}.{tag}.tmp" if where == final.parent else f"{tag}-{final.parent.name}-{final.name}"
    )
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as exc:
        if is_environment_error(exc) and not isinstance(exc, WorkspaceWriteError):
            raise WorkspaceWriteError(final, exc) from exc
        raise
    finally:
        if tmp.exists():
            tmp.unlink()


def read_rows(files: list[Path], columns: list[str], ids: pa.Array | None = None) -> pa.Table:
    """`columns` of the parquet `files`; only the rows whose `id` is in `ids` when given (read by batch)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    dataset = pads.dataset([str(f) for f in files], format="parquet")
    return dataset.to_table(columns=columns, filter=None if ids is None else pc.field(C.ID).isin(ids))


PARQUET_OPTIONS = {"compression": "zstd"}  # how workspace tables are written (write_parquet, a stage's parts)


def write_parquet(table: pa.Table, path: Path, config_hash: str | None = None) -> Path:
    """Write a table atomically, tagging it with the config hash that produced it."""
    if config_hash is not None:
        meta = dict(table.schema.metadata or {})
        meta[CONFIG_HASH_KEY] = config_hash.encode()
        table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, **PARQUET_OPTIONS)
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

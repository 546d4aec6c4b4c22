"""Published versions of a workspace: list them, compare two, register them in SQL, delete old ones.

Every publish that changes something is a version `<ws>/versions/v<N>/`: its Arrow shards, its own
`manifest.json` and `decisions.parquet` (the decision of every record at that version). `<ws>/manifest.json`
names the current one. Older versions stay readable (SQL views `shards_v<N>`, `decisions_v<N>`) until
`gc` deletes them; `gc` never deletes the current version.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads

from pipeline import relations
from pipeline.publish import DECISIONS_SNAPSHOT
from pipeline.workspace import INGEST, MANIFEST, Workspace, WorkspaceError, read_json
from schemas import columns as C


class VersionError(WorkspaceError):
    """A version that does not exist, or a request that would delete the current version."""


@dataclass
class Version:
    """One published version: its number, folder, manifest and whether it is the current one."""

    number: int
    path: Path
    manifest: dict
    current: bool

    @property
    def created(self) -> str:
        """When the version was committed (its manifest's modification time, UTC, ISO 8601)."""
        ts = (self.path / MANIFEST).stat().st_mtime
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    @property
    def shard_files(self) -> list[Path]:
        """The shard files the version's manifest lists (paths are relative to the workspace)."""
        return [self.path.parent.parent / s["path"] for s in self.manifest.get("shards", [])]

    @property
    def decisions_file(self) -> Path | None:
        """The version's decisions snapshot, or None for a version published before snapshots existed."""
        p = self.path / DECISIONS_SNAPSHOT
        return p if p.is_file() else None

    def row(self) -> dict[str, Any]:
        """One line of `curate versions`: number, time, config hash, counts."""
        c = self.manifest.get("counts", {})
        return {
            "version": f"v{self.number}",
            "current": self.current,
            "created": self.created,
            "config_hash": self.manifest.get("config_hash"),
            "code_version": self.manifest.get("code_version"),
            "records": c.get("records"),
            "kept": c.get("kept"),
            "dropped": c.get("dropped"),
            "label": c.get("label"),
            "quarantined": c.get("quarantined"),
            "shards": len(self.manifest.get("shards", [])),
            "bytes": sum(s.get("bytes", 0) for s in self.manifest.get("shards", [])),
        }


def current_version(ws: Workspace) -> int | None:
    """The number of the version `<ws>/manifest.json` names (None before the first versioned publish)."""
    if not ws.manifest_path.exists():
        return None
    v = read_json(ws.manifest_path).get("version")
    return int(v) if v is not None else None


def list_versions(ws: Workspace) -> list[Version]:
    """Every complete version on disk (a folder with its manifest), oldest first."""
    cur = current_version(ws)
    out = []
    for n in ws.versions():
        path = ws.version_dir(n)
        if (path / MANIFEST).is_file():
            out.append(Version(n, path, read_json(path / MANIFEST), n == cur))
    return out


def get_version(ws: Workspace, name: str | int) -> Version:
    """A version by number or name (`3`, `v3`, `current`, `previous`); VersionError naming what exists."""
    versions = list_versions(ws)
    have = ", ".join(f"v{v.number}" for v in versions) or "none (run `curate publish` first)"
    s = str(name).strip().lower()
    if s in ("current", "latest"):
        found = [v for v in versions if v.current]
    elif s == "previous":
        cur = current_version(ws)
        found = [v for v in versions if cur is not None and v.number < cur][-1:]
    else:
        digits = s[1:] if s.startswith("v") else s
        if not digits.isdigit():
            raise VersionError(f"{name!r} is not a version (use v1, 2, current or previous); have: {have}")
        found = [v for v in versions if v.number == int(digits)]
    if not found:
        raise VersionError(f"{ws.root}: no version {name!r}; have: {have}")
    return found[0]


def register_views(con: duckdb.DuckDBPyConnection, ws: Workspace) -> list[int]:
    """SQL views of every version: `shards_v<N>`, `decisions_v<N>` (when its snapshot exists) and
    `versions` (one row per version). Versions whose shards are gone are skipped. Returns the numbers."""
    rows, done = [], []
    for v in list_versions(ws):
        files = v.shard_files
        if not files or not all(f.is_file() for f in files):
            continue
        con.register(f"_shards_v{v.number}", pads.dataset([str(f) for f in files], format="arrow"))
        con.execute(f"CREATE VIEW shards_v{v.number} AS SELECT * FROM _shards_v{v.number}")
        if v.decisions_file is not None:
            scan = relations.parquet_scan([v.decisions_file])
            con.execute(f"CREATE VIEW decisions_v{v.number} AS SELECT * FROM {scan}")
        rows.append(v.row() | {"version": v.number})
        done.append(v.number)
    schema = pa.schema(
        [
            ("version", pa.int64()),
            ("current", pa.bool_()),
            ("created", pa.string()),
            ("config_hash", pa.string()),
            ("code_version", pa.string()),
            ("records", pa.int64()),
            ("kept", pa.int64()),
            ("dropped", pa.int64()),
            ("label", pa.int64()),
            ("quarantined", pa.int64()),
            ("shards", pa.int64()),
            ("bytes", pa.int64()),
        ]
    )
    con.register("_versions_table", pa.Table.from_pylist(rows, schema=schema))
    con.execute("CREATE VIEW versions AS SELECT * FROM _versions_table")
    return done


def _decisions_sql(v: Version, shards_view: str) -> str:
    """A relation of (id, source, decision, reason) at version v: its snapshot, or its shard ids as `keep`
    when the version predates snapshots."""
    if v.decisions_file is not None:
        return (
            f"(SELECT {C.ID}, {C.SOURCE}, {C.DECISION}, {C.REASON} "
            f"FROM {relations.parquet_scan([v.decisions_file])})"
        )
    return (
        f"(SELECT {C.ID}, {C.SOURCE}, '{C.KEEP}' AS {C.DECISION}, NULL::VARCHAR AS {C.REASON} "
        f"FROM {shards_view})"
    )


def diff(ws: Workspace, a: str | int, b: str | int, show: int = 0) -> dict[str, Any]:
    """What changed from version a to version b, per record id.

    `added` / `removed`: records in b but not a / in a but not b (by id, any decision); `changed_decision`:
    records in both whose decision (keep/drop/label) differs; `changed_reason`: same decision, other reason;
    `changed_label`: a human label (`label:<value>` reason) appeared, went or changed; `entered_shards` /
    `left_shards`: kept in b but not a / kept in a but not b; `changed_content`: kept in both with another
    content hash. `transitions` counts each (decision, reason) -> (decision, reason) change; with show > 0,
    `examples` gives up to `show` records per category.
    """
    va, vb = get_version(ws, a), get_version(ws, b)
    con = relations.connect()
    for name, v in (("sa", va), ("sb", vb)):
        con.register(f"_{name}", pads.dataset([str(f) for f in v.shard_files], format="arrow"))
        con.execute(
            f"CREATE TEMP VIEW {name} AS SELECT {C.ID}, {C.SOURCE}, {C.CONTENT_HASH}, {C.TEXT}, {C.DATA} "
            f"FROM _{name}"
        )
    con.execute(f"CREATE TEMP VIEW da AS SELECT * FROM {_decisions_sql(va, 'sa')}")
    con.execute(f"CREATE TEMP VIEW db AS SELECT * FROM {_decisions_sql(vb, 'sb')}")
    con.execute(
        f"""CREATE TEMP TABLE j AS
        SELECT coalesce(db.{C.ID}, da.{C.ID}) AS {C.ID}, coalesce(db.{C.SOURCE}, da.{C.SOURCE}) AS {C.SOURCE},
               da.{C.DECISION} AS decision_a, da.{C.REASON} AS reason_a,
               db.{C.DECISION} AS decision_b, db.{C.REASON} AS reason_b,
               da.{C.ID} IS NOT NULL AS in_a, db.{C.ID} IS NOT NULL AS in_b
        FROM da FULL OUTER JOIN db ON da.{C.ID} = db.{C.ID}"""
    )
    label_a = f"CASE WHEN starts_with(reason_a, '{C.LABEL}:') THEN reason_a END"
    label_b = f"CASE WHEN starts_with(reason_b, '{C.LABEL}:') THEN reason_b END"
    keep = f"'{C.KEEP}'"
    categories = {
        "added": "in_b AND NOT in_a",
        "removed": "in_a AND NOT in_b",
        "changed_decision": "in_a AND in_b AND decision_a IS DISTINCT FROM decision_b",
        "changed_reason": "in_a AND in_b AND decision_a = decision_b AND reason_a IS DISTINCT FROM reason_b",
        "changed_label": f"in_a AND in_b AND ({label_a}) IS DISTINCT FROM ({label_b})",
        "entered_shards": f"decision_b = {keep} AND decision_a IS DISTINCT FROM {keep}",
        "left_shards": f"decision_a = {keep} AND decision_b IS DISTINCT FROM {keep}",
    }
    counts = {
        k: con.execute(f"SELECT count(*) FROM j WHERE {w}").fetchall()[0][0] for k, w in categories.items()
    }
    changed_content = f"""SELECT sa.{C.ID} FROM sa JOIN sb USING ({C.ID})
        WHERE sa.{C.CONTENT_HASH} IS DISTINCT FROM sb.{C.CONTENT_HASH}"""
    counts["changed_content"] = con.execute(f"SELECT count(*) FROM ({changed_content})").fetchall()[0][0]
    trans = con.execute(
        """SELECT decision_a, reason_a, decision_b, reason_b, count(*) AS n FROM j
            WHERE in_a AND in_b
              AND (decision_a IS DISTINCT FROM decision_b OR reason_a IS DISTINCT FROM reason_b)
            GROUP BY ALL ORDER BY n DESC, decision_a, reason_a, decision_b, reason_b"""
    ).fetchall()
    by_reason = {
        side: dict(
            con.execute(
                f"SELECT coalesce(reason_{s}, '(kept)'), count(*) FROM j WHERE {w} "
                "GROUP BY 1 ORDER BY 2 DESC, 1"
            ).fetchall()
        )
        for side, s, w in (("added", "b", categories["added"]), ("removed", "a", categories["removed"]))
    }
    out: dict[str, Any] = {
        "a": f"v{va.number}",
        "b": f"v{vb.number}",
        "config_hash": {"a": va.manifest.get("config_hash"), "b": vb.manifest.get("config_hash")},
        "records": {
            "a": con.execute("SELECT count(*) FROM da").fetchall()[0][0],
            "b": con.execute("SELECT count(*) FROM db").fetchall()[0][0],
        },
        "kept": {
            "a": va.manifest.get("counts", {}).get("kept"),
            "b": vb.manifest.get("counts", {}).get("kept"),
        },
        "counts": counts,
        "transitions": [
            {"from": _label(d1, r1), "to": _label(d2, r2), "n": n} for d1, r1, d2, r2, n in trans
        ],
        "added_by_reason": by_reason["added"],
        "removed_by_reason": by_reason["removed"],
        "snapshots": {"a": va.decisions_file is not None, "b": vb.decisions_file is not None},
    }
    if show > 0:  # text from the shards, else from the ingested record (dropped records are in no shard)
        ingested = relations.parquet_scan(ws.stage_files(INGEST))
        con.execute(f"CREATE TEMP VIEW ing AS SELECT {C.ID}, {C.TEXT}, {C.DATA} FROM {ingested}")
        texts = f"sb.{C.TEXT}, sa.{C.TEXT}, sb.{C.DATA}, sa.{C.DATA}, ing.{C.TEXT}, ing.{C.DATA}"
        excerpt = f"regexp_replace(left(coalesce({texts}), 120), '\\s+', ' ', 'g')"
        out["examples"] = {}
        for k, w in categories.items():
            rows = con.execute(
                f"""SELECT j.{C.ID}, j.{C.SOURCE}, decision_a, reason_a, decision_b, reason_b, {excerpt}
                    FROM j LEFT JOIN sa ON sa.{C.ID} = j.{C.ID} LEFT JOIN sb ON sb.{C.ID} = j.{C.ID}
                    LEFT JOIN ing ON ing.{C.ID} = j.{C.ID}
                    WHERE {w} ORDER BY j.{C.ID} LIMIT {int(show)}"""
            ).fetchall()
            out["examples"][k] = [
                {
                    "id": r[0],
                    "source": r[1],
                    "from": _label(r[2], r[3]),
                    "to": _label(r[4], r[5]),
                    "excerpt": r[6],
                }
                for r in rows
            ]
    con.close()
    return out


def _label(decision: str | None, reason: str | None) -> str:
    """`drop:near_dup`, `keep`, or `absent` for a record not in that version."""
    if decision is None:
        return "absent"
    return f"{decision}:{reason}" if reason else decision


@dataclass
class GcResult:
    """What `gc` removed (version numbers, bytes freed) and kept."""

    removed: list[int]
    kept: list[int]
    freed_bytes: int


def gc(ws: Workspace, keep: int = 2, dry_run: bool = False) -> GcResult:
    """Delete all but the newest `keep` versions; the current version is always kept.

    Call only while holding the workspace lock (`curate gc` does). Each folder is first renamed into
    `<ws>/.staging` (one atomic step, so no reader sees a half-deleted version), then deleted.
    """
    if keep < 0:
        raise VersionError(f"--keep must be 0 or more, not {keep}")
    cur = current_version(ws)
    numbers = ws.versions()
    newest = set(numbers[-keep:]) if keep else set()
    keep_set = newest | ({cur} if cur is not None else set())
    removed, freed = [], 0
    for n in numbers:
        if n in keep_set:
            continue
        path = ws.version_dir(n)
        freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        removed.append(n)
        if dry_run:
            continue
        ws.staging_dir.mkdir(parents=True, exist_ok=True)
        trash = ws.staging_dir / f"gc-v{n}-{uuid.uuid4().hex[:8]}"
        path.rename(trash)
        shutil.rmtree(trash)
    if cur is not None and not ws.version_dir(cur).is_dir():  # never reached: the current is in keep_set
        raise VersionError(f"gc removed the current version v{cur}")
    return GcResult(removed, sorted(keep_set & set(numbers)), freed)

"""Export a published version for training: a Hugging Face `datasets` folder, Parquet or JSON lines, each
with a dataset card (README.md): sources and their licences, counts by reason, config hash, how to load
and how to cite.

Licences come from the sources: for each input, the first `License:` / `Licence:` line of a PROVENANCE.md,
README.md or LICENSE file in its folder or the two above it (or the LICENSE file's first line); `--license`
sets the card's overall licence (default `other`, with the per-source terms listed).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.loaders import read_table, shard_paths
from pipeline.workspace import Workspace, read_json
from schemas import columns as C

FORMATS = ("hf", "parquet", "jsonl")
LICENCE_FILES = ("PROVENANCE.md", "README.md", "LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING")
_LICENCE_LINE = re.compile(r"^\s*[*_-]*\s*licen[cs]e\s*[*_]*\s*:\s*(.+)$", re.IGNORECASE)


class ExportError(ValueError):
    """An export was refused (unknown format, a non-empty output folder, nothing published)."""


def source_licence(input_path: str | Path) -> tuple[str | None, str | None]:
    """(licence text, the file it came from) found beside an input, or (None, None)."""
    p = Path(input_path)
    folder = p if p.is_dir() else p.parent
    for d in [folder, *list(folder.parents)[:2]]:
        for name in LICENCE_FILES:
            f = d / name
            if not f.is_file():
                continue
            try:
                lines = f.read_text(encoding="utf-8", errors="replace").splitlines()[:200]
            except OSError:
                continue
            for line in lines:
                m = _LICENCE_LINE.match(line)
                if m:
                    return m.group(1).strip(), str(f)
            if name.upper().startswith(("LICEN", "COPYING")):
                first = next((x.strip() for x in lines if x.strip()), None)
                if first:
                    return first, str(f)
    return None, None


def _version_manifest(ws: Workspace, version: str | int | None) -> dict:
    if version is None:
        if not ws.manifest_path.exists():
            raise ExportError(f"{ws.root}: nothing published (run `curate publish -w {ws.root}` first)")
        return read_json(ws.manifest_path)
    from pipeline.versions import get_version

    return get_version(ws, version).manifest


def card(ws: Workspace, manifest: dict, fmt: str, licence: str | None = None, name: str | None = None) -> str:
    """The dataset card (README.md with Hugging Face YAML metadata) of an exported version."""
    c = manifest.get("counts", {})
    version = manifest.get("version")
    name = name or ws.root.name
    sources = []
    for s in manifest.get("sources", []):
        lic, where = source_licence(s["input"])
        sources.append(s | {"licence": lic, "licence_file": where})
    bd = manifest.get("breakdown", {}).get("by_source", {})
    per_source = {k: v.get("kept") for k, v in bd.items()}
    n = manifest.get("rows", 0)
    size = "n<1K" if n < 1_000 else "1K<n<10K" if n < 10_000 else "10K<n<100K" if n < 100_000 else "100K<n<1M"
    yaml = [
        "---",
        f"license: {licence or 'other'}",
        f"pretty_name: {json.dumps(name)}",
        "size_categories:",
        f"- {size}",
        "tags:",
        "- curate",
        "---",
    ]
    lines = [
        *yaml,
        "",
        f"# {name}",
        "",
        f"Curated with curate from {len(sources)} input(s): version "
        f"`v{version}` of workspace `{ws.root}`, {n:,} records kept of {c.get('records', 0):,} admitted "
        f"({c.get('quarantined', 0):,} input rows quarantined as unreadable).",
        "",
        "| | |",
        "| --- | --- |",
        f"| version | v{version} |",
        f"| config hash | `{manifest.get('config_hash')}` |",
        f"| code version | `{manifest.get('code_version')}` |",
        f"| fingerprint | `{manifest.get('fingerprint')}` |",
        f"| split | `{manifest.get('split', 'train')}` |",
        f"| format | {fmt} |",
        "",
        "## Sources",
        "",
        "| source | input | format | modality | records | quarantined | kept | licence |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in sources:
        lic = s["licence"] or "not stated (check the source's terms before redistributing)"
        lines.append(
            f"| {s['source']} | `{s['input']}` | {s['format']} | {s['modality']} | {s['records']} | "
            f"{s['quarantined']} | {per_source.get(s['source'], '')} | {lic} |"
        )
    lines += ["", "## Counts", "", "| outcome | reason | records |", "| --- | --- | --- |"]
    lines.append(f"| kept | | {c.get('kept', 0)} |")
    for reason, k in sorted(c.get("by_reason", {}).items(), key=lambda kv: -kv[1]):
        lines.append(f"| dropped | {reason} | {k} |")
    for reason, k in sorted(c.get("quarantine_by_reason", {}).items(), key=lambda kv: -kv[1]):
        lines.append(f"| quarantined | {reason} | {k} |")
    if c.get("label"):
        lines.append(f"| awaiting a label | | {c['label']} |")
    lines += ["", "## Columns", "", "| column | type |", "| --- | --- |"]
    lines += [f"| {f['name']} | `{f['type']}` |" for f in manifest.get("schema", [])]
    load = {
        "hf": 'from datasets import load_from_disk\nds = load_from_disk("THIS_FOLDER")',
        "parquet": "from datasets import load_dataset\n"
        'ds = load_dataset("parquet", data_files="THIS_FOLDER/*.parquet", split="train")',
        "jsonl": "from datasets import load_dataset\n"
        'ds = load_dataset("json", data_files="THIS_FOLDER/*.jsonl", split="train")',
    }[fmt]
    cite_key = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_") or "dataset"
    lines += [
        "",
        "## How to load",
        "",
        "```python",
        load,
        "```",
        "",
        "## How to cite",
        "",
        "Cite this version by its config hash and fingerprint, and cite each source as its licence asks:",
        "",
        "```bibtex",
        f"@misc{{{cite_key}_v{version},",
        f"  title = {{{name}, version v{version}}},",
        f"  note = {{curated with curate {manifest.get('code_version')}; "
        f"config {manifest.get('config_hash')}, "
        f"fingerprint {manifest.get('fingerprint')}}},",
        "}",
        "```",
        "",
    ]
    return "\n".join(lines)


def export(
    workspace: str | Path,
    out: str | Path,
    fmt: str = "hf",
    version: str | int | None = None,
    licence: str | None = None,
    name: str | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Write a published version (default: the current) to `out` as `fmt` with its dataset card.

    hf: `datasets.Dataset.save_to_disk` (loads with `datasets.load_from_disk`; the image column is a
    `datasets.Image` feature); parquet: one file per shard;
    jsonl: one JSON object per line, one file per shard, binary columns as base64. Refuses a non-empty `out`
    unless `force`. Returns {"out", "format", "rows", "files"}."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    ws = Workspace(workspace)
    manifest = _version_manifest(ws, version)
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        if not force:
            raise ExportError(f"{out}: not empty (choose another --out, or --force to replace it)")
        shutil.rmtree(out)
    tmp = out.with_name(f".{out.name}.tmp-export")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    paths = shard_paths(ws.root, version)
    split = manifest.get("split", "train")
    rows = 0
    if fmt == "hf":
        import datasets

        table = read_table(ws.root, version)
        rows = table.num_rows
        ds = datasets.Dataset(_with_image_feature(table), split=datasets.Split(split))
        if C.IMAGE in table.column_names:  # decoded to PIL images on access (ds[i]["image"])
            ds = ds.cast_column(C.IMAGE, datasets.Image())
        ds.save_to_disk(str(tmp))
    else:
        for i, p in enumerate(paths):
            t = pa.ipc.open_file(pa.memory_map(p)).read_all()
            rows += t.num_rows
            dest = tmp / f"{split}-{i:05d}.{fmt}"
            if fmt == "parquet":
                pq.write_table(t, dest, compression="zstd")
            else:
                _write_jsonl(t, dest)
    (tmp / "README.md").write_text(card(ws, manifest, fmt, licence, name), encoding="utf-8")
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    files = sorted(str(f.relative_to(out)) for f in out.rglob("*") if f.is_file())
    return {"out": str(out), "format": fmt, "rows": rows, "files": files, "version": manifest.get("version")}


def _with_image_feature(table: pa.Table) -> pa.Table:
    """The image bytes as the {bytes, path} struct of a `datasets.Image` column (null where no image)."""
    if C.IMAGE not in table.column_names:
        return table
    img = table.column(C.IMAGE).combine_chunks()
    path = table.column(C.IMAGE_PATH).combine_chunks() if C.IMAGE_PATH in table.column_names else None
    if path is None:
        path = pa.nulls(len(img), pa.string())
    struct = pa.StructArray.from_arrays(
        [img.cast(pa.binary()), path.cast(pa.string())], ["bytes", "path"], mask=img.is_null()
    )
    return table.set_column(table.schema.get_field_index(C.IMAGE), C.IMAGE, struct)


def _write_jsonl(table: pa.Table, dest: Path) -> None:
    """JSON lines of a table; binary columns (image bytes) base64-encoded."""
    import duckdb

    con = duckdb.connect()
    con.register("t", table)
    binary = [f.name for f in table.schema if pa.types.is_binary(f.type) or pa.types.is_large_binary(f.type)]
    replace = ", ".join(f'to_base64("{b}") AS "{b}"' for b in binary)
    sel = f"SELECT * REPLACE ({replace}) FROM t" if binary else "SELECT * FROM t"
    con.execute(f"COPY ({sel} ORDER BY {C.ID}) TO '{str(dest).replace(chr(39), chr(39) * 2)}' (FORMAT json)")
    con.close()

"""The researcher's commands: `curate report`, `versions`, `diff`, `gc`, `export`.

Mounted by flows/cli.py (EXTENSIONS). All of them read the workspace through the SQL catalog or the
version folders; only `gc` writes the workspace, under its lock.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from flows.cli import WorkspaceOpt, app, console, fail, locked, out, resolve


def _root(workspace: Path | None) -> Path:
    """The workspace a command reads: --workspace, else the one ./curate.toml names, else ./workspace."""
    _, root = resolve(None, workspace)
    if not root.exists():
        fail(f"{root}: no such workspace (run `curate run` or `curate ingest` first)")
    return root


@app.command()
def report(
    workspace: WorkspaceOpt = None,
    out_file: Annotated[
        Path, typer.Option("--out", "-o", help="HTML file to write (one self-contained page).")
    ] = Path("report.html"),
    examples: Annotated[int, typer.Option(help="Example records shown per decision reason.")] = 3,
) -> None:
    """Write the curation report: funnel, drop reasons by source, score histograms, cluster sizes, language
    mix, label agreement, examples of each decision. One HTML file, plots inline, no network needed."""
    import duckdb

    from pipeline import report as rep
    from pipeline.catalog import CatalogError

    root = _root(workspace)
    try:
        path = rep.write(root, out_file, examples)
    except (CatalogError, duckdb.Error) as exc:
        fail(str(exc).splitlines()[0])
    console.print(
        f"report written to [bold]{path}[/] ({path.stat().st_size / 1e3:.0f} kB); open it in a browser"
    )


@app.command()
def versions(
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per version.")] = False,
) -> None:
    """List the published versions: time, config hash, counts (the current one marked)."""
    from rich.table import Table

    from pipeline.versions import list_versions
    from pipeline.workspace import Workspace

    vs = list_versions(Workspace(_root(workspace)))
    if as_json:
        for v in vs:
            out.print_json(json.dumps(v.row()))
        return
    if not vs:
        console.print("no published versions yet (run `curate publish` or `curate run`)")
        return
    rows = [v.row() for v in vs]
    counts = (
        ["records", "kept", "dropped"]
        + (["label"] if any(r["label"] for r in rows) else [])
        + ["quarantined"]
    )
    t = Table(title="versions (* = current; --json for everything)", box=None)
    for col in ("version", "created (UTC)", "config hash"):
        t.add_column(col, no_wrap=True)
    for col in counts:
        t.add_column(col[:5] + "." if len(col) > 8 else col, justify="right", no_wrap=True)
    for r in rows:
        t.add_row(r["version"] + ("*" if r["current"] else ""), r["created"][:16].replace("T", " "),
                  str(r["config_hash"]), *(str(r[k]) for k in counts))  # fmt: skip
    out.print(t)


@app.command()
def diff(
    a: Annotated[str, typer.Argument(help="Older version: v1, 1, previous ...")],
    b: Annotated[str, typer.Argument(help="Newer version (default: current).")] = "current",
    workspace: WorkspaceOpt = None,
    show: Annotated[int, typer.Option(help="Example records shown per kind of change.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the whole diff as JSON.")] = False,
) -> None:
    """What changed between two versions: records added, removed, that changed decision, reason or human
    label, that entered or left the shards; the transitions (old -> new decision:reason) with counts."""
    from rich.table import Table

    from pipeline.versions import VersionError
    from pipeline.versions import diff as do_diff
    from pipeline.workspace import Workspace

    try:
        d = do_diff(Workspace(_root(workspace)), a, b, show)
    except VersionError as exc:
        fail(str(exc))
    if as_json:
        out.print_json(json.dumps(d, default=str))
        return
    out.print(
        f"[bold]{d['a']} -> {d['b']}[/]: records {d['records']['a']} -> {d['records']['b']}, kept "
        f"{d['kept']['a']} -> {d['kept']['b']}; config {d['config_hash']['a']} -> {d['config_hash']['b']}"
    )
    if not all(d["snapshots"].values()):
        console.print(
            "[yellow]note:[/] a version published before decision snapshots: only its shards compared"
        )
    t = Table(show_header=True)
    t.add_column("change")
    t.add_column("records", justify="right")
    for k, n in d["counts"].items():
        t.add_row(k.replace("_", " "), str(n))
    out.print(t)
    for side in ("added", "removed"):
        by = d[f"{side}_by_reason"]
        if by:
            out.print(f"{side} by reason: " + ", ".join(f"{r} {n}" for r, n in by.items()), soft_wrap=True)
    if d["transitions"]:
        t = Table(title="why (old -> new)")
        for col in ("from", "to", "records"):
            t.add_column(col, justify="right" if col == "records" else "left")
        for tr in d["transitions"][:30]:
            t.add_row(tr["from"], tr["to"], str(tr["n"]))
        out.print(t)
        if len(d["transitions"]) > 30:
            console.print(f"({len(d['transitions'])} transitions, 30 shown; --json for all)")
    for kind, rows in d.get("examples", {}).items():
        if rows:
            t = Table(title=f"{kind.replace('_', ' ')} (examples)")
            for col in ("id", "source", "from", "to", "excerpt"):
                t.add_column(col, overflow="fold", max_width=60)
            for r in rows:
                t.add_row(r["id"], r["source"], r["from"], r["to"], r["excerpt"] or "")
            out.print(t)


@app.command()
@locked("curate gc")
def gc(
    workspace: WorkspaceOpt = None,
    keep: Annotated[int, typer.Option(help="Newest versions to keep (the current one is always kept).")] = 2,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be deleted; delete nothing.")
    ] = False,
) -> None:
    """Delete old published versions (their folders under versions/); never the current one."""
    from pipeline.versions import VersionError
    from pipeline.versions import gc as do_gc
    from pipeline.workspace import Workspace

    try:
        r = do_gc(Workspace(_root(workspace)), keep, dry_run)
    except VersionError as exc:
        fail(str(exc))
    verb = "would delete" if dry_run else "deleted"
    names = ", ".join(f"v{n}" for n in r.removed) or "nothing"
    console.print(
        f"{verb} {names} ({r.freed_bytes / 1e6:.1f} MB); kept " + ", ".join(f"v{n}" for n in r.kept)
    )


@app.command()
def export(
    workspace: WorkspaceOpt = None,
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write (must be empty or absent).")
    ] = Path("export"),
    format: Annotated[
        str, typer.Option("--format", "-f", help="hf (datasets.load_from_disk), parquet or jsonl.")
    ] = "hf",
    version: Annotated[str | None, typer.Option(help="Version to export (default: the current).")] = None,
    license: Annotated[
        str | None, typer.Option("--license", help="Licence id for the card's metadata (default: other).")
    ] = None,
    name: Annotated[
        str | None, typer.Option(help="Dataset name on the card (default: the workspace's).")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty --out folder.")] = False,
) -> None:
    """Export a published version with a dataset card (README.md: sources, licences, counts by reason,
    config hash, how to load and cite): a Hugging Face datasets folder, Parquet or JSON lines."""
    from pipeline.export import ExportError
    from pipeline.export import export as do_export
    from pipeline.versions import VersionError

    try:
        r = do_export(_root(workspace), out_dir, format, version, license, name, force)
    except (ExportError, VersionError, FileNotFoundError) as exc:
        fail(str(exc))
    console.print(
        f"exported v{r['version']}: {r['rows']} rows as {r['format']} to [bold]{r['out']}[/] "
        f"({len(r['files'])} files, card: {Path(r['out']) / 'README.md'})"
    )

"""The `curate` command line. Imports lazily: `curate sql` never imports torch or Prefect."""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from schemas.config import CurateConfig

app = typer.Typer(
    name="curate",
    help="Curate multimodal training data: ingest, deduplicate, score, label and publish Arrow shards "
    "with a DuckDB catalog. Every dropped record keeps its reason, queryable with `curate sql`.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console(stderr=True)
out = Console()

WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace", "-w", help="Workspace folder (default: `workspace` from the config, or ./workspace)."
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="curate.toml to use (default: ./curate.toml if present, else the "
        "config saved in the workspace by the last `curate run`, else built-in defaults).",
    ),
]


WaitOpt = Annotated[
    float | None,
    typer.Option(
        "--wait",
        help="Seconds to wait while another command holds the workspace (default: $CURATE_LOCK_WAIT, "
        "else 0: refuse at once, saying which pid holds it since when).",
    ),
]


def fail(message: str) -> None:
    """Print a one-line cause and exit non-zero."""
    console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


@contextmanager
def writing(root: Path, command: str, wait: float | None = None) -> Iterator[None]:
    """Hold the workspace lock for a command that writes; its refusals and disk errors become one line."""
    from pipeline.lock import default_wait, workspace_lock
    from pipeline.workspace import WorkspaceError, is_environment_error

    def waiting(who: str) -> None:
        console.print(f"[dim]{who}; waiting up to {wait if wait is not None else default_wait():g} s...[/]")

    try:
        with workspace_lock(root, command, wait, on_wait=waiting):
            yield
    except WorkspaceError as exc:
        fail(str(exc))
    except OSError as exc:
        if not is_environment_error(exc):
            raise
        fail(_disk_error(exc))


def locked(command: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Run a command that writes the workspace under its lock; adds the --wait option to the command.

    The workspace is the one the command's --workspace/--config resolve to (as `resolve` does).
    """

    def wrap(fn: Callable[..., None]) -> Callable[..., None]:
        sig = inspect.signature(fn, eval_str=True)
        wait_param = inspect.Parameter(
            "wait", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=WaitOpt
        )

        @functools.wraps(fn)
        def run_locked(*args: object, wait: float | None = None, **kwargs: object) -> None:
            bound = sig.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            config, workspace = bound.arguments.get("config"), bound.arguments.get("workspace")
            root = Path(workspace).resolve() if workspace else resolve(config, None)[1]  # type: ignore[arg-type]
            with writing(root, command, wait):
                fn(*args, **kwargs)

        run_locked.__signature__ = sig.replace(parameters=[*sig.parameters.values(), wait_param])  # type: ignore[attr-defined]
        return run_locked

    return wrap


def _disk_error(exc: OSError) -> str:
    from pipeline.workspace import WorkspaceWriteError

    if isinstance(exc, WorkspaceWriteError):
        return str(exc)
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{(exc.strerror or str(exc)).splitlines()[0]} (errno {exc.errno})"


def resolve(config: Path | None, workspace: Path | None) -> tuple[CurateConfig, Path]:
    """The config and workspace a command works on (explicit flags win)."""
    from schemas.config import ConfigError, CurateConfig, load_config, parse_config

    try:
        if config is not None:
            cfg = load_config(config)
        elif Path("curate.toml").exists():
            cfg = load_config("curate.toml")
        elif workspace is not None and (workspace / "config.json").exists():
            import json

            cfg = parse_config(
                json.loads((workspace / "config.json").read_text()), str(workspace / "config.json")
            )
        else:
            cfg = CurateConfig()
    except ConfigError as exc:
        fail(str(exc))
    ws = (workspace or Path(cfg.workspace)).resolve()
    cfg.workspace = str(ws)
    return cfg, ws


@app.command()
def sample(
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder to write the sample and its curate.toml into.")
    ],
    seed: Annotated[int, typer.Option(help="Random seed; the same seed writes the same bytes.")] = 7,
) -> None:
    """Write a small, deterministic, deliberately messy multimodal sample (texts, images, records)."""
    from pipeline.sample import write_sample

    counts = write_sample(out_dir, seed)
    console.print(
        f"wrote sample to [bold]{out_dir}[/]: {counts['text_rows']} text rows, {counts['images']} "
        f"images, {counts['records']} record rows (some deliberately broken), and curate.toml"
    )


@app.command()
@locked("curate ingest")
def ingest(
    paths: Annotated[list[str], typer.Argument(help="Files, globs or image folders to ingest.")],
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    format: Annotated[
        str | None,
        typer.Option(help="jsonl, csv, tsv, parquet, images or webdataset (default: from the file name)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Source name (default: the file's stem).")] = None,
    modality: Annotated[str | None, typer.Option(help="text, image or record (default: by format).")] = None,
    text_field: Annotated[str, typer.Option(help="Field holding the text (or an image's caption).")] = "text",
    id_field: Annotated[
        str, typer.Option(help="Field holding a stable id (rows without it use path:row).")
    ] = "id",
    captions: Annotated[
        Path | None,
        typer.Option(help="Images: captions file (CSV/JSONL with file,caption) or COCO captions JSON."),
    ] = None,
) -> None:
    """Read inputs into the workspace; bad rows go to the `quarantine` table with file, line and reason."""
    from pydantic import ValidationError

    from pipeline.ingest import IngestError, expand_source, ingest_input
    from pipeline.workspace import Workspace
    from schemas.config import SourceConfig

    cfg, root = resolve(config, workspace)
    ws = Workspace(root)
    try:
        inputs = [
            i
            for p in paths
            for i in expand_source(
                SourceConfig(
                    path=str(Path(p).resolve()) if not any(c in p for c in "*?[") else p,
                    name=name,
                    format=format,
                    modality=modality,
                    text_field=text_field,
                    id_field=id_field,
                    captions=str(captions) if captions else None,
                )
            )
        ]
    except (IngestError, ValidationError) as exc:
        fail(str(exc).splitlines()[0] if isinstance(exc, IngestError) else str(exc))
    from dataclasses import asdict

    from pipeline.ingest import count_lines

    done = []
    for inp in _progress(inputs, "ingesting"):
        r = ingest_input(inp, cfg.ingest, ws)
        done.append(asdict(r) | {"note": "skipped (unchanged)" if r.skipped else f"{len(r.parts)} part(s)"})
    for line in count_lines(done):  # per file: read = ingested + quarantined
        console.print(line, highlight=False, soft_wrap=True)
    total_r, total_q = sum(r["records"] for r in done), sum(r["quarantined"] for r in done)
    console.print(f"[bold]{total_r}[/] records, [bold]{total_q}[/] quarantined in {ws.root}")


def _progress(items: list, label: str):  # type: ignore[no-untyped-def]
    from rich.progress import track

    return track(items, description=label, console=console, transient=True) if len(items) > 1 else items


def _run_map(names: list[str], cfg: CurateConfig, root: Path) -> int:
    from pipeline.steps import admit, run_map
    from pipeline.workspace import Workspace

    ws = Workspace(root)
    if not ws.parts():
        fail(f"{root}: nothing ingested yet (run `curate ingest PATH --workspace {root}` first)")
    admit(ws)
    return run_map(ws, cfg, names, _progress)


@app.command()
@locked("curate exact")
def exact(workspace: WorkspaceOpt = None, config: ConfigOpt = None) -> None:
    """Exact dedup: content_hash per record, duplicate groups across the workspace, decisions updated."""
    import pyarrow.compute as pc

    from pipeline.steps import settle
    from pipeline.workspace import Workspace

    cfg, root = resolve(config, workspace)
    done = _run_map(["exact"], cfg, root)
    table = settle(Workspace(root), cfg)
    dups = pc.sum(pc.equal(table.column("reason"), "exact_dup")).as_py() or 0
    console.print(f"hashed {done} part(s); {dups} exact duplicates marked (decisions updated)")


@app.command()
@locked("curate rules")
def rules(workspace: WorkspaceOpt = None, config: ConfigOpt = None) -> None:
    """Heuristic quality rules: one rule_<name> score column each, the first failure as the reason."""
    from pipeline.steps import settle
    from pipeline.workspace import Workspace

    cfg, root = resolve(config, workspace)
    done = _run_map(["rules"], cfg, root)
    settle(Workspace(root), cfg)
    console.print(f"scored {done} part(s) (decisions updated)")


@app.command()
@locked("curate near")
def near(workspace: WorkspaceOpt = None, config: ConfigOpt = None) -> None:
    """Near-duplicates in a workspace: MinHash-LSH (text, records) and pHash (images); decisions updated."""
    import pyarrow.compute as pc

    from pipeline.steps import settle
    from pipeline.workspace import Workspace

    cfg, root = resolve(config, workspace)
    cfg.stages.near = True
    _run_map(["exact", "near_text", "near_image", "near_record"], cfg, root)
    table = settle(Workspace(root), cfg)
    dups = pc.sum(pc.equal(table.column("reason"), "near_dup")).as_py() or 0
    groups = pc.count_distinct(table.column("near_cluster")).as_py()
    console.print(f"{dups} near-duplicates dropped in {groups} near clusters (decisions updated)")


@app.command()
@locked("curate publish")
def publish(workspace: WorkspaceOpt = None, config: ConfigOpt = None) -> None:
    """Apply the decisions: write kept records as Arrow shards and manifest.json."""
    from pipeline.publish import publish as do_publish
    from pipeline.steps import admit, settle
    from pipeline.workspace import Workspace

    cfg, root = resolve(config, workspace)
    ws = Workspace(root)
    if not ws.parts():
        fail(f"{root}: nothing ingested yet")
    admit(ws)
    settle(ws, cfg)
    _summary(do_publish(ws, cfg).manifest, root)


@app.command()
def sql(
    query: Annotated[
        str,
        typer.Argument(
            help="SQL over the views records, decisions, quarantine, shards, "
            "shard_files (and labels, annotators when present)."
        ),
    ],
    workspace: WorkspaceOpt = None,
    config: ConfigOpt = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table, csv or json (JSON lines).")] = "table",
    limit: Annotated[int, typer.Option(help="Rows shown in table format (csv/json print all).")] = 50,
) -> None:
    """Query the workspace and the published shards with DuckDB SQL."""
    import duckdb

    from pipeline.catalog import CatalogError, check_read_only, connect

    if format not in ("table", "csv", "json"):
        fail(f"--format must be table, csv or json, not {format!r}")
    _, root = resolve(config, workspace)
    try:
        check_read_only(query)  # before anything runs: COPY ... TO '<ws>/decisions.parquet' must not
        con = connect(root)
        rel = con.sql(query)
    except (CatalogError, duckdb.Error) as exc:
        fail(str(exc).splitlines()[0] if isinstance(exc, CatalogError) else str(exc))
    if rel is None:
        return
    table = rel.to_arrow_table()
    _print_table(table, format, limit)


def _print_table(table, format: str, limit: int) -> None:  # type: ignore[no-untyped-def]
    """Print a query result: csv (nested columns as JSON text, bytes as hex), JSON lines, or a table."""
    import json

    import pyarrow.csv as pacsv

    if format == "csv":
        pacsv.write_csv(_flat(table), sys.stdout.buffer)
        return
    rows = table.to_pylist()
    if format == "json":
        for r in rows:
            sys.stdout.write(json.dumps(r, default=_json_default, ensure_ascii=False) + "\n")
        return
    from rich.table import Table

    t = Table(show_lines=False)
    for name in table.column_names:
        t.add_column(name, overflow="fold", max_width=60)
    for r in rows[:limit]:
        t.add_row(*[_cell(v) for v in r.values()])
    out.print(t)
    if len(rows) > limit:
        console.print(f"({len(rows)} rows, {limit} shown; --limit or --format csv for all)")


def _json_default(v: object) -> object:
    """JSON for values json.dumps does not know: bytes as hex, dates/decimals/uuids as text, map pairs."""
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


def _flat(table):  # type: ignore[no-untyped-def]
    """The table with list, struct and map columns as JSON text and binary columns as hex (CSV-writable)."""
    import json

    import pyarrow as pa
    import pyarrow.compute as pc

    cols = []
    for field, col in zip(table.schema, table.columns, strict=True):
        t = field.type
        if pa.types.is_nested(t):
            vals = [None if v is None else json.dumps(v, default=_json_default, ensure_ascii=False)
                    for v in col.to_pylist()]  # fmt: skip
            col = pa.array(vals, pa.string())
        elif pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
            col = pa.array([None if v is None else v.hex() for v in col.to_pylist()], pa.string())
        elif pa.types.is_dictionary(t):
            col = pc.cast(col, t.value_type)
        cols.append(col)
    return pa.table(cols, names=table.column_names)


def _cell(v: object) -> str:
    """A table cell: ∅ for null, <N bytes> for binary, lists and structs as JSON, long text cut at 200."""
    import json

    if v is None:
        return "∅"
    if isinstance(v, bytes):
        return f"<{len(v)} bytes>"
    if isinstance(v, list | dict | tuple):
        s = json.dumps(v, default=lambda x: f"<{len(x)} bytes>" if isinstance(x, bytes) else str(x),
                       ensure_ascii=False)  # fmt: skip
    else:
        s = str(v)
    return s if len(s) <= 200 else s[:197] + "..."


def _summary(manifest: dict, root: Path) -> None:
    from rich.table import Table

    c = manifest["counts"]
    t = Table(title="curation summary")
    t.add_column("outcome")
    t.add_column("reason")
    t.add_column("records", justify="right")
    t.add_row("ingested", "", str(c["ingested"]))
    t.add_row("[green]kept[/]", "", str(c["kept"]))
    for reason, n in sorted(c["by_reason"].items(), key=lambda kv: -kv[1]):
        t.add_row("[yellow]dropped[/]", reason, str(n))
    for reason, n in sorted(c["quarantine_by_reason"].items(), key=lambda kv: -kv[1]):
        t.add_row("[red]quarantined[/]", reason, str(n))
    if c.get("label"):
        t.add_row("to label", "", str(c["label"]))
    out.print(t)
    from pipeline.ingest import count_lines, ingested_inputs
    from pipeline.workspace import Workspace

    for line in count_lines(ingested_inputs(Workspace(root))):  # per file: read = ingested + quarantined
        out.print(line, highlight=False, soft_wrap=True)
    from pipeline.breakdown import summary_lines

    for line in summary_lines(manifest):  # duplicate groups, semantic coverage, drops by source / label
        out.print(
            line, highlight=False, soft_wrap=True, style="yellow" if line.startswith("warning") else None
        )
    for line in _timing_lines(root):
        out.print(line, highlight=False, soft_wrap=True, style="dim")
    folder = root / "versions" / f"v{manifest['version']}" if "version" in manifest else root / "shards"
    out.print(
        f"shards: [bold]{folder}[/] ({len(manifest['shards'])} file(s), {manifest['rows']} rows); "
        f"manifest: {root / 'manifest.json'}",
        soft_wrap=True,
    )
    out.print(
        "try: [bold]curate sql --workspace "
        f'{_quote(root)} "SELECT reason, count(*) AS n FROM decisions GROUP BY reason ORDER BY n DESC"[/]',
        soft_wrap=True,
    )


def _timing_lines(root: Path) -> list[str]:
    """Where the last run's time went (from `<ws>/timings.json`), the stages by CPU seconds."""
    import json

    from pipeline.steps import TIMINGS

    try:
        t = json.loads((root / TIMINGS).read_text())
    except (OSError, ValueError):
        return []
    total = t.get("total_s", t.get("wall_s", 0.0))
    start = f", Prefect start-up {t['prefect_start_s']:.1f} s" if "prefect_start_s" in t else ""
    busiest = sorted(t.get("stages", {}).items(), key=lambda kv: -kv[1]["cpu_s"])[:5]
    cpu = ", ".join(f"{name} {v['cpu_s']:.1f}" for name, v in busiest if v["cpu_s"] >= 0.05)
    return [f"time: {total:.1f} s wall{start}; CPU s by stage: {cpu} ({root / TIMINGS})"]


def _quote(p: Path) -> str:
    s = str(p)
    return f"'{s}'" if " " in s else s


@app.command()
@locked("curate run")
def run(
    config: Annotated[
        Path, typer.Option("--config", "-c", help="curate.toml describing sources and stages.")
    ] = Path("curate.toml"),
    workspace: WorkspaceOpt = None,
) -> None:
    """Run the whole curation flow (Prefect, embedded API: no server needed)."""
    cfg, root = resolve(config, workspace)
    if not cfg.sources:
        fail(f"{config}: no [[sources]] to read")
    _summary(_flow(cfg), root)


def _flow(cfg: CurateConfig) -> dict:
    from pipeline.ingest import IngestError, expand_source

    try:  # name a bad input before Prefect starts, not inside its traceback
        for src in cfg.sources:
            expand_source(src)
    except IngestError as exc:
        fail(str(exc))
    console.print("[dim]starting the Prefect flow (embedded API; the first run sets up its database)...[/]")
    from flows.curate import run_curate

    try:
        with console.status("running the curate flow: ingest, dedup, score, decide, publish"):
            return run_curate(cfg)
    except IngestError as exc:
        fail(str(exc))
        raise


@app.command()
@locked("curate demo")
def demo(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Workspace for the demo run.")] = Path(
        "workspace"
    ),
    sample_dir: Annotated[
        Path | None,
        typer.Option(help="Where to write the sample (default: <workspace>/sample)."),
    ] = None,
) -> None:
    """`curate sample` + `curate run` on it: the whole pipeline on embedded data, no server needed."""
    from pipeline.sample import write_sample
    from schemas.config import load_config

    root = workspace.resolve()
    sdir = (sample_dir or root / "sample").resolve()
    write_sample(sdir)
    cfg = load_config(sdir / "curate.toml")
    cfg.workspace = str(root)
    console.print(f"sample written to {sdir}")
    _summary(_flow(cfg), root)


# Commands of the other rooms, mounted when their modules are present.
SUBAPPS = [
    ("quality.cli", "app", "quality", "Embedding quality classifiers: train and score."),
    ("quality.cli", "models_app", "models", "Models: distil the static embedding tier."),
    ("labeling.cli", "labelstudio_app", "labelstudio", "Run a local Label Studio server for annotators."),
    ("labeling.cli", "label_app", "label", "Human labelling: push queues, pull labels, simulate."),
]
COMMANDS = [("pipeline.dedup_cli", "dedup")]
# Modules that add commands to the app or to a sub-app (e.g. `@label_app.command("check")`) when imported.
EXTENSIONS: list[str] = ["flows.research_cli", "labeling.check_cli", "flows.eval_cli"]


def _mount() -> None:
    for module, attr, name, help_text in SUBAPPS:
        if importlib.util.find_spec(module) is not None:
            mod = importlib.import_module(module)
            if hasattr(mod, attr):
                app.add_typer(getattr(mod, attr), name=name, help=help_text)
    for module, attr in COMMANDS:
        if importlib.util.find_spec(module) is not None:
            mod = importlib.import_module(module)
            if hasattr(mod, attr):
                app.command(name=attr)(getattr(mod, attr))
    for module in EXTENSIONS:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)


def main() -> None:
    """Entry point of the console script."""
    _mount()
    app()


if __name__ == "__main__":
    main()

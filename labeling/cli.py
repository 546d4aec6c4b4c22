"""`curate labelstudio up|down|status` and `curate label push|pull|simulate`; heavy imports stay inside."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

labelstudio_app = typer.Typer(
    help="Run a local Label Studio server for annotators (127.0.0.1, data inside the workspace).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
label_app = typer.Typer(
    help="Human labelling: push uncertain records to Label Studio, pull labels back, run a round, "
    "list annotators, simulate the loop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="curate.toml whose \\[labeling] table to use (default: ./curate.toml if present).",
    ),
]


def _err(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def load_labeling_config(config: Path | None) -> Any:
    """The [labeling] section of curate.toml (explicit path, else ./curate.toml, else defaults)."""
    from schemas.config import ConfigError, load_config
    from schemas.labeling import LabelingConfig

    path = config if config is not None else (Path("curate.toml") if Path("curate.toml").exists() else None)
    if path is None:
        return LabelingConfig()
    try:
        return load_config(path).labeling
    except ConfigError as exc:
        _err(str(exc))


def load_run_config(config: Path | None, workspace: Path) -> Any:
    """The whole curate.toml (explicit path, else ./curate.toml, else the workspace's saved config, else
    defaults)."""
    from schemas.config import ConfigError, CurateConfig, load_config, parse_config

    path = config if config is not None else (Path("curate.toml") if Path("curate.toml").exists() else None)
    try:
        if path is not None:
            return load_config(path)
        saved = workspace / "config.json"
        if saved.exists():
            import json

            return parse_config(json.loads(saved.read_text(encoding="utf-8")), str(saved))
    except ConfigError as exc:
        _err(str(exc))
    return CurateConfig()


@labelstudio_app.command("up")
def up(
    workspace: WorkspaceOpt = Path("workspace"),
    port: Annotated[
        int | None, typer.Option(help="Port on 127.0.0.1 (default: config, else a free one).")
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Start the workspace's Label Studio server, wait until healthy, print the URL for annotators."""
    from labeling import server

    cfg = load_labeling_config(config)
    try:
        s = server.start(workspace, cfg, port)
    except server.ServerError as exc:
        _err(str(exc))
    typer.echo(f"Label Studio is up: {s.url}  (log in as {s.username}; password and token in "
               f"{server.state_path(workspace)})")  # fmt: skip


@labelstudio_app.command("down")
def down(workspace: WorkspaceOpt = Path("workspace")) -> None:
    """Stop the workspace's local Label Studio server."""
    from labeling import server

    typer.echo("stopped" if server.stop(workspace) else "not running")


@labelstudio_app.command("status")
def status(
    workspace: WorkspaceOpt = Path("workspace"),
    as_json: Annotated[
        bool, typer.Option("--json", help='Print {"url", "token", "running"} as JSON.')
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Say whether the workspace's (or the configured remote) Label Studio server answers."""
    from labeling import server

    cfg = load_labeling_config(config)
    try:
        st = server.status(workspace, cfg)
    except server.ServerError as exc:
        _err(str(exc))
    if as_json:
        typer.echo(json.dumps({"url": st["url"], "token": st["token"], "running": st["running"]}))
    elif st["url"] is None:
        typer.echo("no server: run `curate labelstudio up`")
    else:
        typer.echo(f"{st['url']}: {'running' if st['running'] else 'not answering'}")
    if not st["running"]:
        raise typer.Exit(1 if not as_json else 0)


@label_app.command("push")
def push_cmd(
    workspace: WorkspaceOpt = Path("workspace"),
    queue: Annotated[
        str | None,
        typer.Option(
            help="Push only this queue (default: all queues); `dedup-audit` sends sampled duplicate pairs "
            "(kept record vs a dropped copy, per dedup stage) for a same/different judgement."
        ),
    ] = None,
    budget: Annotated[
        int | None,
        typer.Option(help="Records (or pairs) sent to humans this round (default: config budget)."),
    ] = None,
    to_file: Annotated[
        bool, typer.Option("--to-file", help="Write Label Studio import files even if a server runs.")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Route uncertain records to their queues and import them into Label Studio (never twice), each with a
    suggestion; mix in gold tasks; ask one more annotator for tied tasks; say why when nothing is pushed."""
    from labeling import push, server
    from labeling.client import LabelStudioError
    from labeling.rounds import push_lines

    run_cfg = load_run_config(config, workspace)
    try:
        result = push.push(
            workspace,
            run_cfg.labeling,
            queue,
            budget,
            server=None if to_file else "auto",
            band=run_cfg.quality,
        )
    except (LabelStudioError, server.ServerError, FileNotFoundError, ValueError) as exc:
        _err(str(exc))
    for line in push_lines(result):
        typer.echo(line)
    if result.server is None:
        typer.echo("no Label Studio server: wrote import files (import them in the Label Studio UI, "
                   "or run `curate labelstudio up` and push again)")  # fmt: skip
    else:
        typer.echo(f"annotators: {result.server}")
    _refresh_decisions(workspace)


@label_app.command("pull")
def pull_cmd(workspace: WorkspaceOpt = Path("workspace"), config: ConfigOpt = None) -> None:
    """Read all annotations, compute consensus, agreement and gold accuracy (holding annotators who fail
    gold) into the labels tables; refresh the suggestions of tasks still awaiting labels."""
    from labeling import pull, push, server
    from labeling.client import LabelStudioError
    from labeling.rounds import held_lines, label_lines

    cfg = load_labeling_config(config)
    try:
        r = pull.pull(workspace, cfg)
    except (LabelStudioError, server.ServerError) as exc:
        _err(f"{exc} (nothing was written)")
    typer.echo(f"{r.annotations} annotations ({r.new} new) from {r.projects} projects -> {r.labels} labels")
    for name, path in r.paths.items():
        typer.echo(f"  {name}: {path}")
    for line in label_lines(workspace) + held_lines(workspace):
        typer.echo(line)
    try:
        n = push.refresh_predictions(workspace, cfg)
    except (LabelStudioError, server.ServerError) as exc:
        typer.echo(f"warning: suggestions not refreshed: {exc}", err=True)
    else:
        typer.echo(f"suggestions refreshed on {n} pending tasks")
    _refresh_decisions(workspace)


@label_app.command("round")
def round_cmd(
    workspace: WorkspaceOpt = Path("workspace"),
    budget: Annotated[
        int | None, typer.Option(help="Records sent to humans this round (default: config budget).")
    ] = None,
    queue: Annotated[str | None, typer.Option(help="Push only this queue (default: all).")] = None,
    config: ConfigOpt = None,
) -> None:
    """One labelling round: pull -> retrain -> re-score -> refresh suggestions -> push the next most useful
    tasks (uncertain + diverse, label-error reviews, ties re-routed), printing what each step did."""
    from labeling import server
    from labeling.client import LabelStudioError
    from labeling.rounds import run_round

    run_cfg = load_run_config(config, workspace)
    try:
        r = run_round(workspace, run_cfg.labeling, budget, band=run_cfg.quality, queue=queue)
    except (LabelStudioError, server.ServerError, FileNotFoundError, ValueError) as exc:
        _err(str(exc))
    for line in r.lines:
        typer.echo(line)
    _refresh_decisions(workspace)


@label_app.command("annotators")
def annotators_cmd(
    workspace: WorkspaceOpt = Path("workspace"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False,
) -> None:
    """Per annotator: answers, gold answers and accuracy, agreement with consensus, and whether they are
    held (their answers stop counting) and why. Reads the last `curate label pull`."""
    import polars as pl

    from labeling.pull import ANNOTATORS_TABLE
    from pipeline.workspace import Workspace
    from schemas import columns as C
    from schemas.labeling import HELD, HELD_REASON

    p = Workspace(workspace).global_path(ANNOTATORS_TABLE)
    if not p.exists():
        _err(f"{p} is missing: run `curate label pull --workspace {workspace}` first")
    t = pl.read_parquet(p)
    if HELD not in t.columns:
        t = t.with_columns(pl.lit(False).alias(HELD), pl.lit(None, pl.String).alias(HELD_REASON))
    if as_json:
        typer.echo(json.dumps(t.to_dicts(), default=str))
        return
    typer.echo(f"{'annotator':32} {'answers':>7} {'gold':>5} {'gold acc':>8} {'agree':>6}  status")
    for r in t.sort(C.ANNOTATOR).iter_rows(named=True):
        acc = "-" if r[C.GOLD_ACCURACY] is None else f"{r[C.GOLD_ACCURACY]:.2f}"
        agree = "-" if r.get(C.AGREEMENT) is None else f"{r[C.AGREEMENT]:.2f}"
        status = f"held: {r[HELD_REASON]}" if r[HELD] else "ok"
        typer.echo(
            f"{r[C.ANNOTATOR]:32} {r[C.N_ANNOTATIONS]:>7} {r['n_gold']:>5} {acc:>8} {agree:>6}  {status}"
        )


def _refresh_decisions(workspace: Path) -> None:
    """Re-derive the decisions so SQL shows pushed records as `label` and labelled ones as humans said."""
    from pipeline.decide import saved_config
    from pipeline.steps import settle
    from pipeline.workspace import Workspace

    ws = Workspace(workspace)
    if ws.parts():
        settle(ws, saved_config(ws))
        typer.echo("decisions updated (curate publish applies them)")


@label_app.command("simulate")
def simulate_cmd(
    input: Annotated[
        Path,
        typer.Option(
            "--input", "-i", help="Labelled table (TSV/CSV/JSONL/Parquet) or image folder with labels.csv."
        ),
    ],  # fmt: skip
    label_field: Annotated[str, typer.Option(help="Column holding the known label.")],
    out: Annotated[
        Path, typer.Option(help="Where to write the curve CSV (labels, accuracy per round).")
    ] = Path("curve.csv"),
    strategy: Annotated[
        str, typer.Option(help="uncertainty (+diversity), diversity or random.")
    ] = "uncertainty",
    budget: Annotated[int, typer.Option(help="Labels asked per round.")] = 20,
    rounds: Annotated[int, typer.Option(help="Rounds of label, retrain, re-route.")] = 10,
    noise: Annotated[float, typer.Option(help="Probability the simulated annotator answers wrong.")] = 0.0,
    text_field: Annotated[
        str | None, typer.Option(help="Text column (default: the longest text one).")
    ] = None,
    features: Annotated[
        str, typer.Option(help="Text features: auto, static, transformer or tfidf.")
    ] = "auto",
    uncertainty: Annotated[
        str, typer.Option(help="least_confidence, margin or entropy.")
    ] = "least_confidence",
    seed: Annotated[int, typer.Option(help="Random seed of the split, picks and noise.")] = 0,
) -> None:
    """Run the active-learning loop with a simulated annotator; write curve.csv (labels, accuracy)."""
    if strategy not in ("uncertainty", "diversity", "random"):
        _err(f"--strategy {strategy!r}: use uncertainty, diversity or random")
    if uncertainty not in ("least_confidence", "margin", "entropy"):
        _err(f"--uncertainty {uncertainty!r}: use least_confidence, margin or entropy")
    if not 0 <= noise < 1:
        _err("--noise must be in [0, 1)")
    from labeling import learner, simulate

    try:
        ds = learner.load(input, label_field, text_field, features=features, seed=seed)
    except (OSError, ValueError) as exc:
        _err(str(exc))
    typer.echo(f"{len(ds.y)} records, {len(ds.classes)} classes, features: {ds.features}")
    rows = simulate.run(ds, strategy, budget, rounds, noise, seed, method=uncertainty)  # type: ignore[arg-type]
    path = simulate.write_curve(rows, out)
    last = rows[-1] if rows else {"labels": 0, "accuracy": float("nan")}
    typer.echo(f"{len(rows)} rounds, {last['labels']} labels, accuracy {float(last['accuracy']):.3f}"  # type: ignore[arg-type]
               f" -> {path}")  # fmt: skip


if __name__ == "__main__":  # pragma: no cover
    sys.exit(label_app())

"""`curate label check` and `curate label review`: label errors in the labels that came with the data.

Registered on the `label` sub-app when imported (flows/cli.py EXTENSIONS); heavy imports stay inside.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from labeling.cli import _err, label_app, load_run_config

WorkspaceOpt = Annotated[Path, typer.Option("--workspace", "-w", help="Workspace folder.")]
FieldOpt = Annotated[
    str,
    typer.Option(
        "--label-field",
        help="Field of the input rows holding the label (the source's `label_field`; read from meta/data).",
    ),
]
ScopeOpt = Annotated[
    str,
    typer.Option(
        help="kept: kept records and the dropped copies of kept ones (they vote with their group); "
        "all: every labelled record."
    ),
]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="curate.toml (default: ./curate.toml, else the workspace's config)."),
]


def _publish(workspace: Path) -> str:
    """Re-decide and publish under the workspace lock, so the shards carry the new labels."""
    from pipeline.decide import saved_config
    from pipeline.lock import workspace_lock
    from pipeline.publish import publish
    from pipeline.steps import settle
    from pipeline.workspace import Workspace

    ws = Workspace(workspace)
    with workspace_lock(ws.root, "label review"):
        cfg = saved_config(ws)
        settle(ws, cfg)
        result = publish(ws, cfg)
    m = result.manifest
    return f"published version v{m.get('version')} ({m.get('rows')} rows)" + (
        " (unchanged)" if result.skipped else ""
    )


@label_app.command("check")
def check_cmd(
    workspace: WorkspaceOpt = Path("workspace"),
    label_field: FieldOpt = "label",
    scope: ScopeOpt = "kept",
    push: Annotated[
        bool,
        typer.Option(
            "--push",
            help="Send the issues to Label Studio review queues (<queue>-review) for a second look.",
        ),
    ] = False,
    show: Annotated[int, typer.Option(help="Print this many of the likeliest errors.")] = 10,
    folds: Annotated[int, typer.Option(help="Cross-validation folds of the out-of-fold model.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of the folds.")] = 0,
    config: ConfigOpt = None,
) -> None:
    """Find likely errors in labels that came with the data (cleanlab, out of fold, default embeddings).

    Copies of a duplicate group vote first; the result is the `label_issues` view (`curate sql -w W
    "SELECT * FROM label_issues WHERE label_issue ORDER BY p_wrong DESC"`) and the voted labels the shards
    carry as `label` after `curate publish`.
    """
    from labeling.label_errors import SCOPES, check_workspace

    if scope not in SCOPES:
        _err(f"--scope {scope!r}: use {' or '.join(SCOPES)}")
    cfg = load_run_config(config, workspace)
    try:
        r = check_workspace(workspace, label_field, scope, cfg.labeling.queues, cfg.embed, folds, seed)
    except (FileNotFoundError, ValueError) as exc:
        _err(str(exc))
    typer.echo(f"{r.checked} labelled records ({r.groups} duplicate groups), classes {', '.join(r.classes)}: "
               f"{r.issues} likely label errors ({r.issues / max(r.checked, 1):.1%})")  # fmt: skip
    from schemas import columns as C

    top = r.frame.filter(r.frame[C.LABEL_ISSUE]).sort(C.P_WRONG, descending=True).head(show)
    for row in top.iter_rows(named=True):
        text = (row[C.TEXT] or "").replace("\n", " ")[:70]
        typer.echo(
            f"  {row[C.P_WRONG]:.2f}  {row[C.ID]}  {row[C.LABEL_VALUE]} -> {row[C.SUGGESTED_LABEL]}  {text}"
        )
    for name, path in r.paths.items():
        typer.echo(f"  {name}: {path}")
    if push:
        _push_reviews(workspace, r, cfg)


def _push_reviews(workspace: Path, r: object, cfg: object, budget: int | None = None) -> None:
    """Send the flagged records to `<queue>-review` through the Label Studio push."""
    from labeling import push as lpush
    from labeling import server
    from labeling.client import LabelStudioError
    from schemas import columns as C
    from schemas.labeling import REVIEW_SUFFIX

    frame = r.frame  # type: ignore[attr-defined]
    names = sorted({q for q in frame.filter(frame[C.LABEL_ISSUE])[C.QUEUE].to_list() if q})
    for name in names:
        try:
            res = lpush.push(workspace, cfg.labeling, f"{name}{REVIEW_SUFFIX}", budget, band=None)  # type: ignore[attr-defined]
        except (LabelStudioError, server.ServerError, FileNotFoundError, ValueError) as exc:
            _err(str(exc))
        for q in res.queues:
            where = q.file or (f"project {q.project_id}" if q.project_id is not None else "nothing sent")
            typer.echo(f"{q.queue}: {q.candidates} to review -> {where}")


@label_app.command("review")
def review_cmd(
    workspace: WorkspaceOpt = Path("workspace"),
    label_field: FieldOpt = "label",
    truth: Annotated[
        Path | None,
        typer.Option(
            help="Table (TSV/CSV/JSONL/Parquet) with `id` and the label field holding the true labels: a "
            "simulated annotator answers from it. Without it the records go to a Label Studio review queue."
        ),
    ] = None,
    noise: Annotated[float, typer.Option(help="Probability the simulated annotator answers wrong.")] = 0.0,
    budget: Annotated[
        int | None, typer.Option(help="Labels to spend: the likeliest errors first (default: all flagged).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the folds and of the annotator's errors.")] = 0,
    publish: Annotated[
        bool, typer.Option(help="Publish afterwards so the shards carry the corrected `label`.")
    ] = True,
    config: ConfigOpt = None,
) -> None:
    """Review the likely label errors among kept records, most likely wrong first, within a budget.

    With --truth a simulated annotator (error rate --noise) answers; the answers become the records'
    `label` in the shards, and the labels spent are counted. Without --truth the records are pushed to the
    Label Studio review queue of their queue (`<queue>-review`).
    """
    from labeling.label_errors import check_workspace, read_truth, review_workspace

    if not 0 <= noise < 1:
        _err("--noise must be in [0, 1)")
    if budget is not None and budget < 0:
        _err("--budget must be >= 0")
    cfg = load_run_config(config, workspace)
    try:
        check = check_workspace(workspace, label_field, "kept", cfg.labeling.queues, cfg.embed, seed=seed)
        if truth is None:
            typer.echo(f"{check.issues} likely label errors; no --truth: sending them to Label Studio review")
            _push_reviews(workspace, check, cfg, budget)
            return
        answers = read_truth(truth, label_field)
        r = review_workspace(workspace, label_field, answers, noise, budget, seed, check=check)
    except (FileNotFoundError, ValueError) as exc:
        _err(str(exc))
    typer.echo(f"{r.candidates} likely label errors among kept records ({r.already} reviewed before); "
               f"labels spent: {r.asked}, changed: {r.changed}"
               + (f", {r.unknown} not in {truth}" if r.unknown else ""))  # fmt: skip
    typer.echo(f"  data_labels: {r.paths['data_labels']}")
    if publish:
        typer.echo(_publish(workspace))

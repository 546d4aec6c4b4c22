"""The steps between ingest and publish, as plain functions: admit ids, drop the work of inputs that are
gone, run map stages, then the global steps and the decision. The Prefect flow schedules the same steps
as tasks; the single-stage CLI commands call these directly."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from pipeline import ids, stages
from pipeline.decide import decide
from pipeline.runner import remove_orphans, run_global, run_stage_on_part
from pipeline.workspace import INGEST, QUARANTINE, Workspace, read_json
from schemas.config import CurateConfig

if TYPE_CHECKING:
    from pipeline.publish import PublishResult


def prune_inputs(ws: Workspace, keep: Iterable[str]) -> list[str]:
    """Remove what inputs not in `keep` (input keys) left in the workspace: parts, quarantine, marker.

    `curate run` calls it with its config's inputs, so a file taken out of the config leaves no record.
    """
    keep = set(keep)
    removed = []
    if not ws.done_dir.exists():
        return removed
    for marker in sorted(ws.done_dir.glob("*.json")):
        if marker.stem in keep:
            continue
        for part in read_json(marker).get("parts", []):
            ws.part_path(INGEST, part).unlink(missing_ok=True)
        ws.part_path(QUARANTINE, marker.stem).unlink(missing_ok=True)
        marker.unlink()
        removed.append(marker.stem)
    return removed


def admit(ws: Workspace) -> pa.Table:
    """Find ids repeated across files (quarantined as `duplicate_id`) and drop outputs of vanished parts."""
    found = ids.find_duplicate_ids(ws)
    for stage in stages.REGISTRY:
        if stage.kind == "map":
            remove_orphans(ws, stage.name)
    return found


def run_map(
    ws: Workspace,
    cfg: CurateConfig,
    names: Iterable[str] | None = None,
    progress: Callable[[list, str], Iterable] = lambda items, label: items,
) -> int:
    """Run the map stages a config turns on (or just `names`) over every part; how many parts did work."""
    want = set(names) if names is not None else None
    done = 0
    for wave in stages.waves(cfg):
        for stage in wave:
            if want is None or stage.name in want:
                done += sum(run_stage_on_part(stage, ws, p, cfg) for p in progress(ws.parts(), stage.name))
    return done


def settle(ws: Workspace, cfg: CurateConfig) -> pa.Table:
    """Run the global steps a config turns on (near clusters, semantic pairs, the duplicate graph), skipping
    those whose inputs did not change, then write and return the decisions."""
    for stage in stages.global_steps(cfg):
        run_global(stage, ws, cfg)
    return decide(ws, cfg)


@dataclass
class LocalRun:
    """What `run_local` did: the workspace, the decisions, the publish result, how many parts did work."""

    workspace: Workspace
    decisions: pa.Table
    published: PublishResult
    redone: int


def run_local(cfg: CurateConfig) -> LocalRun:
    """Every step of the flow in this process, in order, without Prefect (notebooks, tests, `curate dedup`):
    ingest, admit ids, map stages, global steps, decide, publish."""
    from pipeline.ingest import expand_source, ingest_input
    from pipeline.publish import publish

    ws = Workspace(cfg.workspace)
    inputs = [inp for src in cfg.sources for inp in expand_source(src)]
    for inp in inputs:
        ingest_input(inp, cfg.ingest, ws)
    prune_inputs(ws, [inp.key for inp in inputs])
    admit(ws)
    redone = run_map(ws, cfg)
    decisions = settle(ws, cfg)
    return LocalRun(ws, decisions, publish(ws, cfg), redone)

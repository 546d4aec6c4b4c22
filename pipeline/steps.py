"""The steps between ingest and publish, as plain functions: admit ids, drop the work of inputs that are
gone, run map stages, then the global steps and the decision. The Prefect flow schedules the same steps
as tasks; the single-stage CLI commands call these directly."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from pipeline import ids, stages
from pipeline.decide import decide
from pipeline.runner import StageRun, remove_orphans, run_global
from pipeline.workspace import INGEST, QUARANTINE, Workspace, read_json, write_json
from schemas.config import CurateConfig

if TYPE_CHECKING:
    from pipeline.publish import PublishResult

TIMINGS = "timings.json"


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
    workers: int | None = None,
) -> int:
    """Run the map stages a config turns on (or just `names`) over every part, the parts in worker
    processes (`[flow] max_workers`); how many stage runs did work."""
    from pipeline.pool import close_pool, run_parts

    try:
        return sum(r.done for r in run_parts(ws, cfg, ws.parts(), names, workers, progress))
    finally:
        close_pool()  # the workers' memory (models, buffers) is not held through the global steps


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
    """Every step of the flow in this process and its worker processes, in order, without Prefect
    (notebooks, tests, benchmarks): ingest, admit ids, map stages, global steps, decide, publish."""
    from pipeline.ingest import expand_source
    from pipeline.pool import close_pool, ingest_all, run_parts, workers_for
    from pipeline.publish import publish

    ws, clock = Workspace(cfg.workspace), Timings()
    inputs = [inp for src in cfg.sources for inp in expand_source(src)]
    clock.add_runs(took for _, took in ingest_all(inputs, cfg.ingest, ws, workers_for(cfg)))
    with clock.timed("admit"):
        prune_inputs(ws, [inp.key for inp in inputs])
        admit(ws)
    runs = run_parts(ws, cfg, ws.parts())
    close_pool()  # the workers' memory (models, buffers) is not held through the global steps
    clock.add_runs(runs)
    for stage in stages.global_steps(cfg):
        with clock.timed(stage.name):
            run_global(stage, ws, cfg)
    with clock.timed("decide"):
        decisions = decide(ws, cfg)
    with clock.timed("publish"):
        published = publish(ws, cfg)
    clock.write(ws)
    return LocalRun(ws, decisions, published, sum(r.done for r in runs))


class Timings:
    """Wall and CPU seconds per stage or step of a run, written to `<ws>/timings.json` at its end.

    A map stage's figures are summed over its parts (they ran in the worker processes); a step's are the
    main process's (`curate run` adds the Prefect start-up it waited for before the flow began).
    """

    def __init__(self) -> None:
        self.started = time.time()
        self.stages: dict[str, dict[str, float]] = {}
        self.pids: set[int] = set()

    def add(self, name: str, wall_s: float, cpu_s: float) -> None:
        """Add seconds to a stage's totals."""
        entry = self.stages.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0})
        entry["wall_s"] += wall_s
        entry["cpu_s"] += cpu_s

    def add_runs(self, runs: Iterable[StageRun]) -> None:
        """Add what the map stages' runs on parts took."""
        for r in runs:
            self.add(r.stage, r.wall_s, r.cpu_s)
            self.pids.add(r.pid)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Time a step that runs in this process."""
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - t0, time.process_time() - c0)

    def write(self, ws: Workspace) -> dict:
        """Write `<ws>/timings.json` and return what it holds."""
        out = {
            "started_at": self.started,
            "wall_s": time.time() - self.started,
            "stages": self.stages,
            "worker_pids": sorted(self.pids),  # the processes that ran the map stages
        }
        write_json(out, ws.root / TIMINGS)
        return out

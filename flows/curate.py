"""The `curate` flow: ingest (a task per input file) -> admit ids -> map stages (a task per part: one read
of the part feeds every stage, in run order: hashes, rules, signatures, language, PII, embeddings, quality)
-> global steps (near clusters, semantic pairs, the duplicate graph)
-> decide -> [label push] -> publish. The stages and their order come from the registry (pipeline.stages).
"""

from __future__ import annotations

import time

from prefect import flow, task, unmapped
from prefect.cache_policies import NONE

from flows.runners import quiet_embedded_server, quiet_known_errors, task_runner
from pipeline import stages
from pipeline.decide import decide
from pipeline.ingest import IngestResult, InputFile, expand_source
from pipeline.lock import workspace_lock
from pipeline.pool import close_pool, ingest_job, map_stage_names, part_job, submit, workers_for
from pipeline.publish import PublishResult, publish
from pipeline.runner import StageRun, run_global
from pipeline.steps import TIMINGS, Timings, admit, prune_inputs
from pipeline.workspace import Workspace, read_json, write_json
from schemas.config import CurateConfig, IngestConfig


@task(name="ingest", cache_policy=NONE, retries=2, retry_delay_seconds=1)
def ingest_task(
    inp: InputFile, cfg: IngestConfig, ws: Workspace, workers: int
) -> tuple[IngestResult, StageRun]:
    return submit(ingest_job, inp, cfg, str(ws.root), workers=workers).result()


@task(name="admit", cache_policy=NONE)
def admit_task(ws: Workspace, keys: list[str]) -> int:
    prune_inputs(ws, keys)
    return admit(ws).num_rows


@task(name="part", task_run_name="part-{part}", cache_policy=NONE, retries=2, retry_delay_seconds=1)
def part_task(part: str, ws: Workspace, cfg: CurateConfig, names: list[str], workers: int) -> list[StageRun]:
    """Every map stage on one part: one read of the part feeds them all, in a worker process."""
    return submit(part_job, str(ws.root), part, cfg, names, workers=workers).result()


@task(name="global", cache_policy=NONE)
def global_task(stage: str, ws: Workspace, cfg: CurateConfig) -> bool:
    return run_global(stages.BY_NAME[stage], ws, cfg)


@task(name="label-push", cache_policy=NONE, retries=1, retry_delay_seconds=2)
def label_push_task(ws: Workspace, cfg: CurateConfig) -> int:
    from labeling.push import push

    return push(ws.root, cfg.labeling, band=cfg.quality).imported


@task(name="decide", cache_policy=NONE)
def decide_task(ws: Workspace, cfg: CurateConfig) -> int:
    return decide(ws, cfg).num_rows


@task(name="publish", cache_policy=NONE, retries=1)
def publish_task(ws: Workspace, cfg: CurateConfig) -> PublishResult:
    return publish(ws, cfg)


@flow(name="curate")
def curate_flow(cfg: CurateConfig) -> dict:
    """Curate every source of `cfg` into its workspace; returns the manifest."""
    ws, clock = Workspace(cfg.workspace), Timings()
    write_json(cfg.model_dump(mode="json"), ws.root / "config.json")
    # a Dask worker is a process already; with the thread runner each task hands its part to a process
    workers = 1 if cfg.flow.task_runner == "dask" else workers_for(cfg)
    inputs = [inp for src in cfg.sources for inp in expand_source(src)]
    ingest = ingest_task.with_options(retries=cfg.flow.retries)
    with clock.timed("ingest files"):
        done = ingest.map(inputs, cfg=unmapped(cfg.ingest), ws=unmapped(ws), workers=unmapped(workers))
        clock.add_runs(took for _, took in done.result())
    with clock.timed("admit"):
        admit_task(ws, [inp.key for inp in inputs])
    names = map_stage_names(cfg)
    part = part_task.with_options(retries=cfg.flow.retries)
    with clock.timed("map stages"):
        runs = part.map(
            ws.parts(), ws=unmapped(ws), cfg=unmapped(cfg), names=unmapped(names), workers=unmapped(workers)
        )
        for r in runs.result():
            clock.add_runs(r)
        close_pool()  # the workers' memory (models, buffers) is not held through the global steps
    for step in stages.global_steps(cfg):
        with clock.timed(step.name):
            global_task(step.name, ws, cfg)
    with clock.timed("decide"):
        decide_task(ws, cfg)
    if cfg.stages.label:  # uncertain records go to humans; they stay out of the shards until labelled
        with clock.timed("label push"):
            label_push_task(ws, cfg)
            for step in stages.global_steps(cfg):  # only those a push changed run again (freshness stamps)
                global_task(step.name, ws, cfg)
            decide_task(ws, cfg)
    with clock.timed("publish"):
        manifest = publish_task(ws, cfg).manifest
    clock.write(ws)
    return manifest


def run_curate(cfg: CurateConfig) -> dict:
    """Run the flow with the task runner the config asks for, holding the workspace lock; records in
    `<ws>/timings.json` how long Prefect took to start before the flow's first step."""
    t0 = time.time()
    with workspace_lock(cfg.workspace, "curate run"), quiet_embedded_server(), quiet_known_errors():
        manifest = curate_flow.with_options(task_runner=task_runner(cfg.flow))(cfg)
    path = Workspace(cfg.workspace).root / TIMINGS
    timings = read_json(path)
    timings["prefect_start_s"] = timings["started_at"] - t0
    timings["total_s"] = time.time() - t0
    write_json(timings, path)
    return manifest

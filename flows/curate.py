"""The `curate` flow: ingest -> admit ids -> map stages per part, in waves (hashes, rules, signatures,
language, PII, embeddings, quality) -> global steps (near clusters, semantic pairs, the duplicate graph)
-> decide -> [label push] -> publish. The stages and their order come from the registry (pipeline.stages).
"""

from __future__ import annotations

from prefect import flow, task, unmapped
from prefect.cache_policies import NONE
from prefect.futures import wait

from flows.runners import quiet_embedded_server, quiet_known_errors, task_runner
from pipeline import stages
from pipeline.decide import decide
from pipeline.ingest import IngestResult, InputFile, expand_source, ingest_input
from pipeline.lock import workspace_lock
from pipeline.publish import PublishResult, publish
from pipeline.runner import run_global, run_stage_on_part
from pipeline.steps import admit, prune_inputs
from pipeline.workspace import Workspace, write_json
from schemas.config import CurateConfig, IngestConfig


@task(name="ingest", cache_policy=NONE, retries=2, retry_delay_seconds=1)
def ingest_task(inp: InputFile, cfg: IngestConfig, ws: Workspace) -> IngestResult:
    return ingest_input(inp, cfg, ws)


@task(name="admit", cache_policy=NONE)
def admit_task(ws: Workspace, keys: list[str]) -> int:
    prune_inputs(ws, keys)
    return admit(ws).num_rows


@task(name="stage", cache_policy=NONE, retries=2, retry_delay_seconds=1)
def stage_task(stage: str, part: str, ws: Workspace, cfg: CurateConfig) -> bool:
    return run_stage_on_part(stages.STAGES[stage], ws, part, cfg)


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
    ws = Workspace(cfg.workspace)
    write_json(cfg.model_dump(mode="json"), ws.root / "config.json")
    inputs = [inp for src in cfg.sources for inp in expand_source(src)]
    ingest = ingest_task.with_options(retries=cfg.flow.retries)
    ingest.map(inputs, cfg=unmapped(cfg.ingest), ws=unmapped(ws)).result()
    admit_task(ws, [inp.key for inp in inputs])
    parts = ws.parts()
    stage = stage_task.with_options(retries=cfg.flow.retries)
    for wave in stages.waves(cfg):  # a wave may read the previous wave's outputs of the same part
        futures = [stage.submit(s.name, p, ws, cfg) for s in wave for p in parts]
        wait(futures)
        for f in futures:
            f.result()
    for step in stages.global_steps(cfg):
        global_task(step.name, ws, cfg)
    decide_task(ws, cfg)
    if cfg.stages.label:  # uncertain records go to humans; they stay out of the shards until labelled
        label_push_task(ws, cfg)
        for step in stages.global_steps(cfg):  # only those a push changed run again (freshness stamps)
            global_task(step.name, ws, cfg)
        decide_task(ws, cfg)
    return publish_task(ws, cfg).manifest


def run_curate(cfg: CurateConfig) -> dict:
    """Run the flow with the task runner the config asks for, holding the workspace lock."""
    with workspace_lock(cfg.workspace, "curate run"), quiet_embedded_server(), quiet_known_errors():
        return curate_flow.with_options(task_runner=task_runner(cfg.flow))(cfg)

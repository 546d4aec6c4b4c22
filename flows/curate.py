"""The `curate` flow: ingest -> map stages per part (hashes, rules, signatures, language, PII, embeddings,
quality) -> near and semantic clusters -> decide -> [label push] -> publish."""

from __future__ import annotations

from prefect import flow, task, unmapped
from prefect.cache_policies import NONE
from prefect.futures import wait

from flows.runners import task_runner
from pipeline.decide import decide
from pipeline.global_steps import near_step, semantic_step
from pipeline.ingest import IngestResult, InputFile, expand_source, ingest_input
from pipeline.publish import PublishResult, publish
from pipeline.stages import STAGES, run_stage_on_part, waves
from pipeline.workspace import Workspace, write_json
from schemas.config import CurateConfig, IngestConfig


@task(name="ingest", cache_policy=NONE, retries=2, retry_delay_seconds=1)
def ingest_task(inp: InputFile, cfg: IngestConfig, ws: Workspace) -> IngestResult:
    return ingest_input(inp, cfg, ws)


@task(name="stage", cache_policy=NONE, retries=2, retry_delay_seconds=1)
def stage_task(stage: str, part: str, ws: Workspace, cfg: CurateConfig) -> bool:
    return run_stage_on_part(STAGES[stage], ws, part, cfg)


@task(name="near", cache_policy=NONE)
def near_task(ws: Workspace, cfg: CurateConfig) -> int:
    return near_step(ws, cfg).num_rows


@task(name="label-push", cache_policy=NONE, retries=1, retry_delay_seconds=2)
def label_push_task(ws: Workspace, cfg: CurateConfig) -> int:
    from labeling.push import push

    return push(ws.root, cfg.labeling).imported


@task(name="semantic", cache_policy=NONE)
def semantic_task(ws: Workspace, cfg: CurateConfig) -> int:
    return semantic_step(ws, cfg).num_rows


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
    ingested = ingest.map(inputs, cfg=unmapped(cfg.ingest), ws=unmapped(ws)).result()
    parts = [p for r in ingested for p in r.parts]
    stage = stage_task.with_options(retries=cfg.flow.retries)
    for wave in waves(cfg):  # a wave may read the previous wave's outputs of the same part
        futures = [stage.submit(s.name, p, ws, cfg) for s in wave for p in parts]
        wait(futures)
        for f in futures:
            f.result()
    if cfg.stages.near:
        near_task(ws, cfg)
    if cfg.stages.embed and cfg.stages.semantic:
        semantic_task(ws, cfg)
    decide_task(ws, cfg)
    if cfg.stages.label:  # uncertain records go to humans; they stay out of the shards until labelled
        label_push_task(ws, cfg)
        decide_task(ws, cfg)
    return publish_task(ws, cfg).manifest


def run_curate(cfg: CurateConfig) -> dict:
    """Run the flow with the task runner the config asks for."""
    return curate_flow.with_options(task_runner=task_runner(cfg.flow))(cfg)

"""The labelling flow: push a round -> wait for the annotators (poll with timeout) -> pull -> retrain ->
refresh the suggestions of tasks still waiting (`curate label round` is the same round without Prefect).

Run it after the curation flow (or from `curate run` with labelling on): the retrain step writes
`<ws>/label_scores/` and `<ws>/label_issues.parquet`, which the next round's push routes on.
"""

from __future__ import annotations

import time
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE

from labeling.pull import progress, pull
from labeling.push import push, refresh_predictions
from labeling.retrain import retrain
from schemas.labeling import LabelingConfig


@task(name="label-push", cache_policy=NONE, retries=1, retry_delay_seconds=2)
def push_task(workspace: str, cfg: LabelingConfig, queue: str | None, budget: int | None) -> dict:
    r = push(workspace, cfg, queue, budget)
    return {"server": r.server, "imported": r.imported, "queues": [q.__dict__ for q in r.queues]}


@task(name="label-wait", cache_policy=NONE)
def wait_task(workspace: str, cfg: LabelingConfig) -> dict:
    """Poll until every pushed task has `overlap` annotations or `wait_timeout_s` passes."""
    logger = get_run_logger()
    deadline = time.monotonic() + cfg.wait_timeout_s
    while True:
        done, total = progress(workspace, cfg)
        logger.info("labelled %d / %d tasks", done, total)
        if done >= total:
            return {"done": done, "total": total, "timed_out": False}
        if time.monotonic() >= deadline:
            logger.warning(
                "gave up waiting after %.0f s: pulling the %d finished tasks", cfg.wait_timeout_s, done
            )
            return {"done": done, "total": total, "timed_out": True}
        time.sleep(min(cfg.poll_s, max(0.0, deadline - time.monotonic())))


@task(name="label-pull", cache_policy=NONE, retries=2, retry_delay_seconds=5)
def pull_task(workspace: str, cfg: LabelingConfig) -> dict:
    r = pull(workspace, cfg)
    return {"annotations": r.annotations, "new": r.new, "labels": r.labels, "paths": r.paths}


@task(name="label-retrain", cache_policy=NONE)
def retrain_task(workspace: str, cfg: LabelingConfig) -> dict:
    r = retrain(workspace, cfg)
    return {"queues": r.queues, "scored": r.scored, "issues": r.issues}


@task(name="label-refresh", cache_policy=NONE, retries=1, retry_delay_seconds=2)
def refresh_task(workspace: str, cfg: LabelingConfig) -> int:
    """Replace pending tasks' suggestions with the retrained model's (or kNN on the labels so far)."""
    return refresh_predictions(workspace, cfg)


@flow(name="label")
def label_flow(
    workspace: str, cfg: LabelingConfig | None = None, queue: str | None = None, budget: int | None = None
) -> dict:
    """One labelling round on a workspace; without a Label Studio server, it stops after the import files."""
    cfg = cfg or LabelingConfig()
    workspace = str(Path(workspace).resolve())
    pushed = push_task(workspace, cfg, queue, budget)
    if pushed["server"] is None:
        get_run_logger().warning("no Label Studio server: wrote import files, skipping wait/pull/retrain")
        return {"push": pushed}
    waited = wait_task(workspace, cfg)
    pulled = pull_task(workspace, cfg)
    retrained = retrain_task(workspace, cfg)
    refreshed = refresh_task(workspace, cfg)
    return {"push": pushed, "wait": waited, "pull": pulled, "retrain": retrained, "refreshed": refreshed}

"""The task runner a flow uses: a thread pool by default, or Dask (prefect-dask) for scale-out."""

from __future__ import annotations

from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from schemas.config import FlowConfig


def task_runner(cfg: FlowConfig) -> Any:
    """Build the configured Prefect task runner."""
    if cfg.task_runner == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:
            raise RuntimeError(
                "flow.task_runner = 'dask' needs prefect-dask: pip install prefect-dask"
            ) from exc
        if cfg.dask_address:
            return DaskTaskRunner(address=cfg.dask_address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": cfg.max_workers, "threads_per_worker": 1})
    return ThreadPoolTaskRunner(max_workers=cfg.max_workers)

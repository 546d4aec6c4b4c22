"""The task runner a flow uses (a thread pool by default, or Dask via prefect-dask), and how its logs read."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

from pipeline.ingest import IngestError
from pipeline.workspace import WorkspaceError, is_environment_error
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


class _NoTracebackForKnownErrors(logging.Filter):
    """Keeps the log line but drops the traceback of errors the CLI states in one line (busy or read-only
    workspace, full disk, unreadable input): a traceback there reads like a bug in curate."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and (isinstance(exc, WorkspaceError | IngestError) or is_environment_error(exc)):
            record.exc_info = None
            record.exc_text = None
        return True


@contextmanager
def quiet_known_errors() -> Iterator[None]:
    """While the block runs, Prefect's console log shows known errors without their traceback."""
    from prefect.logging.configuration import setup_logging
    from prefect.logging.handlers import PrefectConsoleHandler

    root = logging.getLogger()
    handlers = [h for h in root.handlers if isinstance(h, PrefectConsoleHandler)]
    if not handlers:
        setup_logging()
        handlers = [h for h in root.handlers if isinstance(h, PrefectConsoleHandler)]
    f = _NoTracebackForKnownErrors()
    for h in handlers:
        h.addFilter(f)
    try:
        yield
    finally:
        for h in handlers:
            h.removeFilter(f)

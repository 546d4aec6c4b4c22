"""The task runner a flow uses (a thread pool by default, or Dask via prefect-dask), and how its logs read."""

from __future__ import annotations

import logging
import os
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


# The embedded API's server logs at ERROR, with tracebacks, when it is stopped at the end of a run while
# task-run events are still being written ("Error flushing N events", "Exception during reset" of a
# cancelled database call): bookkeeping of a run that already succeeded. A failing API call still fails
# the flow itself, in this process, where the logs stay as they are.
_QUIET_SERVER = {"PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL", "PREFECT_LOGGING_ROOT_LEVEL": "CRITICAL"}


@contextmanager
def quiet_embedded_server() -> Iterator[None]:
    """While the block runs, an embedded API server that Prefect starts logs only CRITICAL.

    Prefect starts that server as a subprocess on first use and hands it this process's environment;
    this process's own logging was configured when prefect was imported, so it keeps its levels.
    A user's own values of these variables win, and nothing changes when PREFECT_API_URL names a server.
    """
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        yield
        return
    added = {k: v for k, v in _QUIET_SERVER.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for k in added:
            os.environ.pop(k, None)

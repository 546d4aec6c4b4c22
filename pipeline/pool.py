"""Worker processes for the per-part work (ingest of a file, the map stages of a part).

The kernels hold the GIL for part of their time, so threads leave the second core idle: the parts go to a
pool of processes instead. The pool is started once per process (forkserver: workers fork from a clean
server that has already imported the stages, so a worker starts in milliseconds and loads each model once)
and reused by every later call. A worker dies with the process that started it.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import multiprocessing.spawn as mp_spawn
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from pipeline import stages as registry
from pipeline.ingest import IngestResult, InputFile, ingest_input
from pipeline.runner import StageRun, run_part
from pipeline.workspace import Workspace
from schemas.config import CurateConfig, IngestConfig

_POOL: ProcessPoolExecutor | None = None
_POOL_SIZE = 0
_SUBMITTED = 0  # tasks handed to the current pool
_POOL_LOCK = threading.Lock()
PRELOAD = ["pipeline.pool"]


def _exit_with(pid: int) -> None:
    """End this worker when process `pid` (the run that started the pool) ends, however it ends.

    A worker's parent is the forkserver, which outlives a killed run as long as workers hold its pipe, and
    workers blocked on the task queue never see it close: without this, a SIGKILLed run leaves them behind.
    """
    import select

    try:
        fd = os.pidfd_open(pid)
    except (OSError, AttributeError):  # gone already, or no pidfd (Linux < 5.3): poll instead
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
        else:
            while True:
                try:
                    os.kill(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="curate-exit-with-run", daemon=True).start()


def _init_worker(threads: int, run_pid: int) -> None:
    _exit_with(run_pid)
    # two workers on two cores: each library's own thread pool gets its share, not every core
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "RAYON_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ.setdefault(var, str(threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false" if threads == 1 else "true")


WORKER_PREFIX = "curate-worker-"
# A worker's memory grew ~150 MB with each 50k-document part it ran (allocator and library caches), which
# reached 2.3 GB per worker at 1M documents: after this many tasks per worker the pool is retired (its
# running tasks finish) and new tasks go to fresh workers, which reload their models in about a second.
# (ProcessPoolExecutor's own max_tasks_per_child deadlocks on Python 3.11.)
TASKS_PER_WORKER = 3


class _WorkerProcess(mp.context.ForkServerProcess):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.name = WORKER_PREFIX + self.name


class _WorkerContext(mp.context.ForkServerContext):
    Process = _WorkerProcess  # type: ignore[assignment]


_real_preparation_data = mp_spawn.get_preparation_data


def _preparation_data(name: str) -> dict:
    """What a new process re-runs before it starts: not the caller's main script for our workers.

    A worker only runs `pipeline.pool` jobs; re-running the user's `__main__` there (as multiprocessing does
    for forkserver and spawn) would run an unguarded script's whole flow again in every worker.
    """
    data = _real_preparation_data(name)
    if name.startswith(WORKER_PREFIX):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


mp_spawn.get_preparation_data = _preparation_data


def workers_for(cfg: CurateConfig) -> int:
    """How many worker processes a run uses: `[flow] max_workers`, at most the machine's cores."""
    return max(1, min(cfg.flow.max_workers, os.cpu_count() or 1))


def pool(workers: int) -> ProcessPoolExecutor:
    """The process pool of this process with `workers` workers (started on first use, then reused)."""
    global _POOL, _POOL_SIZE, _SUBMITTED
    with _POOL_LOCK:
        if _POOL is None or workers != _POOL_SIZE:
            if _POOL is not None:
                _POOL.shutdown(wait=True)
            ctx = _WorkerContext()
            ctx.set_forkserver_preload(PRELOAD)
            threads = max(1, (os.cpu_count() or 1) // workers)
            _POOL = ProcessPoolExecutor(
                workers,
                mp_context=ctx,
                initializer=_init_worker,
                initargs=(threads, os.getpid()),
            )
            _POOL_SIZE = workers
            _SUBMITTED = 0
        return _POOL


def close_pool() -> None:
    """Stop the worker processes (they are started again on the next use)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True, cancel_futures=True)
            _POOL = None


atexit.register(close_pool)


def part_job(root: str, part: str, cfg: CurateConfig, names: Sequence[str]) -> list[StageRun]:
    """Run the named map stages on one part of the workspace at `root` (in a worker or in-process)."""
    return run_part([registry.STAGES[n] for n in names], Workspace(root), part, cfg)


def ingest_job(inp: InputFile, cfg: IngestConfig, root: str) -> tuple[IngestResult, StageRun]:
    """Ingest one input file into the workspace at `root` (in a worker or here), and how long it took."""
    t0, c0 = time.perf_counter(), time.process_time()
    result = ingest_input(inp, cfg, Workspace(root))
    took = StageRun("ingest", inp.key, not result.skipped, time.perf_counter() - t0, time.process_time() - c0)
    return result, took


def map_stage_names(cfg: CurateConfig, names: Iterable[str] | None = None) -> list[str]:
    """The map stages a config turns on (or just `names` of them), in run order."""
    want = set(names) if names is not None else None
    return [s.name for wave in registry.waves(cfg) for s in wave if want is None or s.name in want]


def submit(fn: Callable, *args: object, workers: int) -> Future:
    """Run `fn(*args)` in the pool (or here, at once, when `workers` is 1)."""
    if workers <= 1:
        f: Future = Future()
        try:
            f.set_result(fn(*args))
        except BaseException as exc:  # noqa: BLE001  # handed to the caller, as the pool would
            f.set_exception(exc)
        return f
    global _POOL, _SUBMITTED
    with _POOL_LOCK:
        if _POOL is not None and TASKS_PER_WORKER * workers <= _SUBMITTED:
            _POOL.shutdown(wait=False)  # its running tasks still finish
            _POOL = None
    p = pool(workers)
    with _POOL_LOCK:
        _SUBMITTED += 1
    return p.submit(fn, *args)


def _bounded(jobs: Sequence[tuple], workers: int) -> Iterator[Future]:
    """Futures of `jobs` ((fn, *args) each) in order, at most `workers` of them running at once (a pool
    that is retired for memory must not have queued work that makes two pools run side by side)."""
    pending: deque[Future] = deque()
    it = iter(jobs)
    for job in it:
        pending.append(submit(*job, workers=workers))
        if len(pending) >= workers:
            break
    while pending:
        done = pending.popleft()
        yield done
        nxt = next(it, None)
        if nxt is not None:
            pending.append(submit(*nxt, workers=workers))


def run_parts(
    ws: Workspace,
    cfg: CurateConfig,
    parts: Sequence[str],
    names: Iterable[str] | None = None,
    workers: int | None = None,
    progress: Callable[[list, str], Iterable] = lambda items, label: items,
) -> list[StageRun]:
    """Run the map stages on every part, `workers` parts at a time; every stage run, in part order."""
    order = map_stage_names(cfg, names)
    n = workers_for(cfg) if workers is None else workers
    jobs = [(part_job, str(ws.root), p, cfg, order) for p in parts]
    runs: list[StageRun] = []
    for f in progress(_Sized(_bounded(jobs, n), len(jobs)), ", ".join(order)):
        runs.extend(f.result())
    return runs


class _Sized:
    """An iterator with a length (for progress bars)."""

    def __init__(self, it: Iterator, n: int) -> None:
        self.it, self.n = it, n

    def __iter__(self) -> Iterator:
        return self.it

    def __len__(self) -> int:
        return self.n


def ingest_all(
    inputs: Sequence[InputFile], cfg: IngestConfig, ws: Workspace, workers: int
) -> list[tuple[IngestResult, StageRun]]:
    """Ingest every input file, `workers` files at a time; results (and times) in input order."""
    jobs = [(ingest_job, inp, cfg, str(Path(ws.root))) for inp in inputs]
    return [f.result() for f in _bounded(jobs, workers)]

"""Worker processes for the per-part work (ingest of a file, the map stages of a part).

The kernels hold the GIL for part of their time, so threads leave the second core idle: the parts go to a
pool of processes instead: one slot per worker, started on first use and reused by every later call
(forkserver: workers fork from a clean server that has already imported the stages, so a worker starts in
milliseconds and loads each model once). A worker is replaced, while idle, when it has grown past
WORKER_MEMORY_MB, and dies with the process that started it.
"""

from __future__ import annotations

import atexit
import multiprocessing as mp
import multiprocessing.spawn as mp_spawn
import os
import queue
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

_SLOTS: _Slots | None = None
_SLOTS_LOCK = threading.Lock()
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
# A worker's memory grows with the parts it has run (allocator fragmentation, caches): it is replaced by a
# fresh one, while idle, once its RSS passes WORKER_MEMORY_MB (but not before MIN_TASKS tasks: a config whose
# models alone pass the mark, e.g. the transformer embedder, is not reloaded for every part) or it has run
# TASKS_PER_WORKER tasks. A fresh worker reloads its models (~4 CPU-s with the default stages).
# (ProcessPoolExecutor's own max_tasks_per_child deadlocks on Python 3.11.)
TASKS_PER_WORKER = 20
WORKER_MEMORY_MB = 900
MIN_TASKS = 3


def _rss_mb(executor: ProcessPoolExecutor) -> float:
    """Resident memory of the executor's worker processes, in MB (0 when unknown)."""
    total = 0
    for pid in list(getattr(executor, "_processes", None) or {}):
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total / 1024


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


# Allocators of the workers, set in the forkserver's environment when it starts (each allocator reads its
# setting once, at its first allocation): polars' jemalloc returns freed pages at once instead of keeping
# them for 0.5-1 s, Arrow allocates with malloc instead of its own mimalloc arenas, and glibc keeps 2
# arenas, not 8 per core. A user's own values win.
WORKER_ALLOCATOR_ENV = {
    "_RJEM_MALLOC_CONF": "dirty_decay_ms:0,muzzy_decay_ms:0",
    "ARROW_DEFAULT_MEMORY_POOL": "system",
    "MALLOC_ARENA_MAX": "2",
}
_POLARS_JEMALLOC = "dirty_decay_ms:500,muzzy_decay_ms:1000"  # what importing polars puts in _RJEM_MALLOC_CONF


def _worker_env() -> dict[str, str]:
    """The allocator settings the workers need that this process's environment lacks."""
    out = {k: v for k, v in WORKER_ALLOCATOR_ENV.items() if k not in os.environ}
    jemalloc = os.environ.get("_RJEM_MALLOC_CONF", "")
    if not jemalloc.replace(_POLARS_JEMALLOC, "").strip(","):  # unset, or only polars' own default
        out["_RJEM_MALLOC_CONF"] = WORKER_ALLOCATOR_ENV["_RJEM_MALLOC_CONF"]
    return out


def _start_forkserver() -> None:
    """Start this process's forkserver (once) with the workers' allocator settings in its environment."""
    from multiprocessing import forkserver

    env = _worker_env()
    before = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        forkserver.ensure_running()
    finally:
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def workers_for(cfg: CurateConfig) -> int:
    """How many worker processes a run uses: `[flow] max_workers`, at most the machine's cores."""
    return max(1, min(cfg.flow.max_workers, os.cpu_count() or 1))


class _Slot:
    """One worker process (a process pool of one), replaced by a fresh one once it holds WORKER_MEMORY_MB,
    has run TASKS_PER_WORKER tasks or broke; it is replaced while idle, so an old and a new worker never hold
    memory side by side."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.executor: ProcessPoolExecutor | None = None
        self.tasks = 0

    def take(self) -> ProcessPoolExecutor:
        """The worker for the next task (a fresh one when this one is spent or broken)."""
        if self.executor is not None and (
            self.tasks >= TASKS_PER_WORKER
            or getattr(self.executor, "_broken", False)
            or (self.tasks >= MIN_TASKS and _rss_mb(self.executor) > WORKER_MEMORY_MB)
        ):
            self.executor.shutdown(wait=True)  # idle: its last task has finished
            self.executor = None
        if self.executor is None:
            ctx = _WorkerContext()
            ctx.set_forkserver_preload(PRELOAD)
            _start_forkserver()
            self.executor = ProcessPoolExecutor(
                1, mp_context=ctx, initializer=_init_worker, initargs=(self.threads, os.getpid())
            )
            self.tasks = 0
        self.tasks += 1
        return self.executor

    def close(self) -> None:
        """Stop the worker (its queued tasks are cancelled)."""
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None


class _Slots:
    """`workers` worker slots: a task waits for an idle slot and runs in its worker process."""

    def __init__(self, workers: int) -> None:
        self.size = workers
        threads = max(1, (os.cpu_count() or 1) // workers)
        self.slots = [_Slot(threads) for _ in range(workers)]
        self.idle: queue.SimpleQueue[_Slot] = queue.SimpleQueue()
        for slot in self.slots:
            self.idle.put(slot)

    def submit(self, fn: Callable, *args: object) -> Future:
        slot = self.idle.get()
        try:
            future = slot.take().submit(fn, *args)
        except BaseException:
            self.idle.put(slot)
            raise
        future.add_done_callback(lambda _: self.idle.put(slot))
        return future

    def close(self) -> None:
        for slot in self.slots:
            slot.close()


def _slots(workers: int) -> _Slots:
    """The worker slots of this process, `workers` of them (started on first use, then reused)."""
    global _SLOTS
    with _SLOTS_LOCK:
        if _SLOTS is None or _SLOTS.size != workers:
            if _SLOTS is not None:
                _SLOTS.close()
            _SLOTS = _Slots(workers)
        return _SLOTS


def close_pool() -> None:
    """Stop the worker processes (they are started again on the next use)."""
    global _SLOTS
    with _SLOTS_LOCK:
        if _SLOTS is not None:
            _SLOTS.close()
            _SLOTS = None


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
    return _slots(workers).submit(fn, *args)


def _bounded(jobs: Sequence[tuple], workers: int) -> Iterator[Future]:
    """Futures of `jobs` ((fn, *args) each) in order, at most `workers` of them submitted at once (a task
    waits for an idle worker: submitting them all would block here)."""
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

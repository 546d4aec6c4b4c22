"""One writer per workspace: an OS file lock on `<ws>/.lock` held for a whole command.

The lock is `fcntl.flock` on the file, so the kernel releases it when the holder dies (even by SIGKILL):
a lock file left by a killed run is simply taken over. The file's content (pid, start time, command) is
only there to tell a second writer who holds it. The lock is re-entrant within one thread (the CLI takes
it, then the flow it starts takes it again); another thread of the same process waits like another
process would.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pipeline.workspace import Workspace, WorkspaceError, WorkspaceWriteError, is_environment_error

WAIT_ENV = "CURATE_LOCK_WAIT"
POLL_S = 0.2


class WorkspaceBusy(WorkspaceError):
    """Another process (or thread) holds the workspace lock."""


@dataclass
class _Held:
    fd: int
    thread: int
    depth: int


_HELD: dict[Path, _Held] = {}
_GUARD = threading.Lock()


def default_wait() -> float:
    """Seconds a command waits for a busy workspace: $CURATE_LOCK_WAIT, else 0 (refuse at once)."""
    try:
        return max(0.0, float(os.environ.get(WAIT_ENV, "0")))
    except ValueError:
        return 0.0


def holder(ws: Workspace) -> dict:
    """What the lock file says about its holder (pid, since, command); {} when unreadable or empty."""
    try:
        return json.loads(ws.lock_path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return {}


def busy_message(ws: Workspace, info: dict) -> str:
    """The one-line refusal: who holds the workspace and since when."""
    return f"{_who(ws, info)}; wait for it to finish, or pass --wait SECONDS (or set ${WAIT_ENV})"


def _who(ws: Workspace, info: dict) -> str:
    who = f"pid {info['pid']}" if info.get("pid") else "another process"
    since = f" since {info['since']}" if info.get("since") else ""
    cmd = f" ({info['command']})" if info.get("command") else ""
    return f"workspace {ws.root} is in use by {who}{since}{cmd}"


@contextmanager
def workspace_lock(
    root: str | Path | Workspace,
    command: str = "",
    wait: float | None = None,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[Path]:
    """Hold the workspace's lock for the block, waiting up to `wait` seconds (default: default_wait()).

    `on_wait` is called once, with who holds the workspace, when the lock is busy and we wait for it.

    On entry (first level only) the workspace's `.staging` is emptied: whatever is there belongs to a
    writer that died. Raises WorkspaceBusy with the holder's pid and start time when the wait runs out,
    and WorkspaceWriteError when the workspace cannot be written (read-only, disk full).
    """
    ws = root if isinstance(root, Workspace) else Workspace(root)
    key = ws.root
    me = threading.get_ident()
    wait = default_wait() if wait is None else wait
    deadline = time.monotonic() + wait
    while True:
        with _GUARD:
            held = _HELD.get(key)
            if held is not None and held.thread == me:
                held.depth += 1
                break
            fd = _try_lock(ws) if held is None else None
            if fd is not None:
                _claim(ws, fd, command)
                _HELD[key] = _Held(fd, me, 1)
                break
        info = holder(ws) if held is None else {"pid": os.getpid(), "command": "another thread"}
        if time.monotonic() >= deadline:
            raise WorkspaceBusy(busy_message(ws, info))
        if on_wait is not None:
            on_wait(_who(ws, info))
            on_wait = None
        time.sleep(POLL_S)
    try:
        yield ws.lock_path
    finally:
        with _GUARD:
            h = _HELD[key]
            h.depth -= 1
            if h.depth == 0:
                del _HELD[key]
                _release(h.fd)


def _try_lock(ws: Workspace) -> int | None:
    """The lock file's descriptor with the lock held, or None when another holder has it."""
    try:
        ws.root.mkdir(parents=True, exist_ok=True)
        # never O_TRUNC here: the holder's pid is in the file until we own the lock
        fd = os.open(ws.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        if is_environment_error(exc):
            raise WorkspaceWriteError(ws.lock_path, exc) from exc
        raise
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def _claim(ws: Workspace, fd: int, command: str) -> None:
    """Record who holds the lock, then clear what a dead writer left in `.staging`."""
    info = {
        "pid": os.getpid(),
        "since": datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": command,
    }
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        ws.reset_staging()
    except OSError as exc:
        _release(fd)
        if is_environment_error(exc):
            raise WorkspaceWriteError(Path(exc.filename or ws.lock_path), exc) from exc
        raise


def _release(fd: int) -> None:
    try:
        os.ftruncate(fd, 0)  # before unlocking: the next holder writes its own pid
    except OSError:
        pass
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)

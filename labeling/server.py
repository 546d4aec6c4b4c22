"""The Label Studio server a workspace talks to: a local one started on loopback, or a remote one.

Local server state lives in `<ws>/labelstudio/`: the server's data dir (`data/`), its log (`server.log`) and
`server.json` (pid, port, url, admin user, token; mode 0600). The token is never printed except by
`curate labelstudio status --json`, which exists to hand it over.

The first start sets the database up with `label-studio init` (~400 migrations, 30-90 s here) and waits for
it however long it takes: a migration killed half-way leaves tables that every later migrate trips over
(`table "fsm_annotationstate" already exists`). Only a finished set-up gets `data/.curate-initialised`.
A data dir with a database but no marker and no user was a set-up that died: it is moved aside whole
(`data.broken-<time>`) and set up again; one that holds users is reported with the command that fixes it.
The set-up runs in its own session (a Ctrl-C in the terminal does not reach it) under a file lock that the
child inherits, so a second `up` waits for a set-up still running instead of starting another.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from schemas.labeling import LabelingConfig

STATE_DIR = "labelstudio"
STATE_FILE = "server.json"
LOG_FILE = "server.log"
HOST = "127.0.0.1"
INIT_MARKER = ".curate-initialised"
DB_FILE = "label_studio.sqlite3"
SETUP_LOCK = ".setup.lock"


class ServerError(RuntimeError):
    """Label Studio cannot be started, reached or configured; the message says what to do."""


@dataclass
class Server:
    """Where a Label Studio server is and how to authenticate against it."""

    url: str
    token: str
    local: bool = False
    pid: int | None = None
    port: int | None = None
    username: str | None = None
    password: str | None = None

    def __repr__(self) -> str:  # never show the token or password
        return f"Server(url={self.url!r}, local={self.local}, pid={self.pid})"


def state_dir(workspace: str | Path) -> Path:
    """Folder holding the local server's data dir, log and state file."""
    return Path(workspace).resolve() / STATE_DIR


def state_path(workspace: str | Path) -> Path:
    """The local server's state file."""
    return state_dir(workspace) / STATE_FILE


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def find_binary(cfg: LabelingConfig) -> str:
    """Path of the label-studio executable (config, $CURATE_LABEL_STUDIO_BIN, the repo's venv, PATH)."""
    candidates = [cfg.binary, os.environ.get("CURATE_LABEL_STUDIO_BIN")]
    repo = Path(__file__).resolve().parents[1]
    candidates.append(str(repo / ".venv-labelstudio" / "bin" / "label-studio"))
    candidates.append(shutil.which("label-studio"))
    for c in candidates:
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    raise ServerError(
        "label-studio executable not found: run `make setup` (installs it into .venv-labelstudio), "
        "or set [labeling] binary / $CURATE_LABEL_STUDIO_BIN"
    )


def healthy(url: str, timeout: float = 2.0) -> bool:
    """True when `<url>/health` answers UP."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout) as r:
            return r.status == 200 and b"UP" in r.read()
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_state(workspace: str | Path) -> Server | None:
    """The local server recorded in the workspace, or None."""
    p = state_path(workspace)
    if not p.exists():
        return None
    d = json.loads(p.read_text(encoding="utf-8"))
    return Server(**d)


def _write_state(workspace: str | Path, server: Server) -> None:
    p = state_path(workspace)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".tmp-{p.name}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(asdict(server), f, indent=2, sort_keys=True)
    os.replace(tmp, p)


def start(workspace: str | Path, cfg: LabelingConfig | None = None, port: int | None = None) -> Server:
    """Start (or reuse) the workspace's local server on 127.0.0.1 and wait until it is healthy."""
    cfg = cfg or LabelingConfig()
    current = read_state(workspace)
    if current and _pid_alive(current.pid) and healthy(current.url):
        return current
    if current and _pid_alive(current.pid):  # alive but not healthy: a start still in progress or stuck
        stop(workspace)
    binary = find_binary(cfg)
    d = state_dir(workspace)
    data_dir = d / "data"
    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or cfg.port or (current.port if current and current.port else None) or free_port()
    # a data dir keeps its admin user: reuse the recorded credentials, new ones only for a new data dir
    token = current.token if current else secrets.token_hex(20)
    password = (current.password if current else None) or secrets.token_urlsafe(12)
    username = current.username if current and current.username else cfg.username
    url = f"http://{HOST}:{port}"
    env = dict(os.environ)
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data_dir),
        LABEL_STUDIO_USERNAME=username,
        LABEL_STUDIO_PASSWORD=password,
        LABEL_STUDIO_USER_TOKEN=token,
        LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN="true",
        LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK="true",
        SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="",
        COLLECT_ANALYTICS="false",
        LATEST_VERSION_CHECK="false",
    )
    # credentials travel in the environment only (not argv, which `ps` shows to every local user)
    cmd = [
        binary, "start", "--data-dir", str(data_dir), "--internal-host", HOST, "--port", str(port),
        "--host", url, "--no-browser", "--enable-legacy-api-token",
    ]  # fmt: skip
    initialise(binary, data_dir, env, d)
    log = open(d / LOG_FILE, "ab")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, start_new_session=True
    )
    log.close()
    server = Server(url=url, token=token, local=True, pid=proc.pid, port=port, username=username,
                    password=password)  # fmt: skip
    _write_state(workspace, server)
    deadline = time.monotonic() + cfg.start_timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServerError(
                f"label-studio exited with code {proc.returncode} while starting; see {d / LOG_FILE}"
            )
        if healthy(url):
            return server
        time.sleep(1.0)
    stop(workspace)
    raise ServerError(
        f"label-studio did not answer {url}/health within {cfg.start_timeout_s:.0f} s; see {d / LOG_FILE} "
        "(raise [labeling] start_timeout_s on a busy machine)"
    )


def database_state(data_dir: Path) -> tuple[int, int] | None:
    """(migrations applied, users) of the data dir's database; None when there is no database yet."""
    db = data_dir / DB_FILE
    if not db.exists():
        return None
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        count = lambda t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] if t in tables else 0  # noqa: E731
        return count("django_migrations"), count("htx_user")
    except sqlite3.DatabaseError:  # unreadable: what a set-up killed while creating the file leaves
        return 0, 0
    finally:
        con.close()


def initialise(binary: str, data_dir: Path, env: dict[str, str], state: Path) -> None:
    """Set the data dir's database up once (`label-studio init`), waiting for it without a time limit.

    A dir that a killed set-up left half-done (a database, no marker, no user) is moved aside and set up
    again; ServerError with the fix when a set-up fails on a dir that holds users.
    """
    marker = data_dir / INIT_MARKER
    if marker.exists():
        return
    state.mkdir(parents=True, exist_ok=True)
    fd = os.open(state / SETUP_LOCK, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # a set-up still running (from an interrupted `up`) finishes first
        if marker.exists():
            return
        found = database_state(data_dir)
        if found is not None and found[1] == 0:
            aside = data_dir.with_name(f"{data_dir.name}.broken-{time.strftime('%Y%m%d-%H%M%S')}")
            os.rename(data_dir, aside)
            data_dir.mkdir()
            _say(
                f"{data_dir} held a half-done database set-up ({found[0]} migrations, no user: a first "
                f"start was interrupted); moved it to {aside} and setting up afresh"
            )
        _say(f"setting up Label Studio's database in {data_dir} (first start only, 30-90 s; let it finish)")
        with open(state / LOG_FILE, "ab") as log:
            proc = subprocess.Popen(
                [binary, "init", "-q", "--data-dir", str(data_dir), "--enable-legacy-api-token"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # a Ctrl-C in the terminal must not kill a migration half-way
                pass_fds=(fd,),  # the set-up holds the lock until it ends, even if we are interrupted
            )
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            raise ServerError(
                f"interrupted; the database set-up goes on in the background (pid {proc.pid}); run "
                "`curate labelstudio up` again to wait for it"
            ) from None
        if code != 0:
            users = (database_state(data_dir) or (0, 0))[1]
            fix = (
                f"it holds {users} user(s), so it was left as is: to start afresh, `mv {data_dir} "
                f"{data_dir}.old` and run `curate labelstudio up` again"
                if users
                else "run `curate labelstudio up` again to set it up afresh"
            )
            raise ServerError(
                f"label-studio init failed (exit code {code}) on {data_dir}; see {state / LOG_FILE}; {fix}"
            )
        marker.write_text(
            json.dumps({"set_up": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n", encoding="utf-8"
        )
    finally:
        os.close(fd)  # not LOCK_UN: a set-up left running in the background keeps the lock until it ends


def _say(message: str) -> None:
    print(f"curate: {message}", file=sys.stderr, flush=True)


def stop(workspace: str | Path, timeout: float = 20.0) -> bool:
    """Stop the workspace's local server (its process group); True if one was running."""
    current = read_state(workspace)
    if not current or not _pid_alive(current.pid):
        return False
    pid = int(current.pid or 0)
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)  # reap when it is our child
            if done:
                return True
        except ChildProcessError:
            pass
        if not _pid_alive(pid):
            return True
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True


def status(workspace: str | Path, cfg: LabelingConfig | None = None) -> dict[str, object]:
    """`{"url", "token", "running", "local"}` of the server this workspace would use (token may be None)."""
    server = resolve(workspace, cfg, require=False)
    if server is None:
        return {"url": None, "token": None, "running": False, "local": True}
    running = healthy(server.url) and (not server.local or _pid_alive(server.pid))
    return {"url": server.url, "token": server.token, "running": running, "local": server.local}


def resolve(workspace: str | Path, cfg: LabelingConfig | None = None, require: bool = True) -> Server | None:
    """The server to use: a remote one from config/env url + token env var, else the local one, else None."""
    cfg = cfg or LabelingConfig()
    url = cfg.url or os.environ.get(cfg.url_env)
    if url:
        token = os.environ.get(cfg.token_env)
        if not token:
            raise ServerError(
                f"Label Studio at {url} needs an API token: set ${cfg.token_env} "
                "(Account & Settings > Access Token in the Label Studio UI)"
            )
        return Server(url=url.rstrip("/"), token=token)
    current = read_state(workspace)
    if current and _pid_alive(current.pid):
        return current
    if require:
        raise ServerError(
            f"no Label Studio server for {Path(workspace)}: run `curate labelstudio up --workspace "
            f"{workspace}` or set [labeling] url and ${cfg.token_env}"
        )
    return None

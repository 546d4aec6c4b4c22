"""SIGKILL at seeded moments of a real `curate run`, then a re-run: the shards come out byte-identical to an
uninterrupted run, and right after every kill the current manifest's shards are all there with their sha256
and `curate sql` works.

Input: the first 100 documents of the real Common Crawl sample plus the sample `curate sample` writes (text,
images with captions, CSV records). Embeddings and semantic dedup are off (they are not what this tests and
cost most of a run); every other stage runs. All runs share one Prefect server (`prefect server start`, one
PREFECT_HOME) so a run costs seconds, not the embedded server's start-up.

Kill moments (seed SEED): an ingest part mid-write and a publish mid-write are caught by polling the
workspace's `.staging`: the run is frozen with SIGSTOP, the test checks the temp file is still there (so the
write is in progress), then sends SIGKILL. The other moments are seeded fractions of an uninterrupted run's
wall time (5), and two kills hit a re-publish (after a settings change) right after its first new shard.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pipeline.catalog import query
from pipeline.sample import write_sample
from pipeline.workspace import STAGING

CURATE = str(Path(sys.executable).parent / "curate")
SEED = 20261202
CC_BIG = "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def cc_cut(cc_dir: Path, out: Path, n: int) -> Path:
    """The first `n` documents of the real Common Crawl sample, as JSONL.gz."""
    with gzip.open(cc_dir / CC_BIG, "rt", encoding="utf-8") as f:
        lines = [ln for _, ln in zip(range(n), f, strict=False)]
    with gzip.open(out, "wt", encoding="utf-8") as f:
        f.writelines(lines)
    return out


def assert_version_whole(ws: Path, manifest: dict) -> None:
    """Every shard the manifest lists exists with its stated size and sha256."""
    for s in manifest["shards"]:
        f = ws / s["path"]
        assert f.is_file() and f.stat().st_size == s["bytes"], f
        assert hashlib.sha256(f.read_bytes()).hexdigest() == s["sha256"], f


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """One real Prefect server for every run of this module; the environment that points runs at it."""
    home = tmp_path_factory.mktemp("prefect_home")
    sock = __import__("socket").socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 240
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        assert server.poll() is None and time.monotonic() < deadline, "prefect server did not start"
        time.sleep(0.3)
    try:
        yield env | {"PREFECT_API_URL": url, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.fixture(scope="module")
def configs(cc_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[Path, int], Path]:
    """Write a curate.toml for a workspace: the CC cut + the sample, publish shards of `rows` rows."""
    root = tmp_path_factory.mktemp("kill_inputs")
    cc = cc_cut(cc_dir, root / "cc.jsonl.gz", 100)
    write_sample(root / "s")
    s = root / "s"

    def make(ws: Path, rows: int) -> Path:
        path = ws.parent / f"{ws.name}-{rows}.toml"
        path.write_text(
            f"""workspace = "{ws}"

[[sources]]
path = "{cc}"
name = "cc"

[[sources]]
path = "{s / "texts.jsonl"}"
name = "texts"

[[sources]]
path = "{s / "images"}"
name = "images"
captions = "{s / "captions.csv"}"

[[sources]]
path = "{s / "businesses.csv"}"
name = "businesses"

[stages]
embed = false
semantic = false

[ingest]
shard_rows = 50

[rules.record]
required_fields = ["name", "address"]

[publish]
shard_rows = {rows}
""",
            encoding="utf-8",
        )
        return path

    return make


def shard_bytes(ws: Path) -> list[tuple[str, bytes]]:
    """(file name, bytes) of every shard of the current version, in manifest order."""
    m = json.loads((ws / "manifest.json").read_text())
    return [(Path(s["path"]).name, (ws / s["path"]).read_bytes()) for s in m["shards"]]


def run(cfg: Path, env: dict[str, str]) -> float:
    t0 = time.monotonic()
    proc = subprocess.run(
        [CURATE, "run", "-c", str(cfg)], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return time.monotonic() - t0


@dataclass
class Kill:
    """When to kill: `at` seconds after start, or when `ready(ws)` names a temp file that is still there
    once the run is frozen."""

    name: str
    at: float | None = None
    ready: Callable[[Path], Path | None] | None = None
    after: float = 0.0
    report: dict = field(default_factory=dict)


def staged(pattern: str) -> Callable[[Path], Path | None]:
    def find(ws: Path) -> Path | None:
        hits = sorted((ws / STAGING).glob(pattern)) if (ws / STAGING).is_dir() else []
        return hits[0] if hits else None

    return find


def gone_within(pgid: int, seconds: float) -> bool:
    """True when no process of group `pgid` is left within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def run_and_kill(cfg: Path, ws: Path, env: dict[str, str], kill: Kill) -> bool:
    """Start `curate run` and SIGKILL it at the kill's moment; False when it finished first.

    A timed kill hits the run's own process only: its worker processes must then end by themselves (the
    test fails if any is left after 10 s). A kill caught mid-write freezes and kills the run's whole process
    group, since the write may be a worker's."""
    proc = subprocess.Popen([CURATE, "run", "-c", str(cfg)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    t0 = time.monotonic()
    try:
        while proc.poll() is None:
            if kill.at is not None and time.monotonic() - t0 >= kill.at:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kill.report["at_s"] = round(time.monotonic() - t0, 2)
                assert gone_within(proc.pid, 10), f"{kill.name}: worker processes outlived the killed run"
                return True
            hit = kill.ready(ws) if kill.ready is not None else None
            if hit is not None:
                if kill.after:
                    time.sleep(kill.after)
                os.killpg(proc.pid, signal.SIGSTOP)
                time.sleep(0.01)  # let the stop land
                if hit.exists():  # the write is still in progress: kill it there
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
                    kill.report["in_progress"] = hit.name
                    kill.report["at_s"] = round(time.monotonic() - t0, 2)
                    return True
                os.killpg(proc.pid, signal.SIGCONT)  # too late for this file: wait for the next one
            time.sleep(0.0005)
        return False
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def check_after_kill(ws: Path, before: dict | None) -> None:
    """The current manifest's shards exist with their sha256; the catalog opens and counts them."""
    if not (ws / "manifest.json").exists():
        assert before is None
        return
    m = json.loads((ws / "manifest.json").read_text())
    assert_version_whole(ws, m)
    if before is not None and m.get("version") == before["version"]:
        assert m == before
    assert query(ws, "SELECT count(*) AS n FROM shards").column("n")[0].as_py() == m["rows"]
    assert query(ws, "SELECT count(*) AS n FROM records").column("n")[0].as_py() >= m["rows"]


def test_sigkill_then_rerun_gives_the_same_shards(
    configs: Callable[[Path, int], Path], prefect_api: dict[str, str], tmp_path: Path
) -> None:
    env = prefect_api
    ref = tmp_path / "ref"
    took = run(configs(ref, 40), env)
    ref_shards = shard_bytes(ref)
    ref2 = tmp_path / "ref2"  # an uninterrupted re-publish with other settings
    subprocess.run(["cp", "-a", str(ref), str(ref2)], check=True)
    run(configs(ref2, 25), env)
    ref2_shards = shard_bytes(ref2)
    assert len(ref_shards) >= 3 and len(ref2_shards) > len(ref_shards)

    rng = random.Random(SEED)
    fresh = [Kill("ingest part mid-write", ready=staged("*-ingest-*.parquet"))]
    fresh += [
        Kill(f"{f:.0%} of a run", at=f * took) for f in sorted(rng.uniform(0.05, 0.95) for _ in range(5))
    ]
    fresh += [
        Kill("publish mid-write", ready=staged("publish-*/*.arrow"), after=rng.uniform(0, 0.02))
        for _ in range(2)
    ]
    republish = [
        Kill("re-publish after its first new shard", ready=staged("publish-*/*-00000.arrow"))
        for _ in range(2)
    ]

    killed = 0
    for i, kill in enumerate(fresh + republish):
        ws = tmp_path / f"ws{i}"
        if kill in republish:  # a published workspace whose publish settings then change
            subprocess.run(["cp", "-a", str(ref), str(ws)], check=True)
            before = json.loads((ws / "manifest.json").read_text())
            cfg, want = configs(ws, 25), ref2_shards
        else:
            before, cfg, want = None, configs(ws, 40), ref_shards
        if run_and_kill(cfg, ws, env, kill):
            killed += 1
            kill.report["left_in_staging"] = (
                sorted(p.name for p in (ws / STAGING).rglob("*")) if (ws / STAGING).is_dir() else []
            )
            check_after_kill(ws, before)
        run(cfg, env)
        assert shard_bytes(ws) == want, kill.name
        assert list((ws / STAGING).iterdir()) == []
        print(f"{kill.name}: {kill.report or 'finished before the kill'}")
    assert killed == 10
    assert fresh[0].report.get("in_progress", "").endswith(".parquet")  # caught mid-write
    assert any(k.report.get("in_progress") for k in fresh[-2:])
    assert all(k.report.get("in_progress") for k in republish)

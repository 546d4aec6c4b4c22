"""Faults: leftovers of killed writes, atomic versioned publish, the workspace lock, read-only SQL, the
static model under threads, Prefect's noise after a good run, a full disk and a read-only workspace.

Inputs are a cut of the real Common Crawl sample (../shared/data/commoncrawl_sample_dolma). The CLI runs as
a user runs it (the `curate` console script in a subprocess) wherever what the user sees is the point; the
functional core is called directly where only the files matter. Embeddings and semantic dedup are off in
the flow runs here: they are not what these tests check, and they cost most of a run's time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from pipeline.catalog import ReadOnlyError, query
from pipeline.publish import PublishError, publish
from pipeline.steps import run_local
from pipeline.workspace import STAGING, Workspace
from schemas.config import CurateConfig, load_config

CURATE = str(Path(sys.executable).parent / "curate")
CC_BIG = "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def cc_cut(cc_dir: Path, out: Path, n: int, skip: int = 0) -> Path:
    """The first `n` documents (after `skip`) of the real Common Crawl sample, as JSONL.gz."""
    with gzip.open(cc_dir / CC_BIG, "rt", encoding="utf-8") as f:
        lines = [ln for _, ln in zip(range(skip + n), f, strict=False)][skip:]
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(out, "wt", encoding="utf-8") as f:
        f.writelines(lines)
    return out


def write_config(path: Path, source: Path, ws: Path, **sections: dict) -> Path:
    """A curate.toml reading `source` into `ws`, embeddings and semantic dedup off, plus `sections`."""
    lines = [f'workspace = "{ws}"', "", "[[sources]]", f'path = "{source}"', 'name = "cc"', ""]
    sections = {"stages": {"embed": False, "semantic": False}} | sections
    for name, values in sections.items():
        lines.append(f"[{name}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def cli_env(prefect_home: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_SERVER_LOGGING_LEVEL")
    }
    return env | {
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "HF_HUB_OFFLINE": "1",
        "COLUMNS": "200",
    }


def curate(
    *args: str, env: dict[str, str], check: bool = True, timeout: float = 600
) -> subprocess.CompletedProcess:
    proc = subprocess.run([CURATE, *args], capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:] + proc.stdout[-2000:]
    return proc


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_version_whole(ws: Path, manifest: dict) -> None:
    """Every shard the manifest lists exists with its stated size and sha256."""
    for s in manifest["shards"]:
        f = ws / s["path"]
        assert f.is_file(), f
        assert f.stat().st_size == s["bytes"] and sha256(f) == s["sha256"], f


def error_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [ln for ln in (proc.stderr + proc.stdout).splitlines() if ln.startswith("error:")]


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prefect_home")


@pytest.fixture(scope="module")
def cc_small(cc_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return cc_cut(cc_dir, tmp_path_factory.mktemp("cc") / "cc.jsonl.gz", 120)


def core(cfg: CurateConfig) -> dict:
    """Every step in this process, as the single-stage commands run them (no Prefect); the manifest."""
    return run_local(cfg).published.manifest


@pytest.fixture(scope="module")
def base(cc_small: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A curated and published workspace (and its manifest) that tests copy before changing it."""
    root = tmp_path_factory.mktemp("base")
    cfg = load_config(write_config(root / "curate.toml", cc_small, root / "ws"))
    return root / "ws", core(cfg)


def copy_ws(base: tuple[Path, dict], dest: Path) -> tuple[Path, dict]:
    shutil.copytree(base[0], dest, symlinks=True)
    return dest, json.loads((dest / "manifest.json").read_text())


# ---- temp files of a killed write -----------------------------------------------------------------------


def test_leftovers_of_a_killed_write_are_never_read_and_are_cleaned(
    base: tuple[Path, dict], tmp_path: Path, prefect_home: Path
) -> None:
    env = cli_env(prefect_home)
    ws, m = copy_ws(base, tmp_path / "ws")
    part = sorted((ws / "ingest").glob("*.parquet"))[0]
    half = part.read_bytes()[: part.stat().st_size // 2]
    # What a SIGKILL mid-write leaves (made here by cutting a real part in half): a partial file in
    # .staging, and, from curate versions before .staging, a dot-file beside the parts.
    (ws / STAGING / f"0badf00d-ingest-{part.name}").write_bytes(half)
    (ws / "ingest" / f".tmp-0badf00d-{part.name}").write_bytes(half)
    n = query(ws, "SELECT count(*) AS n FROM records").column("n")[0].as_py()
    assert n == sum(pq.read_metadata(p).num_rows for p in sorted((ws / "ingest").glob("[!.]*.parquet")))
    assert query(ws, "SELECT count(*) AS n FROM shards").column("n")[0].as_py() == m["rows"]
    curate("rules", "-w", str(ws), env=env)  # a writing command takes the lock and clears the leftovers
    assert list((ws / STAGING).iterdir()) == []
    assert not list((ws / "ingest").glob(".tmp-*"))


# ---- versioned, atomic publish ---------------------------------------------------------------------------


def test_publish_writes_a_new_version_and_switches_the_manifest(
    base: tuple[Path, dict], cc_small: Path, tmp_path: Path
) -> None:
    ws, m1 = copy_ws(base, tmp_path / "ws")
    assert m1["version"] == 1 and all(s["path"].startswith("versions/v1/") for s in m1["shards"])
    assert json.loads((ws / "versions/v1/manifest.json").read_text()) == m1
    assert_version_whole(ws, m1)
    assert not (ws / "shards").exists()

    cfg = load_config(write_config(tmp_path / "c.toml", cc_small, ws))
    before = (ws / "manifest.json").stat().st_mtime_ns
    assert publish(Workspace(ws), cfg).skipped  # nothing changed: nothing written
    assert (ws / "manifest.json").stat().st_mtime_ns == before and os.listdir(ws / "versions") == ["v1"]

    cfg = load_config(write_config(tmp_path / "c.toml", cc_small, ws, publish={"shard_rows": 7}))
    m2 = publish(Workspace(ws), cfg).manifest
    assert json.loads((ws / "manifest.json").read_text()) == m2
    assert m2["version"] == 2 and len(m2["shards"]) > len(m1["shards"]) and m2["rows"] == m1["rows"]
    assert_version_whole(ws, m2)
    assert_version_whole(ws, m1)  # the previous version stays whole
    rows = query(ws, "SELECT count(*) AS n, count(DISTINCT id) AS d FROM shards").to_pylist()[0]
    assert rows == {"n": m2["rows"], "d": m2["rows"]}

    fresh = tmp_path / "fresh"  # a fresh workspace on the same inputs and settings: the same shard bytes
    m3 = core(load_config(write_config(tmp_path / "f.toml", cc_small, fresh, publish={"shard_rows": 7})))
    assert m3["version"] == 1
    assert [(fresh / s["path"]).read_bytes() for s in m3["shards"]] == [
        (ws / s["path"]).read_bytes() for s in m2["shards"]
    ]


def test_publish_refuses_a_version_that_breaks_an_invariant(
    base: tuple[Path, dict], cc_small: Path, tmp_path: Path
) -> None:
    ws, m1 = copy_ws(base, tmp_path / "ws")
    manifest_bytes = (ws / "manifest.json").read_bytes()
    # Corrupt the state by hand: one kept record's decision row written twice, so its record joins twice.
    dec = pq.read_table(ws / "decisions.parquet")
    kept = dec.filter(pc.equal(dec["decision"], "keep"))
    pq.write_table(pa.concat_tables([dec, kept.slice(0, 1)]), ws / "decisions.parquet")
    cfg = load_config(write_config(tmp_path / "c.toml", cc_small, ws))
    with pytest.raises(PublishError, match="more than once"):
        publish(Workspace(ws), cfg)
    assert (ws / "manifest.json").read_bytes() == manifest_bytes  # nothing switched
    assert os.listdir(ws / "versions") == ["v1"] and list((ws / STAGING).iterdir()) == []
    assert_version_whole(ws, m1)


# ---- two runs at once ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs_at_once(cc_dir: Path, tmp_path_factory: pytest.TempPathFactory, prefect_home: Path) -> dict:
    """Run A (`curate run`, many small parts so Prefect records many task runs); while A holds the
    workspace, B (no --wait) and C (--wait 600) start on the same workspace."""
    root = tmp_path_factory.mktemp("at_once")
    src = cc_cut(cc_dir, root / "cc.jsonl.gz", 60)
    ws = root / "ws"
    # 30 parts: enough task runs that, before the fix, Prefect's server printed "Error flushing" at exit
    cfg = write_config(root / "curate.toml", src, ws, ingest={"shard_rows": 2})
    env = cli_env(prefect_home)
    a = subprocess.Popen(
        [CURATE, "run", "-c", str(cfg)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and str(a.pid) not in (
        (ws / ".lock").read_text() if (ws / ".lock").exists() else ""
    ):
        time.sleep(0.05)
    b = curate("run", "-c", str(cfg), env=env, check=False)
    c = subprocess.Popen(
        [CURATE, "run", "-c", str(cfg), "--wait", "600"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    a_out, a_err = a.communicate(timeout=600)
    a_manifest = (ws / "manifest.json").read_bytes()
    a_shards = {s["path"]: (ws / s["path"]).read_bytes() for s in json.loads(a_manifest)["shards"]}
    c_out, c_err = c.communicate(timeout=600)
    return {
        "ws": ws,
        "a": (a.returncode, a_out, a_err),
        "a_pid": a.pid,
        "b": b,
        "c": (c.returncode, c_out, c_err),
        "a_manifest": a_manifest,
        "a_shards": a_shards,
    }


def test_second_run_refuses_naming_the_holder(runs_at_once: dict) -> None:
    b = runs_at_once["b"]
    assert b.returncode == 1
    (line,) = error_lines(b)
    assert f"workspace {runs_at_once['ws']} is in use by pid {runs_at_once['a_pid']} since " in line
    assert "Traceback" not in b.stderr


def test_waiting_run_waits_and_changes_nothing(runs_at_once: dict) -> None:
    code, out, err = runs_at_once["c"]
    assert code == 0, err[-3000:]
    assert f"in use by pid {runs_at_once['a_pid']}" in err and "waiting up to 600 s" in err
    ws = runs_at_once["ws"]
    assert (ws / "manifest.json").read_bytes() == runs_at_once["a_manifest"]  # the same result as one run
    assert {p: (ws / p).read_bytes() for p in runs_at_once["a_shards"]} == runs_at_once["a_shards"]
    assert sorted(os.listdir(ws / "versions")) == ["v1"]


def test_successful_run_prints_no_error(runs_at_once: dict) -> None:
    code, out, err = runs_at_once["a"]
    assert code == 0, err[-3000:]
    assert "curation summary" in out
    for text in (out, err):
        assert "ERROR" not in text and "Traceback" not in text, text[-3000:]


# ---- curate sql is read-only -----------------------------------------------------------------------------


def test_sql_refuses_statements_that_write(
    base: tuple[Path, dict], tmp_path: Path, prefect_home: Path
) -> None:
    env = cli_env(prefect_home)
    ws, m = copy_ws(base, tmp_path / "ws")
    decisions = (ws / "decisions.parquet").read_bytes()
    proc = curate(
        "sql", "-w", str(ws), f"COPY (SELECT 1 AS id) TO '{ws / 'decisions.parquet'}'", env=env, check=False
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    (line,) = error_lines(proc)
    assert "read-only" in line and "COPY" in line
    for sql in [
        "CREATE TABLE t AS SELECT * FROM decisions",
        "INSERT INTO decisions SELECT * FROM decisions",
        f"ATTACH '{tmp_path / 'x.db'}' AS x",
        f"EXPORT DATABASE '{tmp_path / 'export'}'",
        "SET enable_external_access = true",
        "SELECT 1; DROP VIEW decisions",
        f"EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp_path / 'e.csv'}'",
    ]:
        with pytest.raises(ReadOnlyError):
            query(ws, sql)
    assert (ws / "decisions.parquet").read_bytes() == decisions
    assert (
        not (tmp_path / "x.db").exists()
        and not (tmp_path / "export").exists()
        and not (tmp_path / "e.csv").exists()
    )
    # reads still work, the shards view included
    assert query(ws, "SELECT count(*) AS n FROM shards").column("n")[0].as_py() == m["rows"]
    assert query(ws, "SELECT sum(rows) AS n FROM shard_files").column("n")[0].as_py() == m["rows"]
    assert query(ws, "DESCRIBE shards").num_rows > 5
    assert query(ws, "EXPLAIN SELECT * FROM records").num_rows >= 1
    assert (
        query(ws, "WITH k AS (FROM decisions WHERE decision = 'keep') SELECT count(*) AS n FROM k")
        .column("n")[0]
        .as_py()
        == m["counts"]["kept"]
    )
    out = curate("sql", "-w", str(ws), "-f", "json", "SELECT count(*) AS n FROM shards", env=env).stdout
    assert json.loads(out) == {"n": m["rows"]}


# ---- the static model under threads ----------------------------------------------------------------------


def test_static_model_is_thread_safe(cc_dir: Path) -> None:
    """Real threads on the real static model: before the fix this raised `RuntimeError: Already borrowed`
    (two threads set the shared tokenizer's truncation at once)."""
    from quality.static_embed import encode_static
    from schemas.embed import EmbedConfig

    cfg = EmbedConfig()
    with gzip.open(cc_dir / CC_BIG, "rt", encoding="utf-8") as f:
        texts = [json.loads(ln)["text"] for _, ln in zip(range(64), f, strict=False)]
    batches = [texts[i % 16 :] for i in range(48)]
    alone = [encode_static(b, cfg) for b in batches[:16]]
    start = threading.Barrier(8)

    def job(i: int) -> np.ndarray:
        if i < 8:
            start.wait()
        return encode_static(batches[i], cfg)

    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(job, range(len(batches))))
    for i, v in enumerate(together):
        np.testing.assert_allclose(v, alone[i % 16], rtol=1e-6, atol=1e-6)


def test_a_partial_static_model_folder_is_never_taken_for_a_model(tmp_path: Path) -> None:
    """What a distillation killed while saving would leave if it wrote in place (a copy of the real model
    without its tokenizer): not a model, so it would be distilled again rather than loaded half."""
    from quality.static_embed import distill, is_complete
    from schemas.embed import EmbedConfig

    real = distill(EmbedConfig())
    assert is_complete(real)
    partial = tmp_path / real.name
    shutil.copytree(real, partial)
    (partial / "tokenizer.json").unlink()
    assert not is_complete(partial)


# ---- a full disk and a read-only workspace ---------------------------------------------------------------


@pytest.fixture()
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs mounted for the test (root only; skipped where mounting is not allowed)."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip(
            "mounting a tmpfs needs root: the full-disk and read-only tests cannot make their fault here"
        )
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if made.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs here ({made.stderr.strip()}): no real full or read-only disk to test on"
        )
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt: Path, leave: int) -> Path:
    """Fill the file system, then free `leave` bytes: what a disk that fills up during a run looks like."""
    filler = mnt / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass
    with open(filler, "r+b") as f:
        f.truncate(max(0, filler.stat().st_size - leave))
    return filler


def test_read_only_workspace_gives_one_line_and_damages_nothing(
    base: tuple[Path, dict], cc_small: Path, tmpfs: Path, tmp_path: Path, prefect_home: Path
) -> None:
    env = cli_env(prefect_home)
    ws, m1 = copy_ws(base, tmpfs / "ws")
    cfg = write_config(tmp_path / "c.toml", cc_small, ws, publish={"shard_rows": 7})
    subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], check=True)
    for args in (
        ["publish", "-w", str(ws), "-c", str(cfg)],
        ["run", "-c", str(cfg)],
        ["ingest", str(cc_small), "-w", str(ws)],
    ):
        proc = curate(*args, env=env, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
        (line,) = error_lines(proc)
        assert "read-only" in line and str(ws) in line, line
    assert json.loads((ws / "manifest.json").read_text()) == m1
    assert_version_whole(ws, m1)
    out = curate("sql", "-w", str(ws), "-f", "json", "SELECT count(*) AS n FROM shards", env=env).stdout
    assert json.loads(out) == {"n": m1["rows"]}  # reading a read-only workspace still works


def test_full_disk_gives_one_line_and_damages_nothing(
    base: tuple[Path, dict], cc_dir: Path, cc_small: Path, tmpfs: Path, tmp_path: Path, prefect_home: Path
) -> None:
    env = cli_env(prefect_home)
    ws, m1 = copy_ws(base, tmpfs / "ws")
    cfg = write_config(tmp_path / "c.toml", cc_small, ws, publish={"shard_rows": 7})
    filler = fill(tmpfs, leave=64 << 10)  # room for the lock and the decisions, not for new shards
    proc = curate("publish", "-w", str(ws), "-c", str(cfg), env=env, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-2000:]
    (line,) = error_lines(proc)
    assert "no space left" in line and str(ws) in line, line
    assert json.loads((ws / "manifest.json").read_text()) == m1
    assert_version_whole(ws, m1)
    assert sorted(os.listdir(ws / "versions")) == ["v1"] and list((ws / STAGING).iterdir()) == []
    more = cc_cut(cc_dir, tmp_path / "more.jsonl.gz", 300, skip=120)  # new input: ingest must write
    run_cfg = write_config(tmp_path / "run.toml", more, ws)
    for args in (["ingest", str(more), "-w", str(ws)], ["run", "-c", str(run_cfg)]):
        proc = curate(*args, env=env, check=False)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr + proc.stdout, proc.stderr[-3000:]
        assert "no space left" in error_lines(proc)[-1] and str(ws) in error_lines(proc)[-1]
    assert json.loads((ws / "manifest.json").read_text()) == m1
    filler.unlink()  # space again: the same publish now goes through, and v1 is still whole
    curate("publish", "-w", str(ws), "-c", str(cfg), env=env)
    m2 = json.loads((ws / "manifest.json").read_text())
    assert m2["version"] == 2
    assert_version_whole(ws, m2)
    assert_version_whole(ws, m1)


# ---- Label Studio's first set-up -------------------------------------------------------------------------


def test_labelstudio_up_repairs_a_half_set_up_data_dir_and_waits_for_the_set_up(tmp_path: Path) -> None:
    """A real Label Studio: its first start killed half-way through the migrations (what `up` did when its
    240 s timeout hit during the first database set-up), then `curate labelstudio up` with a start timeout
    shorter than the set-up takes: the half-done data dir is moved aside and set up afresh, to the end."""
    from labeling import server
    from schemas.labeling import LabelingConfig

    try:
        binary = server.find_binary(LabelingConfig())
    except server.ServerError as exc:
        pytest.skip(str(exc))
    ws = tmp_path / "ws"
    data = server.state_dir(ws) / "data"
    data.mkdir(parents=True)
    env = {**os.environ, "LABEL_STUDIO_BASE_DATA_DIR": str(data), "COLLECT_ANALYTICS": "false"}
    port = str(server.free_port())
    cmd = [binary, "start", "--data-dir", str(data), "--internal-host", "127.0.0.1", "--port", port]
    first = subprocess.Popen(
        [*cmd, "--no-browser"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and (server.database_state(data) or (0, 0))[0] < 30:
        time.sleep(0.2)
    os.killpg(first.pid, 9)
    first.wait()
    migrations, users = server.database_state(data) or (0, 0)
    assert migrations >= 30 and users == 0  # half-migrated, no admin yet

    cfg = tmp_path / "curate.toml"
    cfg.write_text("[labeling]\nstart_timeout_s = 25\n", encoding="utf-8")
    t0 = time.monotonic()
    up = subprocess.run(
        [CURATE, "labelstudio", "up", "-w", str(ws), "-c", str(cfg)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    took = time.monotonic() - t0
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        assert "half-done database set-up" in up.stderr and "Label Studio is up" in up.stdout
        assert len(list(data.parent.glob("data.broken-*"))) == 1
        assert (data / server.INIT_MARKER).exists()
        assert server.status(ws)["running"]
        (migrations_after, users_after) = server.database_state(data) or (0, 0)
        assert migrations_after > migrations and users_after == 1
        print(f"labelstudio up after a half set-up took {took:.0f} s (start timeout 25 s)")
    finally:
        server.stop(ws)

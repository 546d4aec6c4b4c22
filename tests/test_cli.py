"""The `curate` console script, run as a user runs it (subprocesses)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

CURATE = str(Path(sys.executable).parent / "curate")
COMMANDS = ["sample", "ingest", "exact", "rules", "publish", "sql", "run", "demo"]


def curate(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([CURATE, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def test_help_explains_every_command() -> None:
    top = curate("--help").stdout
    for cmd in COMMANDS:
        assert cmd in top
        sub = curate(cmd, "--help").stdout
        assert "Usage" in sub and len(sub.splitlines()) > 5
    assert "--format" in curate("sql", "--help").stdout
    assert "--workspace" in curate("ingest", "--help").stdout


def test_single_stages_then_sql(tmp_path: Path) -> None:
    curate("sample", "--out", str(tmp_path / "s"))
    ws = str(tmp_path / "ws")
    ing = curate("ingest", str(tmp_path / "s" / "texts.jsonl"), "--workspace", ws)
    assert "4 quarantined" in ing.stderr
    curate("exact", "--workspace", ws)
    curate("rules", "--workspace", ws)
    pub = curate("publish", "--workspace", ws)
    assert "curate sql" in pub.stdout
    rows = [
        json.loads(x)
        for x in curate(
            "sql",
            "-w",
            ws,
            "-f",
            "json",
            "SELECT reason, count(*) AS n FROM decisions GROUP BY reason ORDER BY n DESC, reason",
        ).stdout.splitlines()
    ]
    by = {r["reason"]: r["n"] for r in rows}
    assert by["exact_dup"] == 7 and by["empty"] == 3
    q = list(
        csv.DictReader(
            io.StringIO(
                curate(
                    "sql", "-w", ws, "-f", "csv", "SELECT line, reason FROM quarantine ORDER BY line"
                ).stdout
            )
        )
    )
    assert [r["reason"].split(":")[0] for r in q] == [
        "invalid_json",
        "invalid_utf8",
        "missing_field",
        "wrong_type",
    ]
    kept = curate("sql", "-w", ws, "SELECT count(*) AS n FROM shards WHERE text LIKE '%library%'").stdout
    assert "n" in kept
    bad = curate("sql", "-w", ws, "SELECT nope FROM records", check=False)
    assert bad.returncode == 1 and "nope" in bad.stderr


def test_sql_stays_light(tmp_path: Path) -> None:
    curate("sample", "--out", str(tmp_path / "s"))
    ws = str(tmp_path / "ws")
    curate("ingest", str(tmp_path / "s" / "businesses.csv"), "-w", ws)
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "flows.cli",
            "sql",
            "-w",
            ws,
            "SELECT count(*) FROM records",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = {
        line.rsplit("|", 1)[-1].strip().split(".")[0] for line in proc.stderr.splitlines() if "|" in line
    }
    assert "duckdb" in modules
    assert not modules & {"torch", "prefect", "sentence_transformers"}


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "curate.toml"
    cfg.write_text('[[sources]]\npath = "x.jsonl"\n[rules.text]\nmin_word = 3\n')
    proc = curate("run", "--config", str(cfg), check=False)
    assert proc.returncode == 1
    assert "rules.text.min_word" in proc.stderr and "min_words" in proc.stderr
    cfg.write_text('[[sources]]\npath = "missing.jsonl"\n')
    proc = curate("run", "--config", str(cfg), check=False)
    assert proc.returncode == 1 and "missing.jsonl" in proc.stderr and "Traceback" not in proc.stderr

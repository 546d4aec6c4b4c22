"""The researcher's side on a real workspace: versions and diff (checked against SQL), gc, the report page in
headless Chromium, the notebooks (nbclient), exports loaded with `datasets`, the torch loader, the README's
`curate sql` examples, and `curate sql` output of list and struct columns.

One workspace (module fixture) is built with `run_local` from the sample, the Common Crawl sample and 300
SMS, published twice with a changed rule (v1, v2); then a labelling round is simulated with three
annotators answering from the SMS data's own labels (one always right, two with 20 % / 40 % noise), and its
tables are computed by `labeling.pull.labels_tables`, as a pull would.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pytest
from conftest import DATA, ROOT, data_dir

from pipeline.catalog import connect
from pipeline.sample import write_sample
from pipeline.steps import run_local
from pipeline.workspace import Workspace
from schemas import columns as C
from schemas.config import CurateConfig

CURATE = str(Path(sys.executable).parent / "curate")


def curate(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the console script as a user would."""
    env = {**os.environ, "COLUMNS": "200"}
    proc = subprocess.run([CURATE, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr + proc.stdout
    return proc


def _simulate_labels(ws: Workspace) -> None:
    """Three annotators label the kept SMS records (truth: the data's own ham/spam), a quarter as gold."""
    from labeling import pull

    con = connect(ws.root)
    rows = con.execute(
        f"SELECT {C.ID}, json_extract_string({C.META}, '$.Label') FROM shards "
        f"WHERE {C.SOURCE} = 'sms' ORDER BY {C.ID}"
    ).fetchall()
    con.close()
    assert len(rows) >= 8, rows
    rng = np.random.default_rng(0)
    ann = []
    for who, noise in (("ann-a", 0.0), ("ann-b", 0.2), ("ann-c", 0.4)):
        for i, (rid, truth) in enumerate(rows):
            wrong = rng.random() < noise
            label = ("spam" if truth == "ham" else "ham") if wrong else truth
            ann.append(
                {
                    C.SERVER: "simulated", C.ANNOTATION_ID: len(ann) + 1, C.TASK_ID: i + 1, C.PROJECT_ID: 1,
                    C.QUEUE: "sms", C.ID: rid, C.ANNOTATOR: who, C.LABEL_VALUE: label, C.CATEGORY: None,
                    C.CORRECTION: None, C.IS_GOLD: i % 4 == 0, C.GOLD_LABEL: truth if i % 4 == 0 else None,
                    "created_at": None, "updated_at": None,
                }
            )  # fmt: skip
    frame = pl.DataFrame(ann, schema=pull.ANNOTATION_SCHEMA)
    from pipeline.workspace import write_parquet

    write_parquet(frame.to_arrow(), ws.global_path(pull.ANNOTATIONS))
    for name, df in pull.labels_tables(frame).items():
        write_parquet(df.to_arrow(), ws.global_path(name))


@pytest.fixture(scope="module")
def research_ws(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A workspace published twice (v1: web preset; v2: `min_words = 5`), with simulated
    label tables."""
    cc = data_dir("commoncrawl_sample_dolma")
    sms_src = data_dir("sms_spam") / "SMSSpamCollection"
    root = tmp_path_factory.mktemp("research")
    write_sample(root / "sample")
    sms = pl.read_csv(sms_src, separator="\t", quote_char=None).head(300)
    sms.write_csv(root / "sms.tsv", separator="\t", quote_style="never")
    s = root / "sample"
    cfg = CurateConfig.model_validate(
        {
            "workspace": str(root / "ws"),
            "sources": [
                {"path": str(s / "texts.jsonl"), "name": "texts"},
                {"path": str(s / "images"), "name": "images", "captions": str(s / "captions.csv")},
                {"path": str(s / "businesses.csv"), "name": "businesses"},
                {"path": str(cc / "cc_en_head-*.jsonl.gz"), "name": "cc_en"},
                {"path": str(cc / "CC-MAIN-*.jsonl.gz"), "name": "cc_main"},
                {
                    "path": str(root / "sms.tsv"),
                    "name": "sms",
                    "modality": "text",
                    "text_field": "SMS",
                    "label_field": "Label",
                },  # fmt: skip
            ],
            "rules": {"record": {"required_fields": ["name", "address"]}},
            "stages": {"semantic": True},
        }
    )
    r1 = run_local(cfg)
    looser = cfg.model_copy(deep=True)  # v2 lets short texts (SMS) through
    looser.rules.text.min_words = 5
    r2 = run_local(looser)
    assert not r2.published.skipped
    _simulate_labels(r2.workspace)
    return {"ws": r2.workspace, "d1": r1.decisions, "d2": r2.decisions, "m1": r1.published.manifest,
            "m2": r2.published.manifest, "root": root}  # fmt: skip


def _by_id(t: pa.Table) -> dict[str, tuple[str, str | None]]:
    return {
        i: (d, r)
        for i, d, r in zip(
            t[C.ID].to_pylist(), t[C.DECISION].to_pylist(), t[C.REASON].to_pylist(), strict=True
        )
    }


def test_two_publishes_give_two_versions_and_a_diff_that_matches_sql(research_ws: dict) -> None:
    from pipeline import versions

    ws = research_ws["ws"]
    vs = versions.list_versions(ws)
    assert [v.number for v in vs] == [1, 2] and [v.current for v in vs] == [False, True]
    assert vs[0].manifest["config_hash"] != vs[1].manifest["config_hash"]
    out = curate("versions", "-w", str(ws.root)).stdout
    assert "v1" in out and "v2*" in out and vs[1].manifest["config_hash"] in out

    d = versions.diff(ws, "v1", "v2", show=3)
    c = d["counts"]
    # against the decisions each run returned (not read back from the workspace)
    a, b = _by_id(research_ws["d1"]), _by_id(research_ws["d2"])
    both = a.keys() & b.keys()
    assert c["added"] == len(b.keys() - a.keys()) and c["removed"] == len(a.keys() - b.keys())
    assert c["changed_decision"] == sum(a[i][0] != b[i][0] for i in both) > 0
    assert c["changed_reason"] == sum(a[i][0] == b[i][0] and a[i][1] != b[i][1] for i in both) > 0
    keep_a = {i for i, (dd, _) in a.items() if dd == C.KEEP}
    keep_b = {i for i, (dd, _) in b.items() if dd == C.KEEP}
    assert c["entered_shards"] == len(keep_b - keep_a) > 0 and c["left_shards"] == len(keep_a - keep_b)
    # against SQL over the per-version views
    con = connect(ws.root)

    def q(sql: str) -> int:
        return con.execute(sql).fetchall()[0][0]

    assert c["changed_decision"] == q(
        "SELECT count(*) FROM decisions_v1 a JOIN decisions_v2 b USING (id) WHERE a.decision <> b.decision"
    )
    assert c["left_shards"] == q("SELECT count(*) FROM shards_v1 WHERE id NOT IN (SELECT id FROM shards_v2)")
    assert c["entered_shards"] == q(
        "SELECT count(*) FROM shards_v2 WHERE id NOT IN (SELECT id FROM shards_v1)"
    )
    assert q("SELECT count(*) FROM shards_v1") == research_ws["m1"]["rows"]
    assert (
        q("SELECT count(*) FROM shards_v2") == q("SELECT count(*) FROM shards") == research_ws["m2"]["rows"]
    )
    assert q("SELECT count(*) FROM versions WHERE current") == 1
    # the why: every change is one transition, and the looser rules are why records entered the shards
    assert sum(t["n"] for t in d["transitions"]) == c["changed_decision"] + c["changed_reason"]
    freed = sum(t["n"] for t in d["transitions"] if t["from"] == "drop:too_few_words" and t["to"] == "keep")
    sql_freed = q(
        "SELECT count(*) FROM decisions_v1 a JOIN decisions_v2 b USING (id) "
        "WHERE a.reason = 'too_few_words' AND b.decision = 'keep'"
    )
    assert freed == sql_freed > 0
    shown_ex = d["examples"]["entered_shards"]
    assert 0 < len(shown_ex) <= 3 and all(e["excerpt"] and e["to"] == "keep" for e in shown_ex)
    # the command line says the same
    shown = json.loads(curate("diff", "-w", str(ws.root), "v1", "v2", "--json").stdout)
    assert shown["counts"] == c
    text = curate("diff", "-w", str(ws.root), "v1", "--show", "2").stdout
    assert "changed decision" in text and "too_few_words" in text
    bad = curate("diff", "-w", str(ws.root), "v9", check=False)
    assert bad.returncode == 1 and "no version 'v9'" in bad.stderr and "v1, v2" in bad.stderr


def test_gc_never_deletes_the_current_version_and_holds_the_lock(research_ws: dict, tmp_path: Path) -> None:
    from pipeline.lock import workspace_lock
    from pipeline.versions import list_versions

    root = tmp_path / "ws"
    shutil.copytree(research_ws["ws"].root, root)
    ws = Workspace(root)
    # roll the current version back to v1 (as if v2 were withdrawn): gc --keep 0 must keep v1 only
    shutil.copyfile(ws.version_dir(1) / "manifest.json", ws.manifest_path)
    held = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with workspace_lock(root, "test holder"):
            held.set()
            release.wait(60)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(30)
    try:
        busy = curate("gc", "-w", str(root), "--keep", "0", check=False)
    finally:
        release.set()
        t.join()
    assert busy.returncode == 1 and "in use" in busy.stderr and ws.versions() == [1, 2]
    dry = curate("gc", "-w", str(root), "--keep", "0", "--dry-run")
    assert "would delete v2" in dry.stderr and ws.versions() == [1, 2]
    curate("gc", "-w", str(root), "--keep", "0")
    assert ws.versions() == [1] and [v.current for v in list_versions(ws)] == [True]
    con = connect(root)
    assert con.execute("SELECT count(*) FROM shards").fetchall()[0][0] == research_ws["m1"]["rows"]
    assert con.execute("SELECT list(version) FROM versions").fetchall()[0][0] == [1]


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it: apt-get install -y chromium)")
    return exe


class DevTools:
    """A headless Chromium driven over the DevTools protocol (one page)."""

    def __init__(self, exe: str, profile: Path) -> None:
        self.proc = subprocess.Popen(
            [exe, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--remote-debugging-port=0", f"--user-data-dir={profile}", "--window-size=1300,900",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            assert time.monotonic() < deadline and self.proc.poll() is None, "chromium did not start"
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = []
        while not pages:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
                pages = [p for p in json.load(r) if p["type"] == "page"]
        from websockets.sync.client import connect as ws_connect

        self.sock = ws_connect(pages[0]["webSocketDebuggerUrl"], max_size=None)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params: object) -> dict:
        self.next_id += 1
        self.sock.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.sock.recv(timeout=60))
            if msg.get("id") == self.next_id:
                assert "error" not in msg, msg
                return msg["result"]
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method for e in self.events):
            self.events.append(json.loads(self.sock.recv(timeout=max(0.1, deadline - time.monotonic()))))

    def open(self, url: str) -> None:
        self.events.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")
        self.call("Runtime.evaluate", expression="1")  # drain what the load logged

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries since the last open()."""
        out = []
        for e in self.events:
            m, p = e.get("method"), e.get("params", {})
            if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                out.append(json.dumps(p.get("args")))
            elif m == "Runtime.exceptionThrown":
                out.append(json.dumps(p.get("exceptionDetails")))
            elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                out.append(p["entry"].get("text", ""))
        return out

    def requests(self) -> list[str]:
        return [
            e["params"]["request"]["url"]
            for e in self.events
            if e.get("method") == "Network.requestWillBeSent"
        ]

    def evaluate(self, js: str) -> object:
        return self.call("Runtime.evaluate", expression=js, returnByValue=True)["result"].get("value")

    def close(self) -> None:
        self.sock.close()
        self.proc.terminate()
        self.proc.wait(30)


PLOTS_JS = """JSON.stringify([...document.querySelectorAll('figure.plot')].map(f => {
  const svg = f.querySelector('svg'); if (!svg) return null;
  const r = svg.getBoundingClientRect();
  return {section: f.closest('section').id, w: r.width, h: r.height,
          marks: svg.querySelectorAll('path, use, rect').length,
          drawn: [...svg.querySelectorAll('path')].filter(p => {
            const b = p.getBBox(); return b.width > 0 && b.height > 0; }).length};
}))"""


def test_report_page_draws_its_plots_in_headless_chromium(research_ws: dict, tmp_path: Path) -> None:
    exe = _chromium()
    page = tmp_path / "report.html"
    msg = curate("report", "-w", str(research_ws["ws"].root), "--out", str(page))
    assert str(page) in msg.stderr.replace("\n", "")
    html = page.read_text()
    assert "<script" not in html and not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    browser = DevTools(exe, tmp_path / "profile")
    try:
        for domain in ("Runtime", "Log", "Network", "Page"):
            browser.call(f"{domain}.enable")
        # the checker sees console errors (a page that logs one)
        browser.open("data:text/html,<script>console.error('planted')</script>")
        assert any("planted" in e for e in browser.errors())
        browser.open(page.as_uri())
        assert browser.errors() == []
        fetched = [u for u in browser.requests() if not u.startswith("data:")]  # inline thumbnails
        assert fetched == [page.as_uri()]  # nothing fetched beyond the page itself
        plots = json.loads(browser.evaluate(PLOTS_JS))  # type: ignore[arg-type]
    finally:
        browser.close()
    sections = {p["section"] for p in plots if p}
    assert {"funnel", "drops", "scores", "clusters", "languages", "labels"} <= sections, plots
    for p in plots:
        assert p and p["w"] > 200 and p["h"] > 100 and p["drawn"] > 20, p
    # the plotted numbers come from the catalog: the funnel's SQL and the examples are on the page
    assert (
        "SELECT count(*) FROM decisions WHERE reason IS NOT NULL AND (reason = &#x27;exact_dup&#x27;)" in html
    )
    assert "drop: too_few_words" in html
    assert "ann-a" in html and "gold_accuracy" in html


@pytest.mark.parametrize("name", ["01_explore", "02_report"])
def test_notebook_runs_on_a_workspace(research_ws: dict, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import nbformat
    from nbclient import NotebookClient

    path = ROOT / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), (
        "commit notebooks without outputs"
    )
    monkeypatch.setenv("CURATE_WORKSPACE", str(research_ws["ws"].root))
    NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    ).execute()
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    text = json.dumps([c.get("outputs", []) for c in nb.cells])
    assert str(research_ws["ws"].root) in text  # it read the workspace the variable names
    if name == "02_report":
        assert text.count("image/svg+xml") >= 6 and "v1 -> v2" in text


def test_exports_load_with_datasets_and_the_card_tells_where_they_came_from(
    research_ws: dict, tmp_path: Path
) -> None:
    import datasets

    from pipeline import loaders

    ws, m = research_ws["ws"], research_ws["m2"]
    curate("export", "-w", str(ws.root), "--format", "hf", "--out", str(tmp_path / "hf"))
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    shard_ids = connect(ws.root).execute("SELECT list(id ORDER BY id) FROM shards").fetchall()[0][0]
    assert ds.num_rows == m["rows"] and ds["id"] == shard_ids
    images = ds.filter(lambda r: r[C.MODALITY] == C.IMAGE_MODALITY)
    assert images.num_rows > 0 and isinstance(images.features[C.IMAGE], datasets.Image)
    first = images[0]
    assert first[C.IMAGE].size == (first[C.WIDTH], first[C.HEIGHT])  # decoded from the shard's bytes
    card = (tmp_path / "hf" / "README.md").read_text()
    assert card.startswith("---\nlicense: other\n") and m["config_hash"] in card and "## How to cite" in card
    for reason, n in m["counts"]["by_reason"].items():
        assert f"| dropped | {reason} | {n} |" in card
    provenance = (DATA / "commoncrawl_sample_dolma" / "PROVENANCE.md").read_text().splitlines()
    cc_licence = next(x for x in provenance if x.startswith("License:"))[len("License:") :].strip()
    assert re.search(rf"\| cc_main \|.*\| {re.escape(cc_licence)} \|", card)
    assert "| sms |" in card and "not stated" in card  # the SMS copy in tmp has no licence beside it
    # parquet and jsonl, and the previous version
    curate(
        "export", "-w", str(ws.root), "--format", "parquet", "--out", str(tmp_path / "pq"), "--version", "v1"
    )
    pq_ds = datasets.load_dataset("parquet", data_files=str(tmp_path / "pq" / "*.parquet"), split="train")
    assert pq_ds.num_rows == research_ws["m1"]["rows"]
    curate("export", "-w", str(ws.root), "--format", "jsonl", "--out", str(tmp_path / "jl"))
    jl = datasets.load_dataset("json", data_files=str(tmp_path / "jl" / "*.jsonl"), split="train")
    assert jl.num_rows == m["rows"] and sorted(jl["id"]) == shard_ids
    again = curate("export", "-w", str(ws.root), "--out", str(tmp_path / "hf"), check=False)
    assert again.returncode == 1 and "not empty" in again.stderr
    # the shards themselves: IPC files, which Dataset.from_file (IPC streams only) cannot read
    shards = loaders.shard_paths(ws.root)
    with pytest.raises(Exception):  # noqa: B017 - whatever datasets raises, the README points elsewhere
        datasets.Dataset.from_file(shards[0])
    via_arrow = datasets.load_dataset(
        "arrow", data_files=shards, split="train", cache_dir=str(tmp_path / "hf-cache")
    )
    assert via_arrow.num_rows == m["rows"] == loaders.hf_dataset(ws.root).num_rows


def test_torch_loader_gives_text_and_label_batches(research_ws: dict) -> None:
    import torch
    from torch.utils.data import DataLoader

    from pipeline import loaders

    ws = research_ws["ws"]
    # the plain way fails: default collation cannot batch the nulls of a published shard
    with pytest.raises(TypeError):
        next(iter(DataLoader(loaders.hf_dataset(ws.root).with_format(None), batch_size=64)))
    dl = loaders.torch_loader(ws.root, label="Label", batch_size=16)
    assert dl.dataset.classes == ["ham", "spam"]
    batches = list(dl)
    n_text = connect(ws.root).execute("SELECT count(*) FROM shards WHERE text IS NOT NULL").fetchall()[0][0]
    assert sum(len(b["text"]) for b in batches) == n_text
    labels = torch.cat([b["label"] for b in batches])
    assert labels.dtype == torch.long and set(labels.tolist()) <= {-1, 0, 1}
    sms_kept = (
        connect(ws.root)
        .execute("SELECT count(*) FROM shards WHERE json_extract_string(meta, '$.Label') IS NOT NULL")
        .fetchall()[0][0]
    )
    assert int((labels >= 0).sum()) == sms_kept > 0
    assert all(isinstance(t, str) for b in batches for t in b["text"])


def readme_sql_examples() -> list[str]:
    """Every `curate sql ...` line of a ```bash block in README.md."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, flags=re.DOTALL):
        for line in block.splitlines():
            s = line.strip()
            s = re.sub(r"^(\.venv/bin/)?curate", "curate", s)
            if s.startswith("curate sql "):
                lines.append(s)
    return lines


def test_readme_sql_examples_all_run(research_ws: dict, tmp_path: Path) -> None:
    examples = readme_sql_examples()
    assert len(examples) >= 4, examples
    root = str(research_ws["ws"].root)
    for line in examples:
        args = shlex.split(line, comments=True)[2:]
        if ">" in args:  # a redirect to a file: the output is checked below instead
            args = args[: args.index(">")]
        for i, a in enumerate(args):
            if a in ("-w", "--workspace"):
                args[i + 1] = root
        proc = curate("sql", *args, check=False)
        assert proc.returncode == 0, f"README example failed: {line}\n{proc.stderr}"
        query = next(a for a in args if a.lstrip().upper().startswith(("SELECT", "WITH", "FROM")))
        n = connect(root).execute(f"SELECT count(*) FROM ({query})").fetchall()[0][0]
        if "--format" in args and args[args.index("--format") + 1] == "csv":
            assert len(list(csv.reader(io.StringIO(proc.stdout)))) == n + 1, line
        assert n > 0, f"README example returns nothing on the test workspace: {line}"


def test_sql_prints_list_struct_and_binary_columns_in_every_format(research_ws: dict) -> None:
    root = str(research_ws["ws"].root)
    q = (
        "SELECT id, pii_kinds, {'kinds': pii_kinds, 'n': pii_count} AS s, image, map(['k'], [1]) AS m "
        "FROM records WHERE pii_count > 0 OR image IS NOT NULL ORDER BY id"
    )
    rows = list(csv.DictReader(io.StringIO(curate("sql", "-w", root, "--format", "csv", q).stdout)))
    with_pii = [r for r in rows if r["pii_kinds"] not in ("", "[]")]
    assert with_pii and all(isinstance(json.loads(r["pii_kinds"]), list) for r in with_pii)
    assert json.loads(with_pii[0]["s"])["kinds"] == json.loads(with_pii[0]["pii_kinds"])
    magic = (b"\x89PNG", b"\xff\xd8\xff")  # PNG, JPEG
    assert any(r["image"] and bytes.fromhex(r["image"]).startswith(magic) for r in rows)
    lines = [json.loads(x) for x in curate("sql", "-w", root, "--format", "json", q).stdout.splitlines()]
    assert len(lines) == len(rows) and any(isinstance(x["pii_kinds"], list) and x["pii_kinds"] for x in lines)
    table = curate("sql", "-w", root, q).stdout
    assert '["' in table and "bytes>" in table


def test_report_and_versions_on_a_workspace_not_yet_published(tmp_path: Path) -> None:
    write_sample(tmp_path / "sample")
    ws = tmp_path / "ws"
    curate("ingest", str(tmp_path / "sample" / "texts.jsonl"), "-w", str(ws))
    curate("report", "-w", str(ws), "--out", str(tmp_path / "r.html"))
    page = (tmp_path / "r.html").read_text()
    assert "not published" in page and "No label tables yet" in page and "<svg" in page  # funnel of ingest
    assert "no published versions yet" in curate("versions", "-w", str(ws)).stderr
    refused = curate("export", "-w", str(ws), "--out", str(tmp_path / "x"), check=False)
    assert refused.returncode == 1 and "nothing published" in refused.stderr
    gone = curate("report", "-w", str(tmp_path / "absent"), "--out", str(tmp_path / "y.html"), check=False)
    assert gone.returncode == 1 and "no such workspace" in gone.stderr and not (tmp_path / "y.html").exists()

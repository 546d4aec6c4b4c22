"""The labelling round trip against a REAL Label Studio server (started once, loopback, temp data dir).

The workspace holds real SMS messages (../shared/data/sms_spam, ham = keep, spam = drop) and a quality
score from a classifier trained on other SMS; two annotators answer through the API from the real labels,
except that annotator B gets one gold task wrong (the one disagreement). Checks run in SQL with DuckDB.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from labeling import config_xml, pull, push, server
from labeling.client import PROJECT_PREFIX, Client, LabelStudioError
from pipeline.decide import decide
from pipeline.workspace import Workspace
from schemas import columns as C
from schemas.labeling import LabelingConfig, QueueConfig
from schemas.record import RECORD_SCHEMA

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SMS = DATA / "sms_spam" / "SMSSpamCollection"
CIFAR = DATA / "cifar10_sample"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")

N_RECORDS = 300
ANSWER = {"ham": "keep", "spam": "drop"}


def sms_rows() -> list[tuple[str, str]]:
    """(label, text) of every SMS in file order."""
    return [tuple(ln.split("\t", 1)) for ln in SMS.read_text(encoding="utf-8").splitlines()[1:]]  # type: ignore[misc]


def write_ingest(ws: Path, part: str, ids: list[str], modality: str, texts: list[str | None],
                 images: list[bytes | None] | None = None, source_file: str = "") -> None:  # fmt: skip
    """Record rows as the ingest stage writes them."""
    n = len(ids)
    none = [None] * n
    t = pa.table(
        {
            C.ID: ids,
            C.SOURCE: [part] * n,
            C.MODALITY: [modality] * n,
            C.TEXT: texts,
            C.IMAGE: images or none,
            C.IMAGE_PATH: none,
            C.WIDTH: none,
            C.HEIGHT: none,
            C.IMAGE_FORMAT: none,
            C.DATA: none,
            C.META: none,
            C.SOURCE_FILE: [source_file] * n,
            C.SOURCE_ROW: list(range(1, n + 1)),
        },  # fmt: skip
        schema=RECORD_SCHEMA,
    )
    (ws / "ingest").mkdir(parents=True, exist_ok=True)
    pq.write_table(t, ws / "ingest" / f"{part}.parquet")


@pytest.fixture(scope="session")
def ls(tmp_path_factory: pytest.TempPathFactory):
    """A real Label Studio server for the session, data dir inside a temp workspace."""
    root = tmp_path_factory.mktemp("ls_ws")
    s = server.start(root, LabelingConfig(start_timeout_s=400))
    try:
        yield root, s
    finally:
        server.stop(root)


@pytest.fixture(scope="module")
def sms_ws(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Workspace of 300 real SMS + a real quality score + 6 gold records; returns (root, id -> answer)."""
    from sklearn.linear_model import LogisticRegression

    from quality.embed import embed_texts
    from schemas.embed import EmbedConfig

    rows = sms_rows()
    ws = tmp_path_factory.mktemp("sms_ws")
    ids = [f"sms-{i + 2}" for i in range(N_RECORDS)]
    texts = [r[1] for r in rows[:N_RECORDS]]
    write_ingest(ws, "sms", ids, C.TEXT_MODALITY, texts, source_file=str(SMS))  # type: ignore[arg-type]
    train = rows[N_RECORDS : N_RECORDS + 1500]
    cfg = EmbedConfig(embedder="static", device="cpu")
    model = LogisticRegression(max_iter=2000).fit(
        embed_texts([t for _, t in train], cfg), [lab == "ham" for lab, _ in train]
    )
    quality = model.predict_proba(embed_texts(texts, cfg))[:, 1]
    (ws / "score").mkdir()
    pq.write_table(pa.table({C.ID: ids, C.QUALITY: quality}), ws / "score" / "sms.parquet")
    truth = {i: ANSWER[r[0]] for i, r in zip(ids, rows[:N_RECORDS], strict=True)}
    spam = [i for i in ids if truth[i] == "drop"][:2]
    ham = [i for i in ids if truth[i] == "keep"][:4]
    pl.DataFrame({C.ID: spam + ham, C.LABEL_VALUE: [truth[i] for i in spam + ham]}).write_parquet(
        ws / "gold.parquet"
    )
    return ws, truth


def cfg_for(**kw) -> LabelingConfig:
    return LabelingConfig(budget=6, gold_rate=0.3, overlap=2, retries=1, backoff_s=0.1, **kw)


def test_every_labelling_config_is_accepted_by_the_server(ls) -> None:
    _, s = ls
    client = Client(s)
    classes = sorted({ln.split(",")[1] for ln in (CIFAR / "labels.csv").read_text().splitlines()[1:]})
    queues = [
        QueueConfig(name="cfg text", task="text_classification", categories=["science", "health"]),
        QueueConfig(name="cfg image", task="image_classification", choices=classes),
        QueueConfig(name="cfg caption", task="caption_check"),
        QueueConfig(name="cfg record", task="record_review"),
    ]
    for q in queues:
        pid = client.ensure_project(f"check {q.name}", config_xml.label_config(q), 1)
        got = client.sdk.projects.get(id=pid)
        assert f'name="{config_xml.LABEL_CONTROL}"' in got.label_config
        assert client.ensure_project(f"check {q.name}", config_xml.label_config(q), 1) == pid  # found again


def test_round_trip_consensus_agreement_gold_in_sql(ls, sms_ws) -> None:
    _, s = ls
    ws, truth = sms_ws
    cfg = cfg_for()
    r = push.push(ws, cfg, server=s)
    text = next(q for q in r.queues if q.queue == "text")
    assert (text.selected, text.gold) == (6, 2)
    assert text.imported == 8
    tasks = pl.read_parquet(ws / "label_tasks.parquet")
    assert tasks.height == 8 and tasks[C.IS_GOLD].sum() == 2
    assert tasks[C.ID].n_unique() == 8

    # predictions went in as pre-annotations with their scores
    client = Client(s, cfg)
    on_server = list(client.iter_tasks(text.project_id))
    assert len(on_server) == 8
    by_record = {t["data"]["record_id"]: t for t in on_server}
    for row in tasks.iter_rows(named=True):
        pred = by_record[row[C.ID]]["predictions"][0]
        assert pred["score"] == pytest.approx(row[C.PREDICTION_SCORE])
        assert pred["result"][0]["value"]["choices"] == [row[C.PREDICTION]]
    # the routed (non-gold) records are the most uncertain ones under the real quality score
    scores = pl.read_parquet(ws / "score" / "sms.parquet")
    picked = scores.filter(pl.col(C.ID).is_in(tasks.filter(~pl.col(C.IS_GOLD))[C.ID].to_list()))
    unpicked_gap = (scores[C.QUALITY] - 0.5).abs().median()
    assert (picked[C.QUALITY] - 0.5).abs().max() < unpicked_gap

    # crash after import, before the local table was written: re-push imports nothing twice
    (ws / "label_tasks.parquet").unlink()
    again = next(q for q in push.push(ws, cfg, server=s).queues if q.queue == "text")
    assert (again.imported, again.already) == (0, 8)
    rebuilt = pl.read_parquet(ws / "label_tasks.parquet").drop("pushed_at").sort(C.ID)
    assert rebuilt.equals(tasks.drop("pushed_at").sort(C.ID))
    assert len(list(client.iter_tasks(text.project_id))) == 8

    # pushed, not yet labelled: the routed records wait for humans and stay out of the shards
    dec = pl.from_arrow(decide(Workspace(ws)))
    waiting = dec.filter(pl.col(C.DECISION) == C.LABEL)
    assert sorted(waiting[C.ID]) == sorted(tasks.filter(~pl.col(C.IS_GOLD))[C.ID])
    assert set(waiting[C.REASON]) == {"awaiting_label"}

    # two annotators: B answers the first gold task wrong (the one disagreement)
    a = client.ensure_user("annotator.a@example.com", "Ann", "A")
    b = client.ensure_user("annotator.b@example.com", "Bob", "B")
    q = QueueConfig(name="text")
    wrong_on = tasks.filter(pl.col(C.IS_GOLD)).sort(C.TASK_ID)[C.ID][0]
    for rid, tid in tasks.select(C.ID, C.TASK_ID).iter_rows():
        right = truth[rid]
        other = "keep" if right == "drop" else "drop"
        client.annotate(tid, [config_xml.choice_result(q, right)], a)
        client.annotate(tid, [config_xml.choice_result(q, other if rid == wrong_on else right)], b)

    res = pull.pull(ws, cfg, server=s)
    assert (res.annotations, res.new) == (16, 16)
    con = duckdb.connect()
    for name in ("annotations", "labels", "annotators", "label_agreement"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{ws / (name + '.parquet')}')")

    # gold accuracy per annotator, recomputed in SQL from the raw annotations
    acc = dict(con.execute("SELECT annotator, gold_accuracy FROM annotators").fetchall())
    raw = dict(
        con.execute(
            "SELECT annotator, avg((label = gold_label)::DOUBLE) FROM annotations WHERE is_gold GROUP BY 1"
        ).fetchall()
    )
    assert acc == pytest.approx(raw)
    assert acc["annotator.a@example.com"] == 1.0
    assert acc["annotator.b@example.com"] == pytest.approx(0.5)  # one of two gold tasks wrong

    # consensus: every record gets the true answer; the disagreement goes to the better annotator
    rows = con.execute("SELECT id, label, label_confidence FROM labels").fetchall()
    labels = {rid: (lab, conf) for rid, lab, conf in rows}
    assert len(labels) == 8
    assert all(labels[rid][0] == truth[rid] for rid in labels)
    agreed = [conf for rid, (_, conf) in labels.items() if rid != wrong_on]
    assert labels[wrong_on][1] < min(agreed) and 0.5 < labels[wrong_on][1] < 1
    n_ann = con.execute("SELECT min(len(annotators)), max(n_annotations) FROM labels").fetchone()
    assert n_ann == (2, 2)

    # the human labels now decide those records (keep/drop as labelled, the label as the reason)
    dec = pl.from_arrow(decide(Workspace(ws))).filter(pl.col(C.ID).is_in(list(labels)))
    assert dec.height == 8
    assert all(
        d == truth[i] and r == f"label:{truth[i]}"
        for i, d, r in dec.select(C.ID, C.DECISION, C.REASON).rows()
    )

    # agreement: Fleiss' kappa recomputed in SQL equals the table's; alpha below 1 (one disagreement)
    kappa_sql = con.execute(
        """
        WITH c AS (SELECT id, label, count(*)::DOUBLE AS n FROM annotations GROUP BY ALL),
        item AS (SELECT id, (sum(n * n) - sum(n)) / (sum(n) * (sum(n) - 1)) AS p FROM c GROUP BY id),
        cls AS (SELECT label, sum(n) / (SELECT sum(n) FROM c) AS pj FROM c GROUP BY label),
        pe AS (SELECT sum(pj * pj) AS pe FROM cls)
        SELECT ((SELECT avg(p) FROM item) - pe) / (1 - pe) FROM pe
        """
    ).fetchone()[0]
    kappa, alpha, n_overlap = con.execute(
        "SELECT fleiss_kappa, krippendorff_alpha, n_overlap FROM label_agreement WHERE queue = 'text'"
    ).fetchone()
    assert kappa == pytest.approx(kappa_sql)
    assert n_overlap == 8 and 0 < alpha < 1

    # repeated pulls count nothing twice; a new annotation is added, not lost
    again = pull.pull(ws, cfg, server=s)
    assert (again.annotations, again.new) == (16, 0)
    c = client.ensure_user("annotator.c@example.com", "Cy", "C")
    tid = tasks.filter(pl.col(C.ID) == wrong_on)[C.TASK_ID][0]
    client.annotate(int(tid), [config_xml.choice_result(q, truth[wrong_on])], c)
    third = pull.pull(ws, cfg, server=s)
    assert (third.annotations, third.new) == (17, 1)
    con.close()

    # Label Studio down: retries, then a clear error, and nothing is written
    before = {n: (ws / f"{n}.parquet").read_bytes() for n in ("annotations", "labels", "annotators")}
    dead = server.Server(url=f"http://127.0.0.1:{server.free_port()}", token="x")
    with pytest.raises(LabelStudioError, match="did not answer"):
        pull.pull(ws, cfg, server=dead)
    assert {n: (ws / f"{n}.parquet").read_bytes() for n in before} == before


def test_images_without_scorer_use_diversity_and_data_urls(ls, tmp_path: Path) -> None:
    _, s = ls
    lines = (CIFAR / "labels.csv").read_text().splitlines()[1:]
    picked = lines[::50]  # 20 images, two per class
    ids = [f"cifar-{p.split(',')[0]}" for p in picked]
    images = [(CIFAR / p.split(",")[0]).read_bytes() for p in picked]
    write_ingest(tmp_path, "cifar", ids, C.IMAGE_MODALITY, [None] * len(ids), images, str(CIFAR))
    classes = sorted({p.split(",")[1] for p in lines})
    cfg = LabelingConfig(
        budget=5,
        gold_rate=0,
        queues=[QueueConfig(name="cifar", task="image_classification", choices=classes)],
    )
    r = push.push(tmp_path, cfg, server=s)
    assert r.queues[0].imported == 5
    tasks = pl.read_parquet(tmp_path / "label_tasks.parquet")
    assert tasks[C.UNCERTAINTY].null_count() == 5 and sorted(tasks[C.LABEL_RANK].to_list()) == [1, 2, 3, 4, 5]
    got = list(Client(s).iter_tasks(r.queues[0].project_id))
    assert all(t["data"]["image"].startswith("data:image/jpeg;base64,") for t in got)


def test_without_server_push_writes_an_import_file(sms_ws, tmp_path: Path) -> None:
    ws, _ = sms_ws
    copy = tmp_path / "ws"
    copy.mkdir()
    for sub in ("ingest", "score"):
        (copy / sub).mkdir()
        for f in (ws / sub).glob("*.parquet"):
            (copy / sub / f.name).write_bytes(f.read_bytes())
    r = push.push(copy, cfg_for(), server=None)
    text = next(q for q in r.queues if q.queue == "text")
    assert r.server is None and text.file is not None
    items = json.loads(Path(text.file).read_text())
    assert len(items) == text.selected == 6
    assert all(t["predictions"][0]["score"] >= 0.5 for t in items)
    assert not (copy / "label_tasks.parquet").exists()  # nothing counts as pushed


def test_cli_status_json_and_flow_round(ls, sms_ws, prefect_harness) -> None:
    from flows.label import label_flow
    from labeling.cli import label_app, labelstudio_app

    root, s = ls
    out = CliRunner().invoke(labelstudio_app, ["status", "--workspace", str(root), "--json"])
    assert out.exit_code == 0, out.output
    st = json.loads(out.output)
    assert st["running"] is True and st["url"] == s.url and st["token"] == s.token

    ws, _ = sms_ws
    # the flow uses the workspace's own server state: point it at the session server
    (ws / "labelstudio").mkdir(exist_ok=True)
    (ws / "labelstudio" / "server.json").write_text((root / "labelstudio" / "server.json").read_text())
    os.chmod(ws / "labelstudio" / "server.json", 0o600)
    cfg = cfg_for(wait_timeout_s=0, poll_s=1)
    result = label_flow(str(ws), cfg, budget=4)
    assert result["push"]["imported"] >= 4
    assert result["wait"]["timed_out"] is True
    assert result["pull"]["annotations"] >= 16
    assert result["retrain"]["queues"] == ["text"] and result["retrain"]["scored"] == N_RECORDS
    scores = pl.read_parquet(ws / "label_scores" / "sms.parquet")
    assert scores[C.UNCERTAINTY].is_between(0, 1).all() and scores.height == N_RECORDS
    assert set(scores[C.PREDICTION].unique().to_list()) <= {"keep", "drop"}
    out = CliRunner().invoke(label_app, ["pull", "--workspace", str(ws)])
    assert out.exit_code == 0, out.output
    assert "annotations" in out.output
    assert [t for t in Client(s).projects() if t.startswith(PROJECT_PREFIX)]
    assert np.isfinite(pl.read_parquet(ws / "labels.parquet")[C.LABEL_CONFIDENCE].to_numpy()).all()


# --- quality control: suggestions, gold that holds annotators, ties re-routed, audited dedup, rounds -----


def attach_server(ws: Path, root: Path) -> None:
    """Point a workspace at the session's Label Studio server (as `curate labelstudio up` would)."""
    (ws / "labelstudio").mkdir(parents=True, exist_ok=True)
    (ws / "labelstudio" / "server.json").write_text((root / "labelstudio" / "server.json").read_text())
    os.chmod(ws / "labelstudio" / "server.json", 0o600)


@pytest.fixture(scope="module")
def sms_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A real curation run (ingest, rules, exact + near dedup, decide) over 1,200 real SMS, no trained
    model; returns (workspace, id -> ham/spam)."""
    from pipeline.steps import run_local
    from schemas.config import CurateConfig

    tmp = tmp_path_factory.mktemp("sms_run")
    rows = sms_rows()[:1200]
    path = tmp / "sms.tsv"
    path.write_text("Label\tSMS\n" + "".join(f"{lab}\t{t}\n" for lab, t in rows), encoding="utf-8")
    cfg = CurateConfig.model_validate({
        "workspace": str(tmp / "ws"),
        "sources": [{"path": str(path), "modality": "text", "text_field": "SMS", "id_field": None,
                     "label_field": "Label"}],
        "rules": {"text": {"preset": "short"}},
        "stages": {"pii": False, "semantic": False, "lang": False, "embed": False},
    })  # fmt: skip
    run = run_local(cfg)
    ws = run.workspace.root
    recs = pl.scan_parquet(sorted((ws / "ingest").glob("*.parquet"))).select(C.ID, C.META).collect()
    truth = {i: json.loads(m)["Label"] for i, m in recs.iter_rows()}
    return ws, truth


def copy_ws(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("labelstudio"))
    return dst


def test_every_pushed_task_has_a_suggestion_without_a_trained_model(ls, sms_run, tmp_path: Path) -> None:
    root, s = ls
    ws = copy_ws(sms_run[0], tmp_path / "ws")
    truth = {k: ANSWER[v] for k, v in sms_run[1].items()}
    cfg = LabelingConfig(budget=12, gold_rate=0, overlap=1, retries=1, backoff_s=0.1,
                         queues=[QueueConfig(name="sugg", task="text_classification")])  # fmt: skip
    r = push.push(ws, cfg, server=s)
    q = r.queues[0]
    assert q.imported == 12
    client = Client(s, cfg)
    on_server = list(client.iter_tasks(q.project_id))
    assert len(on_server) == 12
    project = client.sdk.projects.get(id=q.project_id)
    for t in on_server:  # a suggestion on every task, saying where it came from, shown to annotators
        (pred,) = t["predictions"]
        assert pred["model_version"].startswith("curate-") and pred["result"][0]["value"]["choices"][0] in (
            "keep", "drop")  # fmt: skip
    versions = {t["predictions"][0]["model_version"] for t in on_server}
    assert project.model_version in versions
    # no labels yet and no model: the rules' verdicts are the weak labels
    assert versions <= {"curate-weak-rules", "curate-rules"}
    tasks = pl.read_parquet(ws / "label_tasks.parquet")
    assert tasks["model_version"].null_count() == 0

    # annotate half of them; the pull refreshes the other half's suggestions from the labels (kNN)
    a = client.ensure_user("sugg.a@example.com")
    qc = QueueConfig(name="sugg")
    done = tasks.sort(C.TASK_ID).head(6)
    for rid, tid in done.select(C.ID, C.TASK_ID).iter_rows():
        client.annotate(tid, [config_xml.choice_result(qc, truth[rid])], a)
    pull.pull(ws, cfg, server=s)
    changed = push.refresh_predictions(ws, cfg, server=s)
    after = {t["id"]: t for t in client.iter_tasks(q.project_id)}
    pending = tasks.filter(~pl.col(C.ID).is_in(done[C.ID].to_list()))
    assert changed == pending.height == 6
    for tid in pending[C.TASK_ID].to_list():
        (pred,) = after[tid]["predictions"]
        assert pred["model_version"] == "curate-knn-6"
    assert client.sdk.projects.get(id=q.project_id).model_version == "curate-knn-6"


def test_failed_gold_holds_an_annotator_and_ties_are_rerouted(ls, sms_run, tmp_path: Path) -> None:
    from labeling.cli import label_app

    root, s = ls
    ws = copy_ws(sms_run[0], tmp_path / "ws")
    truth = {k: ANSWER[v] for k, v in sms_run[1].items()}
    texts = dict(
        pl.scan_parquet(sorted((ws / "ingest").glob("*.parquet"))).select(C.ID, C.TEXT).collect().iter_rows()
    )
    dec = pl.read_parquet(ws / "decisions.parquet")
    unique = dec.filter(pl.col(C.REASON).is_null())[C.ID].to_list()
    gold_ids = [i for i in unique if truth[i] == "drop"][:2] + [i for i in unique if truth[i] == "keep"][:3]
    gold_file = tmp_path / "gold.csv"  # the documented format: text (or id), label
    pl.DataFrame({"text": [texts[i] for i in gold_ids], "label": [truth[i] for i in gold_ids]}).write_csv(
        gold_file
    )
    cfg = LabelingConfig.model_validate({
        "budget": 6, "gold_rate": 0.5, "overlap": 2, "retries": 1, "backoff_s": 0.1, "gold": str(gold_file),
        "min_gold_answers": 3, "min_gold_accuracy": 0.7, "gold_from_data": False,
        "queues": [{"name": "qc", "task": "text_classification"}],
    })  # fmt: skip
    r = push.push(ws, cfg, server=s)
    assert (r.queues[0].selected, r.queues[0].gold) == (6, 3)
    tasks = pl.read_parquet(ws / "label_tasks.parquet").sort(C.TASK_ID)
    assert set(tasks.filter(pl.col(C.IS_GOLD))[C.ID]) <= set(gold_ids)
    client = Client(s, cfg)
    a, b, c = (client.ensure_user(f"qc.{n}@example.com") for n in "abc")
    qc = QueueConfig(name="qc")
    normal = tasks.filter(~pl.col(C.IS_GOLD))
    tie_id, held_only_id = normal[C.ID][0], normal[C.ID][1]

    def flip(v: str) -> str:
        return "keep" if v == "drop" else "drop"

    for rid, tid, is_gold in tasks.select(C.ID, C.TASK_ID, C.IS_GOLD).iter_rows():
        right = truth[rid]
        if rid != held_only_id:
            client.annotate(tid, [config_xml.choice_result(qc, right)], a)  # A: always right
        client.annotate(tid, [config_xml.choice_result(qc, flip(right))], b)  # B: always wrong
        if is_gold:
            client.annotate(tid, [config_xml.choice_result(qc, right)], c)  # C: right on gold ...
        elif rid == tie_id:
            client.annotate(tid, [config_xml.choice_result(qc, flip(right))], c)  # ... disagrees with A once
    pull.pull(ws, cfg, server=s)
    con = duckdb.connect()
    for name in ("annotators", "labels"):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{ws / (name + '.parquet')}')")
    held = dict(con.execute("SELECT annotator, held FROM annotators WHERE annotator LIKE 'qc.%'").fetchall())
    assert held == {"qc.a@example.com": False, "qc.b@example.com": True, "qc.c@example.com": False}
    why = con.execute("SELECT held_reason FROM annotators WHERE held").fetchone()[0]
    assert "gold accuracy 0.0 on 3 gold answers" in why
    out = CliRunner().invoke(label_app, ["annotators", "-w", str(ws)])
    assert out.exit_code == 0, out.output
    assert "qc.b@example.com" in out.output and "held: gold accuracy 0.0" in out.output

    # B decides nothing: every label is A's (B answered the opposite on every record)
    labels = {rid: (lab, st, conf) for rid, lab, st, conf in con.execute(
        "SELECT id, label, label_status, label_confidence FROM labels").fetchall()}  # fmt: skip
    for rid in normal[C.ID]:
        if rid not in (tie_id, held_only_id):
            assert labels[rid][:2] == (truth[rid], "labelled")
    assert labels[held_only_id][:2] == (None, "held_only")  # only the held annotator answered it
    assert labels[tie_id][:2] == (None, "tie") and labels[tie_id][2] == pytest.approx(0.5)  # A vs C, 1-1
    dec = pl.from_arrow(decide(Workspace(ws))).filter(pl.col(C.ID).is_in([tie_id, held_only_id]))
    assert set(dec[C.DECISION]) == {C.LABEL}  # no label: still waiting for humans

    # the next push asks one more annotator for the tie (3 answers, one held: overlap 4, back in the label
    # stream); the
    # held-only task still waits for its second annotator (1 answer of 2), so it stays as it is
    again = push.push(ws, cfg, server=s, budget=0)
    assert again.queues[0].rerouted == 1
    for rid, want in ((tie_id, 4), (held_only_id, 2)):
        tid = int(tasks.filter(pl.col(C.ID) == rid)[C.TASK_ID][0])
        t = client.sdk.tasks.get(id=tid)
        assert (t.overlap, t.is_labeled) == (want, False)
    assert pl.read_parquet(ws / "label_tasks.parquet").filter(pl.col(C.ID) == tie_id)["overlap"][0] == 4
    assert push.push(ws, cfg, server=s, budget=0).queues[0].rerouted == 0  # asked once, not again

    d = client.ensure_user("qc.d@example.com")  # a fourth annotator breaks the tie, answers the other
    for rid in (tie_id, held_only_id):
        tid = int(tasks.filter(pl.col(C.ID) == rid)[C.TASK_ID][0])
        client.annotate(tid, [config_xml.choice_result(qc, truth[rid])], d)
    pull.pull(ws, cfg, server=s)
    got = pl.read_parquet(ws / "labels.parquet").filter(pl.col(C.ID).is_in([tie_id, held_only_id]))
    assert got[C.LABEL_VALUE].to_list() == [truth[i] for i in got[C.ID]]
    assert got["label_status"].to_list() == ["labelled"] * 2
    con.close()


def test_dedup_audit_gives_per_stage_precision_in_sql(ls, sms_run, tmp_path: Path) -> None:
    from pipeline.breakdown import summary_lines
    from pipeline.catalog import connect

    root, s = ls
    ws = copy_ws(sms_run[0], tmp_path / "ws")
    dd = pl.read_parquet(ws / "dedup.parquet").filter(pl.col(C.DUP_OF).is_not_null())
    by_reason = dict(dd.group_by(C.DUP_REASON).len().iter_rows())
    assert by_reason.get("exact_dup", 0) >= 4 and by_reason.get("near_dup", 0) >= 4  # real SMS copies
    cfg = LabelingConfig(retries=1, backoff_s=0.1, min_dedup_precision=0.8)
    r = push.push(ws, cfg, queue="dedup-audit", budget=8, server=s)
    q = r.queues[0]
    assert q.queue == "dedup-audit" and q.imported == 8
    tasks = pl.read_parquet(ws / "label_tasks.parquet")
    assert sorted(tasks.group_by("dedup_stage").len().rows()) == [("exact", 4), ("near", 4)]
    client = Client(s, cfg)
    on_server = list(client.iter_tasks(q.project_id))
    assert all(t["predictions"] and t["data"]["a"] and t["data"]["b"] for t in on_server)
    texts = dict(
        pl.scan_parquet(sorted((ws / "ingest").glob("*.parquet"))).select(C.ID, C.TEXT).collect().iter_rows()
    )
    # the auditor: same when the texts are equal ignoring case and spaces; near copies judged different
    aud = client.ensure_user("auditor@example.com")
    qa = QueueConfig(name="dedup-audit", task="pair_check")
    expected = {}
    for t in on_server:
        d = t["data"]
        same = " ".join(texts[d["record_id"]].lower().split()) == " ".join(
            texts[d["kept_id"]].lower().split()
        )
        expected.setdefault(d["dedup_stage"], []).append(same)
        client.annotate(t["id"], [config_xml.choice_result(qa, "same" if same else "different")], aud)
    pull.pull(ws, cfg, server=s)
    con = connect(ws)
    rows = con.execute(
        "SELECT dedup_stage, n_pairs, n_same, precision, ci_low, ci_high, flagged FROM dedup_audit ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in rows] == ["exact", "near"]
    for stage, n, same, prec, lo, hi, flagged in rows:
        assert n == 4 and same == sum(expected[stage]) and prec == pytest.approx(same / n)
        assert lo <= prec <= hi and hi - lo > 0.2  # n = 4: a wide interval
        assert flagged == (prec < 0.8)
    assert rows[0][3] == 1.0  # exact copies are the same text
    # audit answers neither decide records nor hold them as awaiting labels
    audited = tasks[C.ID].to_list()
    dec = pl.from_arrow(decide(Workspace(ws))).filter(pl.col(C.ID).is_in(audited))
    assert dec.height == 8 and set(dec[C.REASON]) <= {"exact_dup", "near_dup"}
    # the run summary shows the audit, and warns about a stage below min_dedup_precision
    from pipeline.breakdown import breakdown
    from schemas.config import CurateConfig

    run_cfg = CurateConfig.model_validate({"workspace": str(ws), "labeling": {"min_dedup_precision": 1.0}})
    b = breakdown(Workspace(ws), run_cfg, f"read_parquet('{ws / 'decisions.parquet'}')")
    lines = summary_lines({"breakdown": b})
    assert any(ln.startswith("dedup audit") and "exact 100% of 4" in ln for ln in lines)
    low = sorted(st for st, _, _, prec, *_ in rows if prec < 1.0)
    assert low == ["near"]  # near copies differ in a word or a sign: the auditor said different
    warned = sorted(ln.split()[1] for ln in lines if ln.startswith("warning:") and " dedup: only " in ln)
    assert warned == low


def test_annotator_quick_start_end_to_end(ls, sms_ws, tmp_path: Path) -> None:
    """The README's annotator quick start: push, two annotators answer, pull, round (what the CLI says)."""
    from labeling.cli import label_app

    root, s = ls
    src, truth = sms_ws
    ws = tmp_path / "ws"
    (ws / "ingest").mkdir(parents=True)
    for f in (src / "ingest").glob("*.parquet"):  # 40 real SMS, no scorer: the bootstrap suggests
        pl.read_parquet(f).head(40).write_parquet(ws / "ingest" / f.name)
    attach_server(ws, root)
    toml = tmp_path / "curate.toml"
    toml.write_text(
        "[labeling]\nbudget = 8\noverlap = 2\ngold_rate = 0.25\nmin_gold_answers = 2\n"
        f'gold = "{tmp_path / "gold.jsonl"}"\nqueues = [{{name = "sms", task = "text_classification"}}]\n'
    )
    ids = pl.read_parquet(next((ws / "ingest").glob("*.parquet")))[C.ID].to_list()
    gold = [i for i in ids if truth[i] == "drop"][:1] + [i for i in ids if truth[i] == "keep"][:3]
    (tmp_path / "gold.jsonl").write_text(
        "".join(json.dumps({"id": i, "label": truth[i]}) + "\n" for i in gold)
    )
    run = CliRunner()

    def cli(*args: str) -> str:
        conf = ["--config", str(toml)] if args[0] != "annotators" else []
        out = run.invoke(label_app, [*args, "-w", str(ws), *conf])
        assert out.exit_code == 0, out.output
        print(f"$ curate label {' '.join(args)} -w ws\n{out.output}")  # the README shows these
        return out.output

    first = cli("push")
    assert "sms: project" in first and "imported 10 (2 gold)" in first
    again = cli("push", "--budget", "0")
    assert "nothing to push: the budget is 0" in again
    client = Client(s)
    tasks = pl.read_parquet(ws / "label_tasks.parquet")
    users = [client.ensure_user(f"qs.{n}@example.com") for n in ("ann", "bob")]
    q = QueueConfig(name="sms")
    for rid, tid in tasks.select(C.ID, C.TASK_ID).iter_rows():
        for u in users:
            client.annotate(tid, [config_xml.choice_result(q, truth[rid])], u)
    pulled = cli("pull")
    assert "20 annotations (20 new) from 1 projects -> 10 labels" in pulled
    assert "consensus: 10 records labelled" in pulled
    labels = pl.read_parquet(ws / "labels.parquet").filter(pl.col(C.QUEUE) == "sms")
    assert labels.height == 10 and labels["label_status"].to_list() == ["labelled"] * 10
    rnd = cli("round")
    assert "pull: 20 annotations (0 new)" in rnd
    assert "suggestions refreshed" in rnd and "push: sms: project" in rnd
    assert "imported 10 (2 gold)" in rnd
    tasks = pl.read_parquet(ws / "label_tasks.parquet")
    assert tasks.height == 20 and tasks["model_version"].null_count() == 0
    new = tasks.filter(pl.col("pushed_at") == tasks["pushed_at"].max())
    # the next tasks' suggestions come from the classifier retrained on the 10 labels (kNN when it could not)
    want = "curate-retrained" if "retrain: sms:" in rnd else "curate-knn-10"
    assert set(new["model_version"]) == {want}
    ann = cli("annotators")
    assert "qs.ann@example.com" in ann and "held" not in ann
    rest = cli("push", "--budget", "100")  # the rest of the records, and gold made from the data
    assert "imported 25 (5 gold)" in rest  # the gold file is used up: 5 copies of records both agreed on
    copies = pl.read_parquet(ws / "label_tasks.parquet").filter(pl.col("copy") > 0)
    agreed = dict(pl.read_parquet(ws / "gold_from_data.parquet").select(C.ID, C.GOLD_LABEL).iter_rows())
    assert copies.height == 5 and copies[C.IS_GOLD].all()
    assert all(agreed[i] == g == truth[i] for i, g in copies.select(C.ID, C.GOLD_LABEL).iter_rows())
    left = cli("push")
    labelled = pl.read_parquet(ws / "labels.parquet")[C.ID].to_list()
    normal = pl.read_parquet(ws / "label_tasks.parquet").filter(~pl.col(C.IS_GOLD))
    waiting = normal.filter(~pl.col(C.ID).is_in(labelled)).height
    assert waiting == normal.height - 8 > 0
    assert f"sms: nothing to push: {waiting} tasks still await labels in project 1" in left
    assert "40 of its 40 records were pushed before" in left

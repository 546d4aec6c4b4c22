"""Ingest on real data: every reader, quarantine with reasons, stable ids, resumable markers."""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import data_dir, read_stage

from pipeline.ingest import IngestError, expand_source, ingest_input, read_source
from pipeline.workspace import Workspace
from schemas import columns as C
from schemas.config import IngestConfig, SourceConfig


def _ingest(ws: Workspace, **src: object) -> list:
    return [ingest_input(i, IngestConfig(), ws) for i in expand_source(SourceConfig(**src))]


def _cc_lines(cc_dir: Path, n: int) -> list[bytes]:
    path = cc_dir / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"
    with gzip.open(path, "rb") as f:
        return [next(f).rstrip(b"\n") for _ in range(n)]


def test_commoncrawl_reads_every_record_with_stable_ids(cc_dir: Path, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    results = _ingest(ws, path=str(cc_dir / "*.jsonl.gz"))
    assert sum(r.records for r in results) == 717
    assert sum(r.quarantined for r in results) == 0
    t = read_stage(ws.root, "ingest")
    ids = t[C.ID].to_pylist()
    assert len(set(ids)) == len(ids) == 717
    first = json.loads(_cc_lines(cc_dir, 1)[0])
    row = pl.from_arrow(t).filter(
        pl.col(C.ID) == f"CC-MAIN-20190717121559-20190717143559-00140/{first['id']}"
    )
    assert row[C.TEXT][0] == first["text"]
    assert json.loads(row[C.META][0])["version"] == first["version"]
    assert row[C.SOURCE_ROW][0] == 1


def test_bad_jsonl_rows_go_to_quarantine_and_the_rest_is_processed(cc_dir: Path, tmp_path: Path) -> None:
    good = _cc_lines(cc_dir, 20)
    bad_truncated = good[3][: len(good[3]) // 2]
    bad_utf8 = b'{"id": "latin1", "text": "caf\xe9"}'
    bad_missing = json.dumps({"id": "no-text", "body": "x"}).encode()
    lines = good[:5] + [bad_truncated] + good[5:10] + [bad_utf8, bad_missing] + good[10:]
    path = tmp_path / "broken.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    ws = Workspace(tmp_path / "ws")
    [res] = _ingest(ws, path=str(path))
    assert res.records == 20 and res.quarantined == 3
    q = pl.from_arrow(read_stage(ws.root, "quarantine")).sort(C.Q_LINE)
    assert q[C.Q_LINE].to_list() == [6, 12, 13]
    reasons = q[C.Q_REASON].to_list()
    assert reasons[0].startswith("invalid_json")
    assert reasons[1].startswith("invalid_utf8")
    assert reasons[2].startswith("missing_field") and "'text'" in reasons[2]
    assert q[C.Q_FILE].unique().to_list() == [str(path)]
    assert q[C.Q_EXCERPT][2] == bad_missing.decode()


def test_csv_tsv_and_parquet(tmp_path: Path) -> None:
    sms = data_dir("sms_spam") / "SMSSpamCollection"
    ws = Workspace(tmp_path / "ws")
    [r] = _ingest(ws, path=str(sms), format="tsv", modality="text", text_field="SMS", name="sms")
    assert r.records == 5574 and r.quarantined == 0
    t = pl.from_arrow(read_stage(ws.root, "ingest"))
    assert (t[C.MODALITY] == "text").all()
    assert t.filter(pl.col(C.META).str.contains('"spam"')).height == 747

    table_a = data_dir("er_magellan") / "structured_dblp_acm" / "table_a.csv"
    broken = tmp_path / "dblp.csv"
    broken.write_text(table_a.read_text(encoding="utf-8") + "9999,only two\n", encoding="utf-8")
    ws2 = Workspace(tmp_path / "ws2")
    [r] = _ingest(ws2, path=str(broken), id_field="_id")
    assert r.records == 2616 and r.quarantined == 1
    rec = pl.from_arrow(read_stage(ws2.root, "ingest"))
    assert rec[C.ID][0] == "dblp/0" and json.loads(rec[C.DATA][0])["venue"] == "sigmod record"
    q = read_stage(ws2.root, "quarantine").to_pylist()[0]
    assert q[C.Q_REASON].startswith("ragged_row") and q[C.Q_LINE] == 2618

    pq_path = tmp_path / "sms.parquet"
    pq.write_table(pl.read_csv(sms, separator="\t", quote_char=None).head(300).to_arrow(), pq_path)
    batches = list(
        read_source(
            pq_path,
            SourceConfig(path=str(pq_path), text_field="SMS", id_field=None),
            IngestConfig(shard_rows=128),
        )
    )
    assert [b[0].num_rows for b in batches] == [128, 128, 44]
    assert batches[0][0][C.SOURCE_ROW].to_pylist()[:2] == [1, 2]


def test_image_folder_with_coco_captions_and_a_broken_file(tmp_path: Path) -> None:
    coco = data_dir("coco_mini")
    folder = tmp_path / "val2017"
    shutil.copytree(coco / "val2017", folder)
    (folder / "zz-broken.jpg").write_bytes(b"\xff\xd8\xff not an image")
    ws = Workspace(tmp_path / "ws")
    [r] = _ingest(ws, path=str(folder), captions=str(coco / "annotations" / "captions_val2017.json"))
    n_images = len(list((coco / "val2017").glob("*.jpg")))
    assert r.records == n_images and r.quarantined == 1
    t = pl.from_arrow(read_stage(ws.root, "ingest").drop([C.IMAGE]))
    assert (t[C.MODALITY] == "image").all() and t[C.TEXT].null_count() == 0
    assert t[C.WIDTH].min() > 0 and set(t[C.IMAGE_FORMAT]) == {"jpeg"}
    assert all(len(json.loads(m)["captions"]) >= 5 for m in t[C.META])
    assert read_stage(ws.root, "quarantine")[C.Q_REASON][0].as_py().startswith("undecodable_image")


def test_webdataset_tar_pairs_images_with_captions(tmp_path: Path) -> None:
    cifar = data_dir("cifar10_sample")
    images = sorted((cifar / "images" / "cat").glob("*.jpg"))[:5]
    tar_path = tmp_path / "shard-000.tar"
    with tarfile.open(tar_path, "w") as tar:

        def add(name: str, blob: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))

        for i, img in enumerate(images):
            add(f"s{i:03d}.jpg", img.read_bytes())
            add(f"s{i:03d}.txt", f"a photo of a cat, number {i}".encode())
        add("s999.txt", b"a caption without its image")
    ws = Workspace(tmp_path / "ws")
    [r] = _ingest(ws, path=str(tar_path))
    assert r.records == 5 and r.quarantined == 1
    t = read_stage(ws.root, "ingest")
    assert t[C.TEXT].to_pylist()[0] == "a photo of a cat, number 0"
    assert t[C.IMAGE][0].as_py() == images[0].read_bytes()
    assert (t[C.WIDTH].to_pylist(), t[C.HEIGHT].to_pylist()) == ([32] * 5, [32] * 5)


def test_reingest_skips_unchanged_input_and_redoes_a_changed_one(cc_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b"\n".join(_cc_lines(cc_dir, 10)) + b"\n")
    ws = Workspace(tmp_path / "ws")
    first = _ingest(ws, path=str(path))[0]
    assert not first.skipped
    assert _ingest(ws, path=str(path))[0].skipped
    path.write_bytes(b"\n".join(_cc_lines(cc_dir, 12)) + b"\n")
    again = _ingest(ws, path=str(path))[0]
    assert not again.skipped and again.records == 12
    assert read_stage(ws.root, "ingest").num_rows == 12


def test_missing_inputs_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file"):
        expand_source(SourceConfig(path=str(tmp_path / "nope.jsonl")))
    with pytest.raises(IngestError, match="matches no file"):
        expand_source(SourceConfig(path=str(tmp_path / "*.jsonl")))
    odd = tmp_path / "data.xyz"
    odd.write_text("x")
    with pytest.raises(IngestError, match="--format"):
        expand_source(SourceConfig(path=str(odd)))
    assert pa.types.is_string(pa.string())

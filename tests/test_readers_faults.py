"""Every kind of bad input file the readers meet, generated from real data: each ends as quarantine rows
(file, line, reason) or a one-line IngestError naming the file, never a traceback; no good row is lost;
per file, rows read = ingested + quarantined."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import shutil
import tarfile
import zipfile
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import data_dir

from pipeline.ingest import (
    IngestError,
    count_lines,
    expand_source,
    ingest_input,
    ingested_inputs,
    new_builder,
    read_input,
    source_root,
)
from pipeline.workspace import Workspace
from schemas import columns as C
from schemas.config import IngestConfig, SourceConfig

CC_FILE = "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz"


def _cc_lines(cc_dir: Path, n: int) -> list[bytes]:
    with gzip.open(cc_dir / CC_FILE, "rb") as f:
        return [next(f).rstrip(b"\n") for _ in range(n)]


def _body(cc_dir: Path, n: int = 50) -> bytes:
    return b"\n".join(_cc_lines(cc_dir, n)) + b"\n"


def _read(path: Path, **src: object) -> tuple[pl.DataFrame, pl.DataFrame, int]:
    """(records, quarantine, rows read) of one input; checks that its counts reconcile."""
    [inp] = expand_source(SourceConfig(path=str(path), **src))
    b = new_builder(inp, IngestConfig())
    batches = list(read_input(inp, IngestConfig(), b))
    rec = pl.from_arrow(pa.concat_tables([r for r, _ in batches]).drop([C.IMAGE]))
    bad = pl.from_arrow(pa.concat_tables([q for _, q in batches]))
    assert b.rows_read == rec.height + bad.height, "rows read != ingested + quarantined"
    return rec, bad, b.rows_read


def _compress(codec: str, body: bytes) -> bytes:
    if codec in ("zstd", "lz4"):
        buf = pa.BufferOutputStream()
        with pa.CompressedOutputStream(buf, codec) as z:
            z.write(body)
        return buf.getvalue().to_pybytes()
    return {"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[codec](body)


CODECS = {"gzip": ".gz", "bz2": ".bz2", "xz": ".xz", "zstd": ".zst", "lz4": ".lz4"}


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_every_codec_is_decompressed_by_magic_and_suffix(codec: str, cc_dir: Path, tmp_path: Path) -> None:
    body = _body(cc_dir)
    plain, _, _ = _read(_write(tmp_path / "plain.jsonl", body))
    named = _write(tmp_path / f"named.jsonl{CODECS[codec]}", _compress(codec, body))
    unnamed = _write(tmp_path / "unnamed.jsonl", _compress(codec, body))  # the magic bytes decide
    for path in (named, unnamed):
        rec, bad, read = _read(path)
        assert (rec.height, bad.height, read) == (50, 0, 50)
        assert rec[C.TEXT].to_list() == plain[C.TEXT].to_list()


@pytest.mark.parametrize("codec", sorted(CODECS))
def test_truncated_compressed_stream_keeps_lines_before_the_break(
    codec: str, cc_dir: Path, tmp_path: Path
) -> None:
    body = _body(cc_dir)
    comp = _compress(codec, body)
    path = _write(tmp_path / f"t.jsonl{CODECS[codec]}", comp[: len(comp) * 2 // 3])
    rec, bad, read = _read(path)
    good = [json.loads(x)["text"] for x in body.splitlines()]
    assert rec[C.TEXT].to_list() == good[: rec.height]  # a prefix, in order, nothing invented
    assert bad.height == 1 and bad[C.Q_LINE][0] is None
    assert bad[C.Q_REASON][0].startswith("corrupt_file: truncated or corrupt after line")
    assert bad[C.Q_FILE][0] == str(path)


def test_archives_and_codecs_not_read_are_refused_naming_the_file(cc_dir: Path, tmp_path: Path) -> None:
    zpath = tmp_path / "docs.jsonl.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.writestr("docs.jsonl", _body(cc_dir, 5))
    with pytest.raises(IngestError, match=r"docs\.jsonl\.zip: a zip archive is not read; unzip it"):
        expand_source(SourceConfig(path=str(zpath)))
    disguised = _write(tmp_path / "disguised.jsonl", zpath.read_bytes())
    _, bad, _ = _read(disguised)
    assert bad[C.Q_REASON].to_list() == [
        "unsupported_compression: the file is a zip archive; unzip it and ingest the files inside"
    ]
    pq_gz = tmp_path / "t.parquet.gz"
    pq_gz.write_bytes(gzip.compress(b"PAR1"))
    with pytest.raises(IngestError, match=r"t\.parquet\.gz: a gzip-compressed parquet file is not read"):
        expand_source(SourceConfig(path=str(pq_gz)))
    fake = _write(tmp_path / "fake.jsonl.zst", bytes(range(256)) * 4)  # named .zst, neither zstd nor text
    _, bad, _ = _read(fake)
    assert bad[C.Q_REASON][0].startswith("corrupt_file: named .zst but it does not start with the zstd magic")
    text_named_gz = _write(tmp_path / "plain.jsonl.gz", _body(cc_dir, 5))  # plain text with a .gz name
    assert _read(text_named_gz)[0].height == 5


def _sms_parquet(tmp_path: Path, rows: int = 50) -> Path:
    sms = data_dir("sms_spam") / "SMSSpamCollection"
    path = tmp_path / "sms.parquet"
    df = pl.read_csv(sms, separator="\t", quote_char=None).head(rows)
    pq.write_table(df.to_arrow(), path, row_group_size=10)
    return path


def test_damaged_parquet_files_become_one_quarantine_row(tmp_path: Path) -> None:
    good = _sms_parquet(tmp_path).read_bytes()
    footer = int.from_bytes(good[-8:-4], "little")
    scrambled = bytearray(good)
    for i in range(len(good) - 8 - footer, len(good) - 8, 7):
        scrambled[i] ^= 0x5A
    oversized = bytearray(good)
    oversized[-8:-4] = (2**31 - 1).to_bytes(4, "little")
    cases = {
        "truncated": good[: len(good) // 2],
        "scrambled_footer": bytes(scrambled),
        "oversized_footer": bytes(oversized),
        "gzipped": gzip.compress(good),
    }
    for name, blob in cases.items():
        path = _write(tmp_path / f"{name}.parquet", blob)
        rec, bad, read = _read(path, text_field="SMS")
        assert (rec.height, bad.height, read) == (0, 1, 1), name
        assert bad[C.Q_LINE][0] is None and bad[C.Q_FILE][0] == str(path)
        assert bad[C.Q_REASON][0].startswith("corrupt_file: not a readable Parquet file: "), name
    assert (
        "gzip-compressed as a whole"
        in _read(tmp_path / "gzipped.parquet", text_field="SMS")[1][C.Q_REASON][0]
    )


def test_parquet_binary_text_is_read_when_utf8(tmp_path: Path) -> None:
    path = tmp_path / "binary.parquet"
    texts = [b"caf\xc3\xa9 au lait", b"plain", b"caf\xe9 latin-1", None]
    pq.write_table(pa.table({"id": ["a", "b", "c", "d"], "text": pa.array(texts, pa.binary())}), path)
    rec, bad, _ = _read(path)
    assert rec[C.TEXT].to_list() == ["café au lait", "plain"]
    assert bad[C.Q_LINE].to_list() == [3, 4]
    assert bad[C.Q_REASON].to_list() == [
        "invalid_utf8: 'text' is binary and not valid UTF-8",
        "null_field: 'text' is null",
    ]
    assert bad[C.Q_EXCERPT][0] == "caf\\xe9 latin-1"


def test_parquet_string_column_with_invalid_utf8_quarantines_the_row_alone(tmp_path: Path) -> None:
    """Parquet does not check a string column's bytes; one bad value must not cost its whole batch."""
    path = tmp_path / "s.parquet"
    texts = pa.array([b"one", b"tw\xffo", b"three"], pa.binary()).view(pa.string())
    pq.write_table(pa.table({"id": ["1", "2", "3"], "text": texts}), path)
    rec, bad, _ = _read(path)
    assert rec[C.TEXT].to_list() == ["one", "three"]
    assert bad[C.Q_LINE].to_list() == [2] and bad[C.Q_REASON][0].startswith("invalid_utf8: column 'text'")


def test_parquet_with_a_column_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.parquet"
    t = pa.Table.from_arrays(
        [pa.array(["1"]), pa.array(["a"]), pa.array(["b"])], names=["id", "text", "text"]
    )
    pq.write_table(t, path)
    _, bad, _ = _read(path)
    assert bad[C.Q_REASON].to_list() == ["duplicate_column: columns named twice: 'text'; not read"]


def _cifar_folder(tmp_path: Path, n: int = 5) -> list[Path]:
    cifar = data_dir("cifar10_sample")
    folder = tmp_path / "imgs"
    folder.mkdir()
    out = []
    for p in sorted((cifar / "images" / "cat").glob("*.jpg"))[:n]:
        out.append(Path(shutil.copy(p, folder / p.name)))
    return out


def test_captions_row_without_caption_keeps_every_image(tmp_path: Path) -> None:
    images = _cifar_folder(tmp_path)
    rows = [f"{p.name},a cat number {i}" for i, p in enumerate(images)]
    rows[3] = f"{images[3].name},"  # no caption
    captions = tmp_path / "captions.csv"
    captions.write_text("file,caption\n" + "\n".join(rows) + "\n", encoding="utf-8")
    rec, bad, read = _read(tmp_path / "imgs", captions=str(captions))
    assert rec.height == 5 and read == 6  # 5 images + the captions row that cannot be used
    assert rec[C.TEXT].to_list() == [
        "a cat number 0",
        "a cat number 1",
        "a cat number 2",
        None,
        "a cat number 4",
    ]
    assert bad.select(C.Q_FILE, C.Q_LINE).rows() == [(str(captions), 5)]
    assert bad[C.Q_REASON][0].startswith(f"missing_caption: the row names '{images[3].name}'")


def test_truncated_coco_captions_names_the_file_and_keeps_the_images(tmp_path: Path) -> None:
    coco = data_dir("coco_mini")
    folder = tmp_path / "imgs"
    folder.mkdir()
    for p in sorted((coco / "val2017").glob("*.jpg"))[:4]:
        shutil.copy(p, folder / p.name)
    full = (coco / "annotations" / "captions_val2017.json").read_bytes()
    truncated = _write(tmp_path / "captions_truncated.json", full[: len(full) // 2])
    rec, bad, _ = _read(folder, captions=str(truncated))
    assert rec.height == 4 and rec[C.TEXT].null_count() == 4
    assert bad[C.Q_FILE].to_list() == [str(truncated)] and bad[C.Q_LINE][0] is None
    assert bad[C.Q_REASON][0].startswith("corrupt_file: the captions file is not valid JSON")
    gz = _write(tmp_path / "captions.json.gz", gzip.compress(full))  # a compressed captions file is read
    rec, bad, _ = _read(folder, captions=str(gz))
    assert rec[C.TEXT].null_count() == 0 and bad.height == 0


def test_csv_header_with_a_column_twice_is_refused_naming_it(tmp_path: Path) -> None:
    path = _write(tmp_path / "dup.csv", b"id,text,lang,text\n1,first,en,second\n2,alpha,en,beta\n")
    rec, bad, _ = _read(path, modality="text")
    assert rec.height == 0
    assert bad[C.Q_LINE].to_list() == [1]
    assert bad[C.Q_REASON].to_list() == [
        "duplicate_column: the header names 'text' twice (columns 2 and 4); rename one: the file is not read"
    ]


def test_utf8_bom_costs_no_row(cc_dir: Path, tmp_path: Path) -> None:
    body = _body(cc_dir, 10)
    rec, bad, _ = _read(_write(tmp_path / "bom.jsonl", b"\xef\xbb\xbf" + body))
    assert (rec.height, bad.height) == (10, 0)
    rec, bad, _ = _read(_write(tmp_path / "bom.csv", "\ufeffid,text\n1,a\n2,b\n".encode()), modality="text")
    assert rec[C.ID].to_list() == ["bom/1", "bom/2"] and bad.height == 0


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_with_a_bom_are_decoded(encoding: str, cc_dir: Path, tmp_path: Path) -> None:
    bom = {"utf-16": b"", "utf-16-be": b"\xfe\xff", "utf-32": b""}[encoding]
    body = _body(cc_dir, 10).decode()
    plain, _, _ = _read(_write(tmp_path / "plain.jsonl", body.encode()))
    rec, bad, _ = _read(_write(tmp_path / "wide.jsonl", bom + body.encode(encoding)))
    assert bad.height == 0 and rec[C.TEXT].to_list() == plain[C.TEXT].to_list()
    csv_text = "id,text\n1,café\n2,naïve\n"
    rec, bad, _ = _read(_write(tmp_path / "wide.csv", bom + csv_text.encode(encoding)), modality="text")
    assert rec[C.TEXT].to_list() == ["café", "naïve"] and bad.height == 0


def test_utf16_without_a_bom_gets_a_reason_that_says_so(cc_dir: Path, tmp_path: Path) -> None:
    for name, blob in {
        "le.csv": "id,text\n1,a\n2,b\n".encode("utf-16-le"),
        "be.jsonl": _body(cc_dir, 3).decode().encode("utf-16-be"),
    }.items():
        rec, bad, _ = _read(_write(tmp_path / name, blob), modality="text")
        assert rec.height == 0 and bad.height == 1
        reason = bad[C.Q_REASON][0]
        assert (
            reason.startswith("utf16_without_bom: the file looks like UTF-16") and "ragged_row" not in reason
        )


def test_a_bad_utf16_line_is_quarantined_alone(tmp_path: Path) -> None:
    lines = ['{"id": "1", "text": "one"}', '{"id": "2", "text": "two"}', '{"id": "3", "text": "three"}']
    blobs = [(line + "\n").encode("utf-16-le") for line in lines]
    blobs[1] = blobs[1][:10] + b"\x00\xd8" + blobs[1][10:]  # a lone high surrogate
    rec, bad, _ = _read(_write(tmp_path / "u.jsonl", b"\xff\xfe" + b"".join(blobs)))
    assert rec[C.TEXT].to_list() == ["one", "three"]
    assert bad[C.Q_LINE].to_list() == [2] and bad[C.Q_REASON][0].startswith("invalid_utf16")


@pytest.mark.parametrize(
    "body",
    [
        '1,good one\n2,"unterminated\n3,good three\n4,good four\n',  # runs to the end of the file
        '1,good one\n2,"unterminated\n3,good three\n4,"closed, later"\n',  # meets a later quote
        '1,good one\n2,"unterminated\n3,good three\n4,"x"\n',  # meets a quote that closes a field
        '1,good one\n2,"unterminated\n3,good three\n4,good four\n5,"ok\nmulti-line"\n',
    ],
)
def test_unterminated_quote_quarantines_only_its_line(body: str, tmp_path: Path) -> None:
    rec, bad, _ = _read(_write(tmp_path / "q.csv", ("id,text\n" + body).encode()), modality="text")
    assert "2" not in [i.split("/")[1] for i in rec[C.ID]]
    assert {"q/1", "q/3", "q/4"} <= set(rec[C.ID].to_list())
    assert bad[C.Q_LINE].to_list() == [3]  # the physical line of record 2
    assert bad[C.Q_REASON][0].startswith("bad_quoting:") and bad[C.Q_EXCERPT][0] == '2,"unterminated'
    if "multi-line" in body:
        assert rec.filter(pl.col(C.ID) == "q/5")[C.TEXT].to_list() == ["ok\nmulti-line"]


def test_integer_id_beyond_64_bits_keeps_its_digits(tmp_path: Path) -> None:
    big, neg = 2**70, -(2**64) - 1
    path = _write(
        tmp_path / "ids.jsonl",
        f'{{"id": {big}, "text": "big", "n": {big}}}\n{{"id": {neg}, "text": "neg"}}\n'
        f'{{"id": 7, "text": "small", "x": 1.5}}\n'.encode(),
    )
    rec, bad, _ = _read(path)
    assert rec[C.ID].to_list() == [f"ids/{big}", f"ids/{neg}", "ids/7"] and bad.height == 0
    assert json.loads(rec[C.META][0]) == {"n": big}  # the line was parsed again: exact in meta too
    rec, _, _ = _read(path, modality="record", id_field=None)  # records: every field stays exact
    assert [json.loads(d) for d in rec[C.DATA]][0] == {"id": big, "text": "big", "n": big}


def test_nul_bytes_and_invalid_utf8_quarantine_their_row(cc_dir: Path, tmp_path: Path) -> None:
    lines = _cc_lines(cc_dir, 4)
    jsonl = [
        lines[0],
        lines[1][:40] + b"\x00" + lines[1][40:],
        lines[2][:30] + b"\xe9" + lines[2][30:],
        lines[3],
    ]
    rec, bad, _ = _read(_write(tmp_path / "nul.jsonl", b"\n".join(jsonl) + b"\n"))
    assert rec.height == 2 and bad[C.Q_LINE].to_list() == [2, 3]
    assert [r.split(":")[0] for r in bad[C.Q_REASON]] == ["nul_byte", "invalid_utf8"]
    rec, bad, _ = _read(
        _write(tmp_path / "nul.csv", b"id,text\n1,good\n2,ba\x00d\n3,caf\xe9\n4,good\n"), modality="text"
    )
    assert rec[C.ID].to_list() == ["nul/1", "nul/4"]
    assert [r.split(":")[0] for r in bad[C.Q_REASON]] == ["nul_byte", "invalid_utf8"]
    assert bad[C.Q_EXCERPT].to_list() == ["2,ba\x00d", "3,caf\\xe9"]


def test_default_ids_are_paths_relative_to_the_source_root(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / "dumps" / sub).mkdir(parents=True)
        (tmp_path / "dumps" / sub / "data.jsonl").write_text('{"text": "no id"}\n{"text": "no id either"}\n')
    pattern = str(tmp_path / "dumps" / "*" / "data.jsonl")
    assert source_root(pattern) == tmp_path / "dumps"
    ids = [
        i
        for inp in expand_source(SourceConfig(path=pattern))
        for r, _ in read_input(inp, IngestConfig())
        for i in r[C.ID].to_pylist()
    ]
    assert ids == ["data/a/data.jsonl:1", "data/a/data.jsonl:2", "data/b/data.jsonl:1", "data/b/data.jsonl:2"]
    single = tmp_path / "dumps" / "a" / "data.jsonl"
    assert _read(single)[0][C.ID].to_list() == ["data/data.jsonl:1", "data/data.jsonl:2"]
    # image folders: alone, keys are relative to the folder; through a glob, to the glob's root
    images = _cifar_folder(tmp_path, 2)
    assert _read(tmp_path / "imgs")[0][C.ID].to_list() == [f"imgs/{p.name}" for p in images]
    shutil.copytree(tmp_path / "imgs", tmp_path / "sets" / "x")
    shutil.copytree(tmp_path / "imgs", tmp_path / "sets" / "y")
    got = [
        i
        for inp in expand_source(SourceConfig(path=str(tmp_path / "sets" / "*"), name="s"))
        for r, _ in read_input(inp, IngestConfig())
        for i in r[C.ID].to_pylist()
    ]
    assert got == [f"s/{d}/{p.name}" for d in ("x", "y") for p in images]


def _tar(images: list[Path]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for i, img in enumerate(images):
            for name, blob in ((f"s{i:03d}.jpg", img.read_bytes()), (f"s{i:03d}.txt", f"cat {i}".encode())):
                info = tarfile.TarInfo(name)
                info.size = len(blob)
                tar.addfile(info, io.BytesIO(blob))
    return buf.getvalue()


@pytest.mark.parametrize("codec", ["gzip", "zstd", "xz"])
def test_compressed_webdataset_tars_and_a_truncated_one(codec: str, tmp_path: Path) -> None:
    images = _cifar_folder(tmp_path, 4)
    comp = _compress(codec, _tar(images))
    rec, bad, _ = _read(_write(tmp_path / f"shard.tar{CODECS[codec]}", comp))
    assert rec[C.TEXT].to_list() == ["cat 0", "cat 1", "cat 2", "cat 3"] and bad.height == 0
    rec, bad, _ = _read(_write(tmp_path / f"cut.tar{CODECS[codec]}", comp[: len(comp) * 3 // 4]))
    assert rec[C.TEXT].to_list() == [f"cat {i}" for i in range(rec.height)]
    assert bad.height == 1 and bad[C.Q_REASON][0].startswith("corrupt_file: tar truncated or corrupt")


def test_inputs_that_cannot_be_read_at_all_are_one_line_errors(tmp_path: Path) -> None:
    good = _write(tmp_path / "d" / "a.csv", b"id,text\n1,a\n")
    (tmp_path / "d" / "b.csv").symlink_to(tmp_path / "gone.csv")
    with pytest.raises(IngestError, match=r"b\.csv: a link to a missing file"):
        expand_source(SourceConfig(path=str(tmp_path / "d" / "*.csv")))
    with pytest.raises(IngestError, match="delimiter must be one character"):
        expand_source(SourceConfig(path=str(good), delimiter=";;"))
    with pytest.raises(IngestError, match="no such captions file"):
        expand_source(SourceConfig(path=str(tmp_path / "d"), captions=str(tmp_path / "nope.csv")))


def test_counts_reconcile_in_markers_and_summary_lines(cc_dir: Path, tmp_path: Path) -> None:
    lines = _cc_lines(cc_dir, 6)
    messy = _write(tmp_path / "messy.jsonl", b"\n".join([lines[0], b"", b"{broken", lines[1], b"  "]) + b"\n")
    clean = _write(tmp_path / "clean.jsonl", b"\n".join(lines[2:]) + b"\n")
    ws = Workspace(tmp_path / "ws")
    results = [
        ingest_input(i, IngestConfig(), ws)
        for p in (messy, clean)
        for i in expand_source(SourceConfig(path=str(p)))
    ]
    assert [(r.rows_read, r.records, r.quarantined) for r in results] == [(3, 2, 1), (4, 4, 0)]
    markers = ingested_inputs(ws)
    assert sorted((m["rows_read"], m["records"], m["quarantined"]) for m in markers) == [(3, 2, 1), (4, 4, 0)]
    again = ingest_input(expand_source(SourceConfig(path=str(messy)))[0], IngestConfig(), ws)
    assert again.skipped and again.rows_read == 3
    out = count_lines(markers)
    assert f"{messy}: read 3, ingested 2, quarantined 1" in out
    assert out[-1] == "2 file(s): read 7 rows, ingested 6, quarantined 1"
    many = [
        {"input": f"f{i}", "rows_read": 10, "records": 10 - (i % 7 == 0), "quarantined": int(i % 7 == 0)}
        for i in range(200)
    ]
    short = count_lines(many, limit=20)
    assert len(short) == 22 and short[-2] == "... and 9 more file(s) with quarantined rows"
    assert all("quarantined 1" in line for line in short[:20])


def test_a_bad_file_does_not_fail_curate_run(prefect_harness, cc_dir: Path, tmp_path: Path) -> None:  # noqa: ANN001
    from flows.curate import curate_flow
    from schemas.config import CurateConfig

    good = _write(tmp_path / "in" / "good.jsonl", _body(cc_dir, 30))
    _write(tmp_path / "in" / "broken.parquet", b"PAR1 this is not parquet")
    _write(tmp_path / "in" / "dup.csv", b"id,text,text\n1,a,b\n")
    cfg = CurateConfig.model_validate(
        {
            "workspace": str(tmp_path / "ws"),
            "sources": [{"path": str(tmp_path / "in" / "*")}],
            "stages": {"near": False, "lang": False, "pii": False, "embed": False, "semantic": False},
        }
    )
    state = curate_flow(cfg, return_state=True)
    assert state.is_completed()
    c = state.result()["counts"]
    assert c["ingested"] == 32 and c["quarantined"] == 2
    markers = {Path(m["input"]).name: m for m in ingested_inputs(Workspace(tmp_path / "ws"))}
    assert {k: (m["rows_read"], m["records"], m["quarantined"]) for k, m in markers.items()} == {
        "good.jsonl": (30, 30, 0),
        "broken.parquet": (1, 0, 1),
        "dup.csv": (1, 0, 1),
    }
    assert good.exists()


def _write(path: Path, blob: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    return path

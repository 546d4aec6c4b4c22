"""Property-based fuzzing of the readers: good files (real Common Crawl rows as JSONL, JSONL.gz, CSV, TSV,
Parquet) mutated by truncation, byte flips, inserted NULs / BOMs / invalid UTF-8 / quotes,
dropped quotes and duplicated lines.

Invariants: no exception escapes a reader; every row of the good input the mutation did not touch is
ingested exactly once, with its text; rows read = ingested + quarantined (counted from the tables the
reader yields, not from the reader's own counters).
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import CC
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.ingest import expand_source, new_builder, read_input
from schemas import columns as C
from schemas.config import IngestConfig, SourceConfig

N_ROWS = 12
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
INSERTS = {"nul": b"\x00", "bom": b"\xef\xbb\xbf", "invalid_utf8": b"\xc3\x28\xff", "quote": b'"'}


def _rows() -> list[dict]:
    """Real rows: the first Common Crawl documents, texts cut to keep each example small."""
    if not CC.exists():
        pytest.skip(f"real data set {CC} is absent")
    with gzip.open(CC / "CC-MAIN-20190717121559-20190717143559-00140.jsonl.gz", "rb") as f:
        docs = [json.loads(next(f)) for _ in range(N_ROWS)]
    return [{"id": d["id"], "text": d["text"][:300], "source": d.get("source", "")} for d in docs]


ROWS = _rows() if CC.exists() else []


def _tsv_safe(value: object) -> str:
    """TSV is read without quoting: fields stay free of tabs and line ends."""
    return str(value).replace("\t", " ").replace("\n", " ").replace("\r", " ")


def _expected(fmt: str) -> list[dict]:
    """The rows as the reader should give them back."""
    return [{k: _tsv_safe(v) for k, v in r.items()} for r in ROWS] if fmt == "tsv" else ROWS


def _records(fmt: str, rows: list[dict]) -> tuple[bytes, list[bytes]]:
    """The file body and each row's bytes (the header, if any, first: it is never a row)."""
    if fmt == "jsonl":
        recs = [json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows]
        return b"".join(recs), recs
    delim = "," if fmt == "csv" else "\t"
    chunks = []
    for values in [list(rows[0]), *[list(r.values()) for r in rows]]:
        buf = io.StringIO()
        if fmt == "tsv":
            buf.write("\t".join(_tsv_safe(v) for v in values) + "\n")
        else:
            csv.writer(buf, delimiter=delim, lineterminator="\n").writerow(values)
        chunks.append(buf.getvalue().encode())
    return b"".join(chunks), chunks


@st.composite
def mutations(draw: st.DrawFn, size: int) -> tuple[str, int, int]:
    kind = draw(st.sampled_from(["truncate", "flip", "duplicate", "drop_quote", *INSERTS]))
    return kind, draw(st.integers(0, size - 1)), draw(st.integers(1, 255))


def _mutate(body: bytes, spans: list[tuple[int, int]], m: tuple[str, int, int]) -> tuple[bytes, set[int]]:
    """The mutated body and the indexes of the records (into `spans`) the mutation touched."""
    kind, pos, arg = m
    at = next((i for i, (a, b) in enumerate(spans) if a <= pos < b), None)
    if kind == "truncate":
        return body[:pos], {i for i, (a, b) in enumerate(spans) if b > pos}
    if kind == "flip":
        touched = {at} if at is not None else set()
        if at is not None and pos == spans[at][1] - 1 and at + 1 < len(spans):
            touched.add(at + 1)  # the flipped byte was the line end: the next record is joined
        return body[:pos] + bytes([body[pos] ^ arg]) + body[pos + 1 :], touched
    if kind == "drop_quote":  # an unterminated (or unopened) quote: the csv module's worst case
        quotes = [i for i, c in enumerate(body) if c == ord('"')]
        if not quotes:
            return body, set()
        pos = quotes[arg % len(quotes)]
        at = next(i for i, (a, b) in enumerate(spans) if a <= pos < b)
        return body[:pos] + body[pos + 1 :], {at}
    if kind == "duplicate":
        i = at if at is not None else 0
        a, b = spans[i]
        return body[:b] + body[a:b] + body[b:], {i}
    return body[:pos] + INSERTS[kind] + body[pos:], {at} if at is not None else set()


def _read(path: Path, **src: object) -> tuple[list[dict], int, int]:
    """(records as dicts, rows read, quarantine rows) for one file; fails the test on any exception."""
    [inp] = expand_source(SourceConfig(path=str(path), **src))
    builder = new_builder(inp, IngestConfig(shard_rows=5))
    records, n_quarantined = [], 0
    for recs, bad in read_input(inp, IngestConfig(shard_rows=5), builder):
        records += recs.select([C.ID, C.TEXT]).to_pylist()
        n_quarantined += bad.num_rows
    return records, builder.rows_read, n_quarantined


def _check(records: list[dict], read: int, quarantined: int, expected: list[dict], touched: set[int]) -> None:
    assert read == len(records) + quarantined
    by_id: dict[str, list[str | None]] = {}
    for r in records:
        by_id.setdefault(r[C.ID], []).append(r[C.TEXT])
    for i, row in enumerate(expected):
        if i in touched:
            continue
        assert by_id.get(f"f/{row['id']}") == [row["text"]], f"untouched row {i} not ingested exactly once"


def _spans(chunks: list[bytes]) -> list[tuple[int, int]]:
    spans, at = [], 0
    for c in chunks:
        spans.append((at, at + len(c)))
        at += len(c)
    return spans


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "csv", "tsv"])
@SETTINGS
@given(data=st.data())
def test_mutated_line_files_lose_no_untouched_row(fmt: str, data: st.DataObject, tmp_path: Path) -> None:
    base = fmt.split(".")[0]
    body, chunks = _records(base, ROWS)
    spans = _spans(chunks)
    header = 0 if base == "jsonl" else 1
    m = data.draw(mutations(len(body)))
    mutated, touched = _mutate(body, spans, m)
    path = tmp_path / f"f.{fmt}"
    path.write_bytes(gzip.compress(mutated, mtime=0) if fmt.endswith(".gz") else mutated)
    src = {} if base == "jsonl" else {"modality": "text"}
    records, read, quarantined = _read(path, **src)
    if header and 0 in touched:  # a damaged header may refuse the whole file: only counts must hold
        assert read == len(records) + quarantined
        return
    rows_touched = {i - header for i in touched if i >= header}
    _check(records, read, quarantined, _expected(base), rows_touched)


@SETTINGS
@given(data=st.data())
def test_mutated_compressed_bytes_never_raise(data: st.DataObject, tmp_path: Path) -> None:
    body, _ = _records("jsonl", ROWS)
    comp = gzip.compress(body, mtime=0)
    m = data.draw(mutations(len(comp)))
    mutated, _ = _mutate(comp, [(0, len(comp))], m)
    path = tmp_path / "f.jsonl.gz"
    path.write_bytes(mutated)
    records, read, quarantined = _read(path)
    assert read == len(records) + quarantined
    ids = [r[C.ID] for r in records]
    assert len(ids) == len(set(ids))
    if m[0] == "truncate":  # every line decompressed before the cut is kept, in order
        assert ids == [f"f/{r['id']}" for r in ROWS[: len(ids)]]


@SETTINGS
@given(data=st.data())
def test_mutated_parquet_never_raises(data: st.DataObject, tmp_path: Path) -> None:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(ROWS), buf, row_group_size=4)
    good = buf.getvalue()
    m = data.draw(mutations(len(good)))
    mutated, _ = _mutate(good, [(0, len(good))], m)
    path = tmp_path / "f.parquet"
    path.write_bytes(mutated)
    records, read, quarantined = _read(path)
    assert read == len(records) + quarantined
    ids = [r[C.ID] for r in records]
    assert len(ids) == len(set(ids))


@SETTINGS
@given(bad=st.sets(st.integers(0, N_ROWS - 1)), junk=st.binary(min_size=1, max_size=6))
def test_parquet_binary_text_rows_with_bad_bytes_are_quarantined_alone(
    bad: set[int], junk: bytes, tmp_path: Path
) -> None:
    texts = [r["text"].encode() + (b"\xff" + junk if i in bad else b"") for i, r in enumerate(ROWS)]
    path = tmp_path / "f.parquet"
    pq.write_table(pa.table({"id": [r["id"] for r in ROWS], "text": pa.array(texts, pa.binary())}), path)
    records, read, quarantined = _read(path)
    assert read == len(records) + quarantined == N_ROWS
    assert quarantined == len(bad)
    _check(records, read, quarantined, ROWS, bad)

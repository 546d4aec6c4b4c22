"""Decontamination gate, per part: records that share a long word span with, or are near / semantic
duplicates of, an item of the evaluation sets in `[decontaminate] against` are dropped with reason
`contaminated`; `contaminated_by` points at the item (`<file>#<item id>`).

Kernel: pipeline/decontaminate.py."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import pyarrow as pa

from pipeline.decontaminate import MATCH_SCHEMA, EvalIndex, build_index, match
from pipeline.stages.embed import embed_cache_dir
from pipeline.stages.spec import Stage, Verdict, sql_lit
from schemas import columns as C
from schemas.config import CurateConfig

DECON_SCHEMA = pa.schema([pa.field(C.ID, pa.string()), *MATCH_SCHEMA])


def _files(cfg: CurateConfig) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of each evaluation file: what the stage's output depends on besides settings."""
    out = []
    for p in cfg.decontaminate.against:
        f = Path(p)
        if not f.is_file():
            raise FileNotFoundError(f"[decontaminate] against: {p}: no such file")
        st = f.stat()
        out.append((str(f), st.st_size, st.st_mtime_ns))
    return out


def _semantic(cfg: CurateConfig) -> bool:
    return cfg.decontaminate.semantic_threshold is not None and cfg.stages.embed


@lru_cache(maxsize=4)
def _index(files: tuple[tuple[str, int, int], ...], cfg_json: str, embed_json: str | None,
           cache_dir: str) -> EvalIndex:  # fmt: skip
    """The evaluation items of `files`, indexed once per process (and per change of a file)."""
    from pipeline.ingest import read_source
    from schemas.config import DecontaminateConfig, SourceConfig

    cfg = DecontaminateConfig.model_validate_json(cfg_json)
    pointers: list[str] = []
    tables = []
    for path, _, _ in files:
        src = SourceConfig(path=path, modality="text", text_field=cfg.text_field)
        before = len(pointers)
        for records, _ in read_source(path, src):
            if records.num_rows:
                t = records.filter(records[C.TEXT].is_valid())
                tables.append(t.select([C.ID, C.TEXT]))
                pointers += [  # the item's own id, without the `<source>/` that ingest puts before it
                    f"{Path(path).name}#{i[len(s) + 1 :] if i.startswith(s + '/') else i}"
                    for s, i in zip(t[C.SOURCE].to_pylist(), t[C.ID].to_pylist(), strict=True)
                ]
        if len(pointers) == before:
            raise ValueError(
                f"[decontaminate] against: {path}: no text in field {cfg.text_field!r} "
                "(set [decontaminate] text_field)"
            )
    empty = pa.table({C.ID: pa.array([], pa.string()), C.TEXT: pa.array([], pa.string())})
    items = pa.concat_tables(tables) if tables else empty
    vectors = None
    if embed_json is not None and items.num_rows:
        from pipeline.embed_cache import embed_table
        from quality.vectors import arrow_to_vectors
        from schemas.embed import EmbedConfig

        ecfg = EmbedConfig.model_validate_json(embed_json)
        tagged = items.append_column(C.MODALITY, pa.array([C.TEXT_MODALITY] * items.num_rows))
        vectors, _ = arrow_to_vectors(embed_table(tagged, ecfg, cache_dir)[C.EMBEDDING])
    return build_index(pointers, items[C.TEXT].to_pylist(), cfg, vectors)


def _decontaminate(t: pa.Table, cfg: CurateConfig, root: Path) -> pa.Table:
    sem = _semantic(cfg)
    index = _index(
        tuple(_files(cfg)),
        cfg.decontaminate.model_dump_json(),
        cfg.embed.model_dump_json() if sem else None,
        str(embed_cache_dir(cfg, root)),
    )
    vectors = valid = None
    if sem and C.EMBEDDING in t.column_names:
        from quality.vectors import arrow_to_vectors

        vectors, valid = arrow_to_vectors(t[C.EMBEDDING])
    found = match(t[C.TEXT], index, cfg.decontaminate, vectors, valid)
    return pa.table({C.ID: t[C.ID], **{c: found[c] for c in found.column_names}}, schema=DECON_SCHEMA)


STAGE = Stage(
    name="decontaminate",
    kind="map",
    doc="records sharing a long word span with, or near/semantic duplicates of, an evaluation item",
    modality=C.TEXT_MODALITY,
    reads=(C.ID, C.MODALITY, C.TEXT),
    after=(("embed", (C.EMBEDDING,)),),
    writes=DECON_SCHEMA,
    settings=lambda cfg: {
        "decontaminate": cfg.decontaminate.model_dump(),
        "files": _files(cfg),
        "embed": cfg.embed.model_dump(include={"embedder", "model", "static_dims"})
        if _semantic(cfg)
        else None,
    },
    enabled=lambda cfg: bool(cfg.decontaminate.against),
    map_fn=_decontaminate,
    carried=(),
    verdict=lambda cfg: Verdict(
        rank=5, when=f"{C.CONTAMINATED_BY} IS NOT NULL", reason=sql_lit(C.REASON_CONTAMINATED)
    ),
)

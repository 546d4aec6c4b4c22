"""`curate dedup`: exact and near-duplicate detection over any supported input, without a workspace."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def dedup(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Input files, globs or image folders (JSONL, CSV, TSV, "
            "Parquet, image folders, WebDataset tar)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output Parquet file: one row per input record.")],
    threshold: Annotated[
        float | None,
        typer.Option(help="Jaccard threshold for text near-duplicates (records: --record-threshold)."),
    ] = None,
    ngram: Annotated[
        int | None, typer.Option(help="Shingle size: words (or characters with --shingle char).")
    ] = None,
    num_perm: Annotated[int | None, typer.Option(help="MinHash permutations.")] = None,
    shingle: Annotated[str | None, typer.Option(help="Shingle kind: word or char.")] = None,
    text_field: Annotated[str, typer.Option(help="Field holding the text (JSONL/CSV/Parquet).")] = "text",
    id_field: Annotated[
        str, typer.Option(help="Field holding a stable record id (rows without one use file:row).")
    ] = "id",
    fields: Annotated[
        str | None,
        typer.Option(
            help="Comma-separated key fields: compare inputs as structured records on these fields."
        ),
    ] = None,
    modality: Annotated[
        str | None,
        typer.Option(help="text, record or image (default: from the format; --fields implies record)."),
    ] = None,
    record_threshold: Annotated[float | None, typer.Option(help="Jaccard threshold for records.")] = None,
    image_hamming: Annotated[int | None, typer.Option(help="pHash Hamming distance for images.")] = None,
    config: Annotated[
        Path | None, typer.Option(help="curate.toml whose \\[near] section gives the defaults.")
    ] = None,
) -> None:
    """Find exact and near-duplicates; write id, content_hash, exact_cluster, near_cluster and dup_of."""
    import time

    from rich.console import Console

    console = Console(stderr=True)
    started = time.perf_counter()
    try:
        cfg = near_config(
            config,
            threshold=threshold,
            ngram=ngram,
            num_perm=num_perm,
            shingle=shingle,
            record_threshold=record_threshold,
            image_hamming=image_hamming,
            record_fields=[f.strip() for f in fields.split(",") if f.strip()] if fields else None,
        )
        if modality is None and fields:
            modality = "record"
        if modality not in (None, "text", "record", "image"):
            raise ValueError(f"--modality {modality!r}: use text, record or image")
        summary = run_dedup(
            [str(p) for p in inputs], out, cfg, text_field=text_field, id_field=id_field, modality=modality
        )
    except (ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    console.print(
        f"{summary['records']} records ({summary['quarantined']} quarantined): {summary['exact_dups']} exact "
        f"duplicates, {summary['near_dups']} near-duplicates in {summary['near_clusters']} clusters; "
        f"wrote {out} in {time.perf_counter() - started:.1f} s"
    )


def near_config(config: Path | None = None, **overrides: object):  # -> NearConfig
    """The [near] section of a curate.toml (or defaults), with the options that were given replacing it."""
    from schemas.config import ConfigError, load_config
    from schemas.near import NearConfig

    try:
        base = load_config(config).near.model_dump() if config is not None else {}
    except ConfigError as exc:
        raise ValueError(str(exc)) from None
    base.update({k: v for k, v in overrides.items() if v is not None})
    return NearConfig.model_validate(base)


def run_dedup(
    inputs: list[str],
    out: Path,
    cfg,
    text_field: str = "text",
    id_field: str | None = "id",
    modality: str | None = None,
) -> dict:
    """Read inputs, find exact and near duplicates, write one row per record to `out` (atomically).

    Columns: id, source, modality, content_hash, exact_cluster, near_cluster, dup_group, dup_of,
    dup_reason (every group keeps one record; the others point at it). The workspace stages run in a
    temporary workspace, part by part, so memory stays bounded by one part.
    """
    import tempfile

    import polars as pl

    from pipeline.ingest import expand_source, ingest_input
    from pipeline.steps import admit, run_map, settle
    from pipeline.workspace import EXACT, Workspace, write_parquet
    from schemas import columns as C
    from schemas.config import CurateConfig, SourceConfig

    run = CurateConfig.model_validate(
        {"near": cfg.model_dump(), "stages": {"lang": False, "pii": False, "embed": False, "semantic": False}}
    )
    with tempfile.TemporaryDirectory(prefix="curate-dedup-") as tmp:
        ws = Workspace(tmp)
        quarantined = 0
        for path in inputs:
            src = SourceConfig(
                path=path,
                text_field=text_field,
                id_field=id_field or None,
                modality=modality,
                fields=cfg.record_fields,
            )
            for inp in expand_source(src):
                quarantined += ingest_input(inp, run.ingest, ws).quarantined
        if not ws.parts():
            raise ValueError("no records read from the inputs (see the quarantine counts)")
        admit(ws)
        run_map(ws, run, ["exact", "near_text", "near_image", "near_record"])
        cols = [
            C.ID,
            C.SOURCE,
            C.MODALITY,
            C.EXACT_CLUSTER,
            C.NEAR_CLUSTER,
            C.DUP_GROUP,
            C.DUP_OF,
            C.DUP_REASON,
        ]
        hashes = pl.concat([pl.read_parquet(f) for f in ws.stage_files(EXACT)])
        df = pl.from_arrow(settle(ws, run).select(cols)).join(hashes, on=C.ID, how="left")
        df = df.select([C.ID, C.SOURCE, C.MODALITY, C.CONTENT_HASH, *cols[3:]])
        write_parquet(df.to_arrow(), Path(out))
    return {
        "records": df.height,
        "quarantined": quarantined,
        "exact_dups": (df[C.DUP_REASON] == C.REASON_EXACT_DUP).sum(),
        "near_dups": (df[C.DUP_REASON] == C.REASON_NEAR_DUP).sum(),
        "near_clusters": df[C.NEAR_CLUSTER].drop_nulls().n_unique(),
    }

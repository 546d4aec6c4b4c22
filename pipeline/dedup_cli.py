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
    import tomllib

    from schemas.near import NearConfig

    data: dict = {}
    if config is not None:
        data = dict(tomllib.loads(Path(config).read_text(encoding="utf-8")).get("near", {}))
    data.update({k: v for k, v in overrides.items() if v is not None})
    return NearConfig.model_validate(data)


def run_dedup(
    inputs: list[str],
    out: Path,
    cfg,
    text_field: str = "text",
    id_field: str | None = "id",
    modality: str | None = None,
) -> dict:
    """Read inputs, find exact and near duplicates, write one row per record to `out` (atomically).

    Columns: id, source, modality, content_hash, exact_cluster, exact_dup_of, near_cluster, dup_of.
    Signatures go to a temporary folder part by part, so memory stays bounded by one part.
    """
    import tempfile

    import duckdb
    import polars as pl
    import pyarrow as pa

    from pipeline.exact import content_hashes, exact_clusters
    from pipeline.image_hash import image_clusters, image_phash
    from pipeline.ingest import read_source
    from pipeline.near import near_clusters, near_text_signatures, write_signatures
    from pipeline.record_near import record_clusters, record_signatures
    from pipeline.workspace import write_parquet
    from schemas import columns as C
    from schemas.config import SourceConfig

    keys, quarantined = [], 0
    parts: dict[str, list[Path]] = {C.TEXT_MODALITY: [], C.RECORD_MODALITY: [], C.IMAGE_MODALITY: []}
    with tempfile.TemporaryDirectory(prefix="curate-dedup-") as tmp:
        for path in inputs:
            src = SourceConfig(
                path=path,
                text_field=text_field,
                id_field=id_field or None,
                modality=modality,
                fields=cfg.record_fields,
            )
            for records, bad in read_source(path, src):
                quarantined += bad.num_rows
                if not records.num_rows:
                    continue
                hashes = content_hashes(records)
                keys.append(
                    pa.table(
                        {
                            C.ID: records[C.ID],
                            C.SOURCE: records[C.SOURCE],
                            C.MODALITY: records[C.MODALITY],
                            C.CONTENT_HASH: hashes[C.CONTENT_HASH],
                        }
                    )
                )
                mods = pl.Series(records[C.MODALITY])
                for mod, make in (
                    (C.TEXT_MODALITY, near_text_signatures),
                    (C.RECORD_MODALITY, record_signatures),
                    (C.IMAGE_MODALITY, image_phash),
                ):
                    mask = (mods == mod).to_arrow()
                    if not pc_any(mask):
                        continue
                    part = Path(tmp) / f"{mod}-{len(parts[mod]):05d}.parquet"
                    write_signatures(make(records.filter(mask), cfg), part)
                    parts[mod].append(part)
        if not keys:
            raise ValueError("no records read from the inputs (see the quarantine counts)")
        table = pa.concat_tables(keys)
        con = duckdb.connect()
        con.register("_hashes", table.select([C.ID, C.CONTENT_HASH]))
        exact = exact_clusters(con, "_hashes")
        near = [
            near_clusters(parts[C.TEXT_MODALITY], cfg) if parts[C.TEXT_MODALITY] else None,
            record_clusters(parts[C.RECORD_MODALITY], cfg) if parts[C.RECORD_MODALITY] else None,
            image_clusters(parts[C.IMAGE_MODALITY], cfg) if parts[C.IMAGE_MODALITY] else None,
        ]
        near_t = (
            pa.concat_tables([n for n in near if n is not None]) if any(n is not None for n in near) else None
        )
    df = pl.from_arrow(table).join(pl.from_arrow(exact), on=C.ID, how="left")
    if near_t is not None and near_t.num_rows:
        df = df.join(pl.from_arrow(near_t), on=C.ID, how="left")
    else:
        df = df.with_columns(
            pl.lit(None, pl.String).alias(C.NEAR_CLUSTER), pl.lit(None, pl.String).alias(C.DUP_OF)
        )
    write_parquet(df.to_arrow(), Path(out))
    return {
        "records": df.height,
        "quarantined": quarantined,
        "exact_dups": df[C.EXACT_DUP_OF].is_not_null().sum(),
        "near_dups": df[C.DUP_OF].is_not_null().sum(),
        "near_clusters": df[C.NEAR_CLUSTER].drop_nulls().n_unique(),
    }


def pc_any(mask) -> bool:  # noqa: ANN001 - a pyarrow boolean array
    """True when a boolean Arrow array has a true value."""
    import pyarrow.compute as pc

    return bool(pc.any(mask).as_py())

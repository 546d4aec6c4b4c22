"""Reading published shards from training code: pyarrow, Hugging Face `datasets`, a torch DataLoader.

The shards are Arrow IPC *files* (`pyarrow.ipc.open_file`; random access, memory-mapped). Hugging Face's
`datasets.Dataset.from_file` reads only the IPC *stream* format and fails on them ("Expected to read ...
metadata bytes"); use `hf_dataset` here (zero-copy over the memory-mapped shards) or
`datasets.load_dataset("arrow", data_files=shard_paths(ws), split="train")` (copies into the HF cache).

A torch DataLoader's default collation fails on columns with nulls (an image column on text rows, a score
on rows a stage skipped): `torch_loader` selects the text and a label, skips rows without text, and maps
labels to class ids, so each batch is `{"text": list[str], "label": LongTensor}`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from pipeline.workspace import Workspace, read_json
from schemas import columns as C

if TYPE_CHECKING:
    import datasets
    import torch.utils.data


def shard_paths(workspace: str | Path, version: str | int | None = None) -> list[str]:
    """Paths of the shards of the current version (or of `version`: 3, "v3", "previous")."""
    ws = Workspace(workspace)
    if version is None:
        if not ws.manifest_path.exists():
            raise FileNotFoundError(f"{ws.manifest_path}: nothing published (run `curate publish` first)")
        shards = read_json(ws.manifest_path)["shards"]
        return [str(ws.root / s["path"]) for s in shards]
    from pipeline.versions import get_version

    return [str(p) for p in get_version(ws, version).shard_files]


def read_table(
    workspace: str | Path, version: str | int | None = None, columns: list[str] | None = None
) -> pa.Table:
    """The published rows as one Arrow table, memory-mapped (no copy of the column data)."""
    tables = []
    for p in shard_paths(workspace, version):
        t = pa.ipc.open_file(pa.memory_map(p)).read_all()
        tables.append(t.select(columns) if columns else t)
    return pa.concat_tables(tables)


def hf_dataset(
    workspace: str | Path, version: str | int | None = None, columns: list[str] | None = None
) -> datasets.Dataset:
    """The published rows as a Hugging Face `datasets.Dataset` backed by the memory-mapped shards."""
    import datasets

    return datasets.Dataset(read_table(workspace, version, columns))


def text_label_table(
    workspace: str | Path,
    label: str = "label",
    text: str = C.TEXT,
    version: str | int | None = None,
) -> pa.Table:
    """(text, label) of the published rows that have a text. `label` is a shard column (e.g. `lang`) or a
    field of the record's `meta` JSON (where a source's `label_field` lands); rows without one get null."""
    import duckdb

    files = shard_paths(workspace, version)
    con = duckdb.connect()
    import pyarrow.dataset as pads

    con.register("shards", pads.dataset(files, format="arrow"))
    cols = {r[0] for r in con.execute("DESCRIBE shards").fetchall()}
    if text not in cols:
        raise ValueError(f"no column {text!r} in the shards (have: {', '.join(sorted(cols))})")
    if label in cols:
        lab = f'CAST("{label}" AS VARCHAR)'
    else:
        path = "$." + label.replace('"', "")
        lab = f"json_extract_string({C.META}, '{path}')"
    return con.sql(
        f'SELECT "{text}" AS text, {lab} AS label FROM shards WHERE "{text}" IS NOT NULL ORDER BY {C.ID}'
    ).to_arrow_table()


class TextLabelDataset:
    """A map-style torch dataset of `{"text": str, "label": int}`; `classes[i]` is the name of label i.

    Rows without a label get `missing_label` (default -1), so a loss can ignore them
    (`CrossEntropyLoss(ignore_index=-1)`)."""

    def __init__(self, table: pa.Table, classes: list[str] | None = None, missing_label: int = -1) -> None:
        self.texts: list[str] = table.column("text").to_pylist()
        raw: list[Any] = table.column("label").to_pylist()
        self.classes = classes if classes is not None else sorted({v for v in raw if v is not None})
        index = {c: i for i, c in enumerate(self.classes)}
        self.labels = [index.get(v, missing_label) if v is not None else missing_label for v in raw]

    def __len__(self) -> int:
        return len(self.texts)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"text": self.texts[i], "label": self.labels[i]}


def torch_loader(
    workspace: str | Path,
    label: str = "label",
    batch_size: int = 32,
    shuffle: bool = False,
    version: str | int | None = None,
    classes: list[str] | None = None,
    **kwargs: Any,
) -> torch.utils.data.DataLoader:
    """A torch DataLoader over the published text rows: batches of `{"text": [str], "label": LongTensor}`.

    `label`: a shard column or a `meta` field (see `text_label_table`); `classes` fixes the label order
    (default: sorted label values); other keyword arguments go to `DataLoader`."""
    from torch.utils.data import DataLoader

    ds = TextLabelDataset(text_label_table(workspace, label, version=version), classes)
    return DataLoader(ds, batch_size=batch_size, shuffle=shuffle, **kwargs)  # type: ignore[arg-type]

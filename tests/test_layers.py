"""Lower layers never import upper ones: schemas < quality < pipeline < labeling < flows (checked on the
source, including imports inside functions)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["schemas", "quality", "pipeline", "labeling", "flows"]


def imports(path: Path) -> set[str]:
    """Top-level package names a module imports."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = []
    for rank, layer in enumerate(LAYERS):
        for path in sorted((ROOT / layer).rglob("*.py")):
            above = imports(path) & set(LAYERS[rank + 1 :])
            upward += [f"{path.relative_to(ROOT)} imports {sorted(above)}" for _ in [0] if above]
    assert not upward, "\n".join(upward)


def test_only_flows_import_prefect() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for layer in LAYERS[:-1]
        for p in (ROOT / layer).rglob("*.py")
        if {"prefect", "prefect_dask"} & imports(p)
    ]
    assert not offenders, offenders

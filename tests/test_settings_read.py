"""Every documented setting is read: a field of the curate.toml model that no code reads is a defect."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from schemas.config import CurateConfig

ROOT = Path(__file__).resolve().parents[1]
CODE = [p for d in ("pipeline", "quality", "labeling", "flows") for p in (ROOT / d).rglob("*.py")]


def settings(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, field name) of every field of the config model, nested sections included."""
    out = []
    for name, field in model.model_fields.items():
        out.append((prefix + name, name))
        ann = field.annotation
        for t in (ann, *getattr(ann, "__args__", ())):
            if isinstance(t, type) and issubclass(t, BaseModel):
                out += settings(t, f"{prefix}{name}.")
    return out


def test_every_setting_is_read_by_some_code() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in CODE)
    schemas = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "schemas").glob("*.py"))
    unread = [
        key
        for key, name in settings(CurateConfig)
        # attribute access (cfg.near.threshold), or the name in a model_dump include set / getattr;
        # a setting that only shapes other settings (a preset) is read by its model's validator
        if not re.search(rf"\.{name}\b|[\"']{name}[\"']", text)
        and not re.search(rf"\.get\([\"']{name}[\"']\)", schemas)
    ]
    assert not unread, f"settings that no code reads: {unread}"

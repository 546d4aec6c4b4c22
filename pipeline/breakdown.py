"""Who a filter removes: drop counts by source x reason, and by the data's own label x reason, with the
skews worth a warning (a filter that removes one class or one source far more than the rest)."""

from __future__ import annotations

from typing import Any

import duckdb

from pipeline import ids, relations
from pipeline.stages.dedup_audit import audit_lines, audit_summary
from pipeline.workspace import Workspace
from schemas import columns as C
from schemas.config import CurateConfig

DUP_REASONS = (C.REASON_EXACT_DUP, C.REASON_NEAR_DUP, C.REASON_SEMANTIC_DUP)
MIN_GROUP = 20  # smaller groups are too small to call a skew
MIN_SHARE = 0.2  # a reason must take at least this share of a group ...
MIN_RATIO = 2.0  # ... and at least this many times its share of the other groups
SHORT_HINT = {"too_few_words", "punct_lines", "no_stopwords", "mean_word_length", "symbol_ratio"}


def label_sql(cfg: CurateConfig) -> str | None:
    """SQL of a record's own label (the source's `label_field`, from `meta` or `data`), or None."""
    from pipeline.ingest import IngestError, expand_source

    fields: dict[str, str] = {}
    for src in cfg.sources:
        if not src.label_field:
            continue
        try:
            names = {inp.source for inp in expand_source(src)}
        except IngestError:
            continue
        fields |= dict.fromkeys(names, src.label_field)
    if not fields:
        return None

    def extract(field: str) -> str:
        path = relations.sql_str("$." + '"' + field.replace('"', '\\"') + '"')
        return f"coalesce(json_extract_string(r.{C.META}, {path}), json_extract_string(r.{C.DATA}, {path}))"

    if len(set(fields.values())) == 1:
        return extract(next(iter(fields.values())))
    cases = " ".join(f"WHEN {relations.sql_str(s)} THEN {extract(f)}" for s, f in sorted(fields.items()))
    return f"CASE r.{C.SOURCE} {cases} END"


def _counts(con: duckdb.DuckDBPyConnection, rel: str, key: str) -> dict[str, Any]:
    rows = con.sql(
        f"""SELECT {key} AS k, d.{C.DECISION}, d.{C.REASON}, count(*) FROM {rel} GROUP BY ALL ORDER BY ALL"""
    ).fetchall()
    out: dict[str, Any] = {}
    for k, decision, reason, n in rows:
        g = out.setdefault(str(k), {"records": 0, "kept": 0, "by_reason": {}})
        g["records"] += n
        if decision == C.KEEP:
            g["kept"] += n
        if reason is not None:
            g["by_reason"][reason] = g["by_reason"].get(reason, 0) + n
    return out


def skews(groups: dict[str, Any], by: str) -> list[dict[str, Any]]:
    """Reasons (duplicates aside) that take a far larger share of one group than of the others."""
    total = sum(g["records"] for g in groups.values())
    by_reason: dict[str, int] = {}  # totals, so each group's "rest" is one subtraction
    for g in groups.values():
        for r, n in g["by_reason"].items():
            if r not in DUP_REASONS:
                by_reason[r] = by_reason.get(r, 0) + n
    reasons = sorted(by_reason)
    found = []
    for value, g in groups.items():
        rest = total - g["records"]
        if g["records"] < MIN_GROUP or rest < MIN_GROUP:
            continue
        for r in reasons:
            n = g["by_reason"].get(r, 0)
            share, share_rest = n / g["records"], (by_reason[r] - n) / rest
            if share >= MIN_SHARE and share >= MIN_RATIO * share_rest:
                found.append(
                    {"by": by, "value": value, "reason": r, "records": g["records"],
                     "share": round(share, 4), "others": round(share_rest, 4)}
                )  # fmt: skip
    return found


def breakdown(ws: Workspace, cfg: CurateConfig, decisions_sql: str) -> dict[str, Any]:
    """`by_source`, `by_label` (when the data carries labels) and `skews` for the manifest."""
    con = relations.connect()
    rel = f"{ids.records_sql(ws)} r JOIN {decisions_sql} d USING ({C.ID})"
    out: dict[str, Any] = {"by_source": _counts(con, rel, f"r.{C.SOURCE}")}
    label = label_sql(cfg)
    if label is not None:
        by_label = _counts(con, rel, f"coalesce({label}, '(none)')")
        if set(by_label) != {"(none)"}:
            out["by_label"] = by_label
    out["skews"] = skews(out["by_source"], "source") + skews(out.get("by_label", {}), "label")
    if audit := audit_summary(ws.root, cfg.labeling.min_dedup_precision):  # labelling's dedup audit
        out["dedup_audit"] = audit
    return out


def _top(reasons: dict[str, int], n: int = 3) -> str:
    top = sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{r} {k}" for r, k in top)


def summary_lines(manifest: dict[str, Any], max_groups: int = 10) -> list[str]:
    """Plain-text lines for the run summary: duplicate groups, what semantic dedup compared and skipped,
    drops by source and by label, and skew warnings."""
    lines: list[str] = []
    d = manifest.get("dedup") or {}
    if d:
        dropped = d.get("dropped", {})
        none = d.get("groups_without_keeper", 0)
        line = f"duplicates: {d.get('groups', 0)} groups, {d.get('groups', 0) - none} keep one copy"
        if none:
            line += f", {none} keep none (no member passes the other rules)"
        line += "; copies dropped: " + ", ".join(
            f"{dropped.get(r, 0)} {r.split('_')[0]}" for r in DUP_REASONS
        )
        if d.get("released_by_keeper_check"):
            line += f"; {d['released_by_keeper_check']} linked records unlike their keeper were kept apart"
        lines.append(line)
    s = manifest.get("semantic") or {}
    if s.get("languages"):
        langs = s["languages"]
        compared = {k: v["compared"] for k, v in langs.items() if v.get("compared")}
        skipped = {k: v["skipped"] for k, v in langs.items() if v.get("skipped")}
        line = "semantic dedup compared " + (
            ", ".join(f"{k} {v}" for k, v in sorted(compared.items())) if compared else "nothing"
        )
        if skipped:
            line += (
                f"; not compared: {sum(skipped.values())} records in languages the embedder does not cover "
                f"or of unknown language ({_top(skipped, 5)}{', ...' if len(skipped) > 5 else ''})"
            )
        lines.append(line)
    b = manifest.get("breakdown") or {}
    for key, title in (("by_source", "source"), ("by_label", "label")):
        groups = b.get(key) or {}
        if len(groups) < 2:
            continue
        shown = sorted(groups.items(), key=lambda kv: -kv[1]["records"])[:max_groups]
        for value, g in shown:
            extra = f" ({_top(g['by_reason'])})" if g["by_reason"] else ""
            lines.append(f"{title} {value}: kept {g['kept']} of {g['records']}{extra}")
        if len(groups) > max_groups:
            lines.append(f"... and {len(groups) - max_groups} more {title}s (manifest.json: breakdown)")
    lines += audit_lines(b.get("dedup_audit") or [])  # per-stage audited precision, low ones flagged
    for k in b.get("skews", []):
        lines.append(
            f"warning: {k['reason']} dropped {k['share']:.0%} of {k['by']} {k['value']} "
            f"({k['records']} records) but {k['others']:.0%} of the rest"
            + (' — for short texts try [rules.text] preset = "short"' if k["reason"] in SHORT_HINT else "")
        )
    return lines

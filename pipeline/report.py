"""The curation report: one self-contained HTML page of plots and examples, derived from the SQL catalog.

Every number on the page comes from a query over `pipeline.catalog.connect(workspace)` (the query is shown
under each figure), so the report is never hand-kept. Plots are matplotlib figures inlined as SVG (text as
paths): the page loads nothing from the network and runs no script.

Sections: summary and versions, the funnel of records through the stages, drop reasons by source,
score histograms (kept vs dropped), duplicate cluster sizes (exact / near / semantic), language mix,
human labels (agreement per queue, annotator accuracy, the dedup audit's precision per stage) when the
label tables exist, quarantine, and examples of each decision (a dropped copy beside its keeper).
"""

from __future__ import annotations

import html
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np

from pipeline.workspace import Workspace, read_json
from schemas import columns as C
from schemas import labeling as L

KEPT_COLOUR, DROP_COLOUR, LABEL_COLOUR = "#2e7d32", "#c62828", "#f9a825"
PALETTE = [
    "#1f77b4", "#ff7f0e", "#17becf", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
]  # fmt: skip

# Stages in decision precedence (pipeline/stages verdict ranks): which reasons each one drops.
FUNNEL_STAGES: list[tuple[str, str]] = [
    ("exact dedup", f"reason = '{C.REASON_EXACT_DUP}'"),
    ("near dedup", f"reason = '{C.REASON_NEAR_DUP}'"),
    ("semantic dedup", f"reason = '{C.REASON_SEMANTIC_DUP}'"),
    ("human labels", f"starts_with(reason, '{C.LABEL}:') AND decision <> '{C.KEEP}'"),
    ("heuristic rules", f"reason IN (SELECT DISTINCT {C.RULE_REASON} FROM records)"),
    ("language", "starts_with(reason, 'lang:')"),
    ("PII", "reason = 'pii'"),
    ("quality model", "reason = 'low_quality'"),
    ("awaiting labels", f"decision = '{C.LABEL}'"),
]


@dataclass
class Section:
    """One part of the page: a title, figures (inline SVG) with the SQL they came from, and HTML."""

    key: str
    title: str
    intro: str = ""
    figures: list[tuple[str, str, str]] = field(default_factory=list)  # (svg, caption, sql)
    html: str = ""


def _figure(w: float, h: float):  # type: ignore[no-untyped-def]
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=96, layout="constrained")
    return fig


def _svg(fig) -> str:  # type: ignore[no-untyped-def]
    """The figure as an inline <svg> element (no XML prolog; text drawn as paths)."""
    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "curate-report"}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    s = buf.getvalue()
    return s[s.index("<svg") :]


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple]:
    return con.execute(sql).fetchall()


def _has(con: duckdb.DuckDBPyConnection, view: str) -> bool:
    """The view exists and holds a row (a stage's view exists, empty, before the stage has run)."""
    exists = con.execute(
        "SELECT count(*) FROM duckdb_views() WHERE view_name = ? AND NOT internal", [view]
    ).fetchall()[0][0]
    return bool(exists) and bool(
        con.execute(f"SELECT count(*) FROM (SELECT 1 FROM {view} LIMIT 1)").fetchall()[0][0]
    )


def _columns(con: duckdb.DuckDBPyConnection, view: str) -> dict[str, str]:
    return {r[0]: r[1] for r in con.execute(f"DESCRIBE {view}").fetchall()}


def _esc(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if math.isfinite(v) else str(v)
    return "∅" if v is None else html.escape(str(v))


def _table(header: list[str], rows: list[tuple], cls: str = "") -> str:
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


# --- sections -------------------------------------------------------------------------------------------


def summary(con: duckdb.DuckDBPyConnection, ws: Workspace) -> Section:
    """Counts of the current version and the list of versions."""
    s = Section("summary", "Summary")
    m = read_json(ws.manifest_path) if ws.manifest_path.exists() else {}
    c = m.get("counts", {})
    n = _rows(con, f"SELECT {C.DECISION}, count(*) FROM decisions GROUP BY 1 ORDER BY 1")
    q = _rows(con, "SELECT count(*) FROM quarantine")[0][0]
    facts = [
        ("workspace", str(ws.root)),
        ("current version", f"v{m['version']}" if "version" in m else "not published"),
        ("config hash", m.get("config_hash", "∅")),
        ("code version", m.get("code_version", "∅")),
        ("records", sum(k for _, k in n)),
        *[(f"decision {d}", k) for d, k in n],
        ("quarantined rows", q),
        ("published rows", c.get("kept", "∅")),
    ]
    s.html = _table(["", ""], facts, "facts")
    if _has(con, "versions"):
        v = _rows(
            con,
            "SELECT 'v' || version, CASE WHEN current THEN 'current' ELSE '' END, created, config_hash, "
            "records, kept, dropped, label, quarantined, shards FROM versions ORDER BY version DESC",
        )
        if v:
            s.html += "<h3>Versions</h3>" + _table(
                [
                    "version",
                    "",
                    "created (UTC)",
                    "config hash",
                    "records",
                    "kept",
                    "dropped",
                    "label",
                    "quarantined",
                    "shards",
                ],  # fmt: skip
                v,
            )
    return s


def funnel(con: duckdb.DuckDBPyConnection) -> Section:
    """Records remaining after each stage, in decision precedence order."""
    s = Section(
        "funnel",
        "Funnel: records through the stages",
        "Each bar is what remains after the stage; the red part is what that stage removed. Stages are "
        "in decision precedence order: a record is counted at the first stage that drops it.",
    )
    q = _rows(con, "SELECT count(*) FROM quarantine")[0][0]
    total = _rows(con, "SELECT count(*) FROM decisions")[0][0]
    labels, remain, removed = ["rows read"], [total + q], [0]
    labels.append("admitted (not quarantined)")
    remain.append(total)
    removed.append(q)
    left = total
    sqls = [f"SELECT count(*) FROM quarantine -- {q}"]
    for name, cond in FUNNEL_STAGES:
        sql = f"SELECT count(*) FROM decisions WHERE {C.REASON} IS NOT NULL AND ({cond})"
        k = _rows(con, sql)[0][0]
        if k == 0 and name in (
            "semantic dedup",
            "human labels",
            "language",
            "PII",
            "quality model",
            "awaiting labels",
        ):
            continue
        left -= k
        labels.append(f"after {name}")
        remain.append(left)
        removed.append(k)
        sqls.append(f"{sql} -- {k}")
    kept = _rows(con, f"SELECT count(*) FROM decisions WHERE {C.DECISION} = '{C.KEEP}'")[0][0]
    labels.append("kept (published)")
    remain.append(kept)
    removed.append(left - kept)
    fig = _figure(9, 0.45 * len(labels) + 1)
    ax = fig.add_subplot()
    y = np.arange(len(labels))[::-1]
    ax.barh(y, remain, color=KEPT_COLOUR, label="remaining")
    ax.barh(y, removed, left=remain, color=DROP_COLOUR, label="removed by this stage")
    for yi, r, d in zip(y, remain, removed, strict=True):
        ax.text(r + d, yi, f"  {r:,}" + (f"  (−{d:,})" if d else ""), va="center", fontsize=9)
    ax.set_yticks(y, labels)
    ax.set_xlim(0, max(remain) * 1.25 + 1)
    ax.set_xlabel("records")
    ax.legend(loc="lower right", fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    s.figures.append((_svg(fig), "Records remaining after each stage", "\n".join(sqls)))
    return s


def drops_by_source(con: duckdb.DuckDBPyConnection) -> Section:
    """Stacked bars: per source, kept records and each drop reason."""
    s = Section(
        "drops", "Drop reasons by source", "Share of each source's records kept or dropped, by reason."
    )
    sql = (
        f"SELECT {C.SOURCE}, coalesce({C.REASON}, {C.DECISION}) AS why, count(*) AS n FROM decisions "
        "GROUP BY ALL ORDER BY 1, 2"
    )
    rows = _rows(con, sql)
    if not rows:
        s.html = "<p>No decisions yet.</p>"
        return s
    sources = sorted({r[0] for r in rows})
    totals = {src: sum(n for a, _, n in rows if a == src) for src in sources}
    by_reason: dict[str, int] = {}
    for _, why, n in rows:
        by_reason[why] = by_reason.get(why, 0) + n
    reasons = [r for r in sorted(by_reason, key=lambda r: -by_reason[r]) if r != C.KEEP]
    top = reasons[:12]
    fig = _figure(9, 0.5 * len(sources) + 1.6)
    ax = fig.add_subplot()
    y = np.arange(len(sources))[::-1]
    left = np.zeros(len(sources))
    cats = [C.KEEP, *top] + (["other"] if len(reasons) > len(top) else [])
    for i, cat in enumerate(cats):
        share = np.array(
            [
                sum(
                    n
                    for a, why, n in rows
                    if a == src and (why == cat or (cat == "other" and why not in cats))
                )
                / totals[src]
                * 100
                for src in sources
            ]
        )
        colour = KEPT_COLOUR if cat == C.KEEP else PALETTE[(i - 1) % len(PALETTE)]
        ax.barh(y, share, left=left, color=colour, label=cat, edgecolor="white", linewidth=0.5)
        left += share
    ax.set_yticks(y, [f"{src} ({totals[src]:,})" for src in sources])
    ax.set_xlabel("% of the source's records")
    ax.set_xlim(0, 100)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=min(5, len(cats)), fontsize=8)
    s.figures.append((_svg(fig), "Decision and reason per source (share of its records)", sql))
    s.html = _table(["source", "reason", "records"], [r for r in rows if r[1] != C.KEEP], "compact")
    return s


SCORE_COLUMNS = [C.QUALITY, C.UNCERTAINTY, C.REFERENCE_SCORE, C.LANG_SCORE, C.CAPTION_ALIGNMENT]


def score_histograms(con: duckdb.DuckDBPyConnection, limit: int = 12) -> Section:
    """Histograms of the model scores and the rule scores, kept vs dropped records overlaid."""
    s = Section(
        "scores",
        "Quality scores",
        "Distribution of each score over text/image/record rows that have it: kept (green) vs dropped (red). "
        "Rule scores are the values the heuristic rules compare with their thresholds.",
    )
    cols = _columns(con, "records")
    numeric = [c for c in cols if any(t in cols[c] for t in ("DOUBLE", "FLOAT", "INTEGER", "BIGINT"))]
    cand = [c for c in SCORE_COLUMNS if c in numeric] + sorted(
        c for c in numeric if c.startswith(C.RULE_PREFIX)
    )
    counts = (
        _rows(con, "SELECT " + ", ".join(f'count("{c}")' for c in cand) + " FROM records") if cand else []
    )
    present = [c for c, k in zip(cand, counts[0] if counts else [], strict=False) if k > 0][:limit]
    if not present:
        s.html = "<p>No scores in this workspace.</p>"
        return s
    # each score over the modality it is about: the one with the most non-zero values of it
    mods = {
        c: _rows(
            con,
            f'SELECT {C.MODALITY} FROM records WHERE "{c}" IS NOT NULL GROUP BY 1 '
            f'ORDER BY count(*) FILTER ("{c}" <> 0) DESC, count(*) DESC LIMIT 1',
        )[0][0]
        for c in present
    }
    ncol = 3
    nrow = math.ceil(len(present) / ncol)
    fig = _figure(10, 2.3 * nrow)
    sql = f"SELECT {C.MODALITY}, {', '.join(present)}, {C.DECISION} = '{C.KEEP}' AS kept FROM records"
    data = con.execute(sql).fetchnumpy()
    kept = np.asarray(data["kept"], dtype=bool)
    modality = np.asarray(data[C.MODALITY], dtype=object)
    for i, c in enumerate(present):
        ax = fig.add_subplot(nrow, ncol, i + 1)
        v = np.asarray(data[c], dtype=float)
        ok = ~np.isnan(v) & (modality == mods[c])
        lo, hi = (np.min(v[ok]), np.max(v[ok])) if ok.any() else (0.0, 1.0)
        log = c in (C.RULE_PREFIX + "words", C.RULE_PREFIX + "chars") and lo >= 0 and hi > 100
        vv = np.log10(np.where(ok, v, 0) + 1) if log else v
        lo2, hi2 = (np.min(vv[ok]), np.max(vv[ok])) if ok.any() else (0.0, 1.0)
        bins = np.linspace(lo2, hi2 if hi2 > lo2 else lo2 + 1, 31)
        ax.hist(vv[ok & kept], bins=bins, color=KEPT_COLOUR, alpha=0.6, label="kept")
        ax.hist(vv[ok & ~kept], bins=bins, color=DROP_COLOUR, alpha=0.6, label="dropped")
        name = f"log10({c} + 1)" if log else c
        ax.set_title(f"{name} ({mods[c]}, {int(ok.sum()):,})", fontsize=9)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
        if i == 0:
            ax.legend(fontsize=7)
    s.figures.append((_svg(fig), "Score distributions, kept vs dropped", sql))
    return s


def cluster_sizes(con: duckdb.DuckDBPyConnection) -> Section:
    """How many duplicate clusters of each size the exact, near and semantic stages found."""
    s = Section(
        "clusters",
        "Duplicate cluster sizes",
        "Number of clusters (log scale when large) by members, per stage; singletons are not shown. "
        "`dup_group` is the duplicate graph's final group (one keeper each).",
    )
    cols = _columns(con, "decisions")
    kinds = [c for c in (C.EXACT_CLUSTER, C.NEAR_CLUSTER, C.SEMANTIC_CLUSTER, C.DUP_GROUP) if c in cols]
    sqls, panels = [], []
    for c in kinds:
        sql = (
            f"SELECT size, count(*) AS clusters FROM (SELECT {c}, count(*) AS size FROM decisions "
            f"WHERE {c} IS NOT NULL GROUP BY 1 HAVING count(*) > 1) GROUP BY 1 ORDER BY 1"
        )
        rows = _rows(con, sql)
        sqls.append(sql)
        if rows:
            panels.append((c, rows))
    if not panels:
        s.html = "<p>No duplicate clusters found.</p>"
        return s
    fig = _figure(10, 2.6)
    for i, (c, rows) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        sizes, n = zip(*rows, strict=True)
        ax.bar([str(x) for x in sizes], n, color=PALETTE[i])
        if max(n) > 30:
            ax.set_yscale("log")
        ax.set_title(f"{c}: {sum(n):,} clusters", fontsize=9)
        ax.set_xlabel("members", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.spines[["top", "right"]].set_visible(False)
    s.figures.append((_svg(fig), "Clusters by size", "\n".join(sqls)))
    return s


def language_mix(con: duckdb.DuckDBPyConnection, top: int = 15) -> Section:
    """Records per detected language, kept vs dropped."""
    s = Section(
        "languages", "Language mix", "Detected language of text records (top languages), by decision."
    )
    if C.LANG not in _columns(con, "records"):
        s.html = "<p>The language stage did not run.</p>"
        return s
    sql = (
        f"SELECT coalesce({C.LANG}, '(none)') AS lang, count(*) FILTER ({C.DECISION} = '{C.KEEP}') AS kept, "
        f"count(*) FILTER ({C.DECISION} <> '{C.KEEP}') AS not_kept FROM records "
        f"WHERE {C.MODALITY} = '{C.TEXT_MODALITY}' GROUP BY 1 ORDER BY kept + not_kept DESC, 1"
    )
    rows = _rows(con, sql)
    if not rows:
        s.html = "<p>No text records.</p>"
        return s
    if len(rows) > top:
        rest = rows[top:]
        rows = [*rows[:top], ("other", sum(r[1] for r in rest), sum(r[2] for r in rest))]
    fig = _figure(9, 3)
    ax = fig.add_subplot()
    x = [r[0] for r in rows]
    ax.bar(x, [r[1] for r in rows], color=KEPT_COLOUR, label="kept")
    ax.bar(
        x, [r[2] for r in rows], bottom=[r[1] for r in rows], color=DROP_COLOUR, label="dropped / to label"
    )
    ax.set_ylabel("text records")
    ax.legend(fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    s.figures.append((_svg(fig), "Languages of text records", sql))
    return s


def labels(con: duckdb.DuckDBPyConnection) -> Section:
    """Agreement per queue, annotator accuracy and agreement, the dedup audit's precision (tables present)."""
    s = Section("labels", "Human labels", "From the labelling loop's tables (`curate label pull`).")
    parts: list[tuple[str, Callable]] = []
    sqls = []
    if _has(con, "label_agreement"):
        sql = f"SELECT {C.QUEUE}, {C.KRIPPENDORFF_ALPHA}, {C.FLEISS_KAPPA} FROM label_agreement ORDER BY 1"
        rows = _rows(con, sql)
        sqls.append(sql)
        if rows:

            def draw_agreement(ax, rows=rows):  # type: ignore[no-untyped-def]
                x = np.arange(len(rows))
                a = [r[1] if r[1] is not None else np.nan for r in rows]
                k = [r[2] if r[2] is not None else np.nan for r in rows]
                ax.bar(x - 0.2, a, 0.4, label="Krippendorff α", color=PALETTE[0])
                ax.bar(x + 0.2, k, 0.4, label="Fleiss κ", color=PALETTE[1])
                ax.set_xticks(x, [r[0] for r in rows], fontsize=8)
                ax.set_ylim(min(0, np.nanmin([*a, *k, 0])), 1)
                ax.axhline(0.667, color="grey", lw=0.8, ls="--")
                ax.set_title("agreement per queue (dashed: α = 0.667)", fontsize=9)
                ax.legend(fontsize=7)

            parts.append(("agreement", draw_agreement))
            s.html += "<h3>Agreement per queue</h3>" + _table(["queue", "alpha", "kappa"], rows, "compact")
    if _has(con, "annotators"):
        cols = _columns(con, "annotators")
        acc = [c for c in (C.GOLD_ACCURACY, C.AGREEMENT) if c in cols]
        if acc:
            sql = f"SELECT {C.ANNOTATOR}, {', '.join(acc)} FROM annotators ORDER BY 1"
            rows = _rows(con, sql)
            sqls.append(sql)
            if rows:

                def draw_annotators(ax, rows=rows, acc=acc):  # type: ignore[no-untyped-def]
                    y = np.arange(len(rows))[::-1]
                    h = 0.8 / len(acc)
                    for j, c in enumerate(acc):
                        vals = [r[1 + j] if r[1 + j] is not None else np.nan for r in rows]
                        ax.barh(y + (j - (len(acc) - 1) / 2) * h, vals, h, label=c, color=PALETTE[2 + j])
                    ax.set_yticks(y, [str(r[0]) for r in rows], fontsize=8)
                    ax.set_xlim(0, 1)
                    ax.set_title("annotators: gold accuracy and agreement with consensus", fontsize=9)
                    ax.legend(fontsize=7)

                parts.append(("annotators", draw_annotators))
                s.html += "<h3>Annotators</h3>" + _table([C.ANNOTATOR, *acc], rows, "compact")
    audit = getattr(L, "AUDIT_TABLE", None)
    if audit and _has(con, audit):
        cols = _columns(con, audit)
        stage = getattr(L, "DEDUP_STAGE", None)
        prec = getattr(L, "PRECISION", None)
        lo, hi = getattr(L, "CI_LOW", None), getattr(L, "CI_HIGH", None)
        if stage in cols and prec in cols:
            ci = [c for c in (lo, hi) if c in cols]
            sql = f"SELECT {stage}, {prec}{''.join(', ' + c for c in ci)} FROM {audit} ORDER BY 1"
            rows = _rows(con, sql)
            sqls.append(sql)
            if rows:

                def draw_audit(ax, rows=rows, ci=ci):  # type: ignore[no-untyped-def]
                    x = np.arange(len(rows))
                    p = np.array([r[1] if r[1] is not None else np.nan for r in rows], dtype=float)
                    ax.bar(x, p, color=PALETTE[4])
                    if len(ci) == 2:
                        lo_ = np.array([r[2] if r[2] is not None else np.nan for r in rows], dtype=float)
                        hi_ = np.array([r[3] if r[3] is not None else np.nan for r in rows], dtype=float)
                        ax.errorbar(x, p, yerr=[p - lo_, hi_ - p], fmt="none", ecolor="black", capsize=3)
                    ax.set_xticks(x, [str(r[0]) for r in rows], fontsize=8)
                    ax.set_ylim(0, 1.05)
                    ax.set_title("dedup audit: precision per stage", fontsize=9)

                parts.append(("audit", draw_audit))
                s.html += "<h3>Dedup audit</h3>" + _table(["stage", "precision", *ci], rows, "compact")
    if not parts:
        s.html = "<p>No label tables yet: run <code>curate label push</code> / <code>pull</code>.</p>"
        return s
    fig = _figure(10, 3)
    for i, (_, draw) in enumerate(parts):
        ax = fig.add_subplot(1, len(parts), i + 1)
        draw(ax)
        ax.spines[["top", "right"]].set_visible(False)
    s.figures.insert(0, (_svg(fig), "Label agreement and annotator accuracy", "\n".join(sqls)))
    return s


def quarantine(con: duckdb.DuckDBPyConnection, show: int = 3) -> Section:
    """Bad input rows by reason kind, with examples."""
    s = Section("quarantine", "Quarantine", "Input rows that could not be read (file, line, reason).")
    sql = (
        f"SELECT split_part({C.Q_REASON}, ':', 1) AS kind, count(*) AS n, "
        f"list({C.Q_FILE} || ':' || coalesce({C.Q_LINE}::VARCHAR, '-') || ' ' || {C.Q_REASON} ORDER BY "
        f"{C.Q_FILE}, {C.Q_LINE})[1:{int(show)}] AS examples FROM quarantine GROUP BY 1 ORDER BY 2 DESC"
    )
    rows = _rows(con, sql)
    s.html = (
        _table(["kind", "rows", "examples"], [(k, n, " | ".join(e)) for k, n, e in rows], "compact")
        if rows
        else "<p>Nothing quarantined.</p>"
    )
    return s


def examples(con: duckdb.DuckDBPyConnection, per_reason: int = 3) -> Section:
    """Up to `per_reason` records of each decision/reason; a dropped copy is shown beside its keeper."""
    s = Section(
        "examples",
        "Examples of each decision",
        "A few records per reason (smallest ids). For a duplicate, the kept record it was matched to is "
        "shown beside it.",
    )
    content = f"left(coalesce(r.{C.TEXT}, r.{C.DATA}, r.{C.IMAGE_PATH}), 300)"
    keeper = f"left(coalesce(k.{C.TEXT}, k.{C.DATA}, k.{C.IMAGE_PATH}), 300)"
    thumb = f"CASE WHEN octet_length({{t}}.{C.IMAGE}) <= {THUMB_BYTES} THEN {{t}}.{C.IMAGE} END"
    sql = f"""
        SELECT coalesce(r.{C.REASON}, r.{C.DECISION}) AS why, r.{C.DECISION}, r.{C.ID}, r.{C.SOURCE},
               {content} AS content, r.{C.DUP_OF}, {keeper} AS keeper,
               {thumb.format(t="r")} AS image, {thumb.format(t="k")} AS kept_image
        FROM records r LEFT JOIN records k ON k.{C.ID} = r.{C.DUP_OF}
        QUALIFY row_number() OVER (PARTITION BY why ORDER BY hash(r.{C.ID}), r.{C.ID}) <= {int(per_reason)}
        ORDER BY r.{C.DECISION} DESC, why, r.{C.ID}"""
    rows = _rows(con, sql)
    out = []
    current = None
    for why, decision, rid, src, text, dup_of, kept_text, image, kept_image in rows:
        if why != current:
            if current is not None:
                out.append("</tbody></table>")
            cls = {C.KEEP: "keep", C.DROP: "drop"}.get(decision, "label")
            out.append(
                f'<h3 class="{cls}">{_esc(decision)}: {_esc(why)}</h3><table class="examples"><thead><tr>'
                "<th>id</th><th>source</th><th>content</th><th>kept copy</th></tr></thead><tbody>"
            )
            current = why
        pair = f"<b>{_esc(dup_of)}</b><br>{_img(kept_image)}{_esc(kept_text)}" if dup_of else ""
        body = f"{_img(image)}{_esc(text)}"
        out.append(f"<tr><td>{_esc(rid)}</td><td>{_esc(src)}</td><td>{body}</td><td>{pair}</td></tr>")
    if current is not None:
        out.append("</tbody></table>")
    s.html = "".join(out) or "<p>No records.</p>"
    s.html += f"<details><summary>SQL</summary><pre>{_esc(sql.strip())}</pre></details>"
    return s


CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"  # nothing may load from anywhere


def _img(data: bytes | None) -> str:
    """An inline thumbnail (data: URI) of image bytes, or nothing."""
    if not data:
        return ""
    import base64

    kind = "png" if data[:4] == b"\x89PNG" else "jpeg" if data[:3] == b"\xff\xd8\xff" else "webp"
    return f'<img class="thumb" alt="" src="data:image/{kind};base64,{base64.b64encode(data).decode()}"><br>'


THUMB_BYTES = 150_000  # images larger than this are shown by path only (the page stays small)

SECTIONS = (summary, funnel, drops_by_source, score_histograms, cluster_sizes, language_mix, labels,
            quarantine, examples)  # fmt: skip

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:16px 32px}header h1{margin:0;font-size:22px}
nav{padding:8px 32px;background:#eceff1;font-size:14px}nav a{margin-right:14px;color:#1565c0}
main{padding:8px 32px 48px;max-width:1150px}section{background:#fff;border:1px solid #ddd;border-radius:6px;
padding:12px 20px;margin:18px 0}h2{margin-top:4px}figure{margin:8px 0}figure svg{max-width:100%;height:auto}
figcaption{font-size:13px;color:#555}table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}th{background:#f1f1f1}
table.examples td{max-width:460px;word-break:break-word}h3.keep{color:#2e7d32}h3.drop{color:#c62828}
h3.label{color:#ef6c00}pre{white-space:pre-wrap;font-size:12px;background:#f6f8fa;padding:6px}
p.intro{color:#444;font-size:14px}img.thumb{max-width:160px;max-height:120px;border:1px solid #ccc}
"""


def build(workspace: str | Path, examples_per_reason: int = 3) -> str:
    """The report page of a workspace as one HTML string (inline SVG plots, no script, no network)."""
    from pipeline.catalog import connect

    ws = Workspace(workspace)
    con = connect(ws.root)
    try:
        sections = []
        for fn in SECTIONS:
            if fn is summary:
                sections.append(fn(con, ws))
            elif fn is examples:
                sections.append(fn(con, examples_per_reason))
            else:
                sections.append(fn(con))
    finally:
        con.close()
    return render(sections, ws)


def render(sections: list[Section], ws: Workspace) -> str:
    """The HTML page of the sections."""
    nav = "".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
    body = []
    for s in sections:
        figs = "".join(
            f'<figure class="plot">{svg}<figcaption>{html.escape(cap)}'
            f"<details><summary>SQL</summary><pre>{html.escape(sql)}</pre></details></figcaption></figure>"
            for svg, cap, sql in s.figures
        )
        intro = f'<p class="intro">{html.escape(s.intro)}</p>' if s.intro else ""
        body.append(f'<section id="{s.key}"><h2>{html.escape(s.title)}</h2>{intro}{figs}{s.html}</section>')
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"curate report: {ws.root.name}"
    meta = json.dumps({"workspace": str(ws.root), "generated": when})
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="generator" content="curate report"><title>{html.escape(title)}</title>'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<style>{CSS}</style></head><body><header><h1>{html.escape(title)}</h1>"
        f"<div>{html.escape(str(ws.root))} · generated {when}</div></header><nav>{nav}</nav><main>"
        + "".join(body)
        + f"</main><!-- {html.escape(meta)} --></body></html>\n"
    )


def write(workspace: str | Path, out: str | Path, examples_per_reason: int = 3) -> Path:
    """Write the report page to `out` (atomically) and return its path."""
    from pipeline.workspace import atomic_path

    out = Path(out)
    page = build(workspace, examples_per_reason)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return out

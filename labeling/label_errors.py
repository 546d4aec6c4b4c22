"""Label errors by confident learning: labels that a cross-validated model confidently disagrees with.

Out-of-fold class probabilities come from K-fold cross-validation of the loop's classifier; cleanlab's
`find_label_issues` flags the labels, `get_label_quality_scores` ranks them. Flagged records go to the
`review` queue for a second look.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dc_field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from labeling.learner import fit_predict_proba
from pipeline.stages.data_labels import DATA_LABELS_SCHEMA, DATA_LABELS_TABLE
from pipeline.workspace import Workspace
from schemas import columns as C

ISSUES_TABLE = "label_issues"  # the catalog's `label_issues` view (also written by the Label Studio loop)

REVIEW_QUEUE = "review"


def out_of_fold_proba(kind: str, x: Any, y: np.ndarray, k: int, folds: int = 5, seed: int = 0) -> np.ndarray:
    """n x k class probabilities, each row predicted by a model that did not see it."""
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=k)
    folds = int(max(2, min(folds, counts[counts > 0].min())))
    out = np.zeros((len(y), k))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        out[test] = fit_predict_proba(kind, x[train], y[train], x[test], k, seed)
    return out


def find_label_errors(
    kind: str, x: Any, y: np.ndarray, classes: list[str], folds: int = 5, seed: int = 0
) -> pl.DataFrame:
    """Per row: `label_issue` (bool), `label_quality` (0..1, low = suspect), `suggested_label`."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    y = np.asarray(y)
    k = len(classes)
    proba = out_of_fold_proba(kind, x, y, k, folds, seed)
    proba = np.clip(proba, 1e-6, 1.0)
    proba /= proba.sum(axis=1, keepdims=True)
    # n_jobs=1: a forked pool deadlocked inside a threaded process (the Prefect label flow)
    issues = find_label_issues(labels=y, pred_probs=proba, filter_by="prune_by_noise_rate", n_jobs=1)
    quality = get_label_quality_scores(labels=y, pred_probs=proba)
    return pl.DataFrame(
        {
            C.LABEL_ISSUE: np.asarray(issues, dtype=bool),
            C.LABEL_QUALITY: np.asarray(quality, dtype=np.float64),
            C.SUGGESTED_LABEL: [classes[i] for i in proba.argmax(axis=1)],
        }
    )


def review_rows(ids: list[str], errors: pl.DataFrame) -> pl.DataFrame:
    """(id, queue=review, label_quality, suggested_label) of the flagged rows, worst first."""
    return (
        errors.with_columns(pl.Series(C.ID, ids))
        .filter(pl.col(C.LABEL_ISSUE))
        .sort(C.LABEL_QUALITY)
        .select(C.ID, pl.lit(REVIEW_QUEUE).alias(C.QUEUE), C.LABEL_QUALITY, C.SUGGESTED_LABEL)
    )


# --- labels that came with the data: duplicate groups vote, then confident learning per group ----------

CHECK_C = 0.5  # inverse regularisation of the check's classifier (chosen on SMS spam, README figures)
DATA, VOTE, REVIEW = "data", "vote", "review"  # where a record's final `label` came from


def group_vote(groups: np.ndarray, y: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(group index per record, first record of each group, voted label per group): the majority of the
    labels of a duplicate group's copies; a tie goes to the label of the group's first record."""
    uniq, first, inv = np.unique(groups, return_index=True, return_inverse=True)
    counts = np.zeros((len(uniq), k), np.int64)
    np.add.at(counts, (inv, y), 1)
    top = counts.max(axis=1, keepdims=True)
    tied = (counts == top).sum(axis=1) > 1
    voted = counts.argmax(axis=1)
    voted[tied] = y[first][tied]
    return inv, first, voted


def oof_linear_proba(x: Any, y: np.ndarray, k: int, folds: int = 5, seed: int = 0, c: float = CHECK_C
                     ) -> np.ndarray:  # fmt: skip
    """n x k out-of-fold probabilities of an unweighted logistic regression (class weighting makes a noisy
    minority class look right: on SMS spam it cost 0.1-0.2 precision)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold

    counts = np.bincount(y, minlength=k)
    folds = int(max(2, min(folds, counts[counts > 0].min())))
    out = np.zeros((len(y), k))
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit(x[train], y[train])
        out[np.ix_(test, model.classes_)] = model.predict_proba(x[test])
    out = np.clip(out, 1e-6, 1.0)
    return out / out.sum(axis=1, keepdims=True)


def check_labels(
    x: Any, y: np.ndarray, classes: list[str], groups: np.ndarray | None = None, folds: int = 5, seed: int = 0
) -> pl.DataFrame:
    """Likely errors among labels that came with the data, one row per record (in input order).

    Copies of one duplicate group (`groups`: a group key per record, e.g. `dup_group` or the id) vote
    first; one row per group (its first record's features, the voted label) goes through out-of-fold
    confident learning, so copies never sit on both sides of a fold. A record's label is an issue when it
    differs from its group's corrected label (the model's where cleanlab flags the group, else the vote).
    Columns: `label_issue`, `label_quality` (out-of-fold P(own label), low = suspect), `p_wrong`,
    `voted_label`, `suggested_label`.
    """
    from cleanlab.filter import find_label_issues

    y = np.asarray(y)
    k = len(classes)
    groups = np.arange(len(y)) if groups is None else np.asarray(groups)
    inv, first, voted = group_vote(groups, y, k)
    present = np.unique(voted)
    proba = np.full((len(voted), k), 1.0 / k)
    flagged = np.zeros(len(voted), bool)
    if len(present) >= 2 and np.bincount(voted, minlength=k)[present].min() >= 2:
        proba = oof_linear_proba(x[first], voted, k, folds, seed)
        flagged = np.asarray(
            find_label_issues(labels=voted, pred_probs=proba, filter_by="prune_by_noise_rate")
        )
    corrected = np.where(flagged, proba.argmax(axis=1), voted)
    own_p = proba[inv, y]
    names = np.array(classes, dtype=object)
    return pl.DataFrame(
        {
            C.LABEL_ISSUE: y != corrected[inv],
            C.LABEL_QUALITY: own_p.astype(np.float64),
            C.P_WRONG: (1.0 - own_p).astype(np.float64),
            C.VOTED_LABEL: names[voted[inv]].tolist(),
            C.SUGGESTED_LABEL: names[corrected[inv]].tolist(),
        }
    )


# --- on a workspace ---------------------------------------------------------------------------------

SCOPES = ("kept", "all")


@dataclass
class CheckResult:
    """What `label check` did: records checked, duplicate groups, issues found, classes, files written."""

    label_field: str
    checked: int
    groups: int
    issues: int
    classes: list[str]
    frame: pl.DataFrame  # per checked record: id, label, dup group, decision, queue and the check's columns
    paths: dict[str, Path] = dc_field(default_factory=dict)


def read_data_labels(ws: Workspace, label_field: str, scope: str = "kept") -> pl.DataFrame:
    """Records carrying `label_field` (in `meta` or `data`): id, text, label, group (the duplicate group's
    keeper, else the id), decision. scope `kept`: kept records and the dropped copies of kept ones (what
    training reads, with the copies' votes); `all`: every labelled record."""
    from pipeline.catalog import connect
    from pipeline.relations import sql_str

    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r}: use {' or '.join(SCOPES)}")
    if not (ws.root / "decisions.parquet").exists():
        raise FileNotFoundError(f"{ws.root}: no decisions yet (run `curate run` on it first)")
    path = sql_str("$." + '"' + label_field.replace('"', '\\"') + '"')
    lab = f"coalesce(json_extract_string({C.META}, {path}), json_extract_string({C.DATA}, {path}))"
    con = connect(ws.root)
    frame = pl.from_arrow(
        con.sql(
            f"""SELECT {C.ID}, coalesce({C.TEXT}, {C.DATA}) AS {C.TEXT}, {lab} AS {C.LABEL_VALUE},
                       coalesce({C.DUP_GROUP}, {C.ID}) AS grp, {C.DECISION}, {C.REASON},
                       {C.MODALITY}, {C.META}, {C.DATA}
                FROM records WHERE {lab} IS NOT NULL ORDER BY {C.ID}"""
        ).to_arrow_table()
    )
    assert isinstance(frame, pl.DataFrame)
    if scope == "kept":
        kept = frame.filter(pl.col(C.DECISION) == C.KEEP)[C.ID]
        frame = frame.filter(pl.col("grp").is_in(kept.implode()) | (pl.col(C.DECISION) == C.KEEP))
    return frame


def record_vectors(ws: Workspace, frame: pl.DataFrame, embed: Any) -> np.ndarray:
    """The default embeddings of `frame`'s records: the workspace's `embed` stage output where it has them,
    else embedded now with `embed` (an EmbedConfig)."""
    from pipeline.workspace import read_rows

    files = ws.stage_files("embed")
    n = frame.height
    out: np.ndarray | None = None
    have = np.zeros(n, bool)
    if files:
        t = read_rows(files, [C.ID, C.EMBEDDING], frame[C.ID].to_arrow())
        t = t.filter(t[C.EMBEDDING].is_valid())
        if t.num_rows:
            got = pl.from_arrow(t)
            assert isinstance(got, pl.DataFrame)
            pos = frame.select(C.ID).with_row_index("i").join(got, on=C.ID, how="inner")
            vecs = np.asarray(pos[C.EMBEDDING].to_list(), dtype=np.float32)
            out = np.zeros((n, vecs.shape[1]), np.float32)
            rows = pos["i"].to_numpy()
            out[rows], have[rows] = vecs, True
    if not have.all():
        from quality.embed import embed_texts

        missing = np.flatnonzero(~have)
        vecs = embed_texts([t or "" for t in frame[C.TEXT].gather(missing).to_list()], embed)
        if out is None:
            out = np.zeros((n, vecs.shape[1]), np.float32)
        out[missing] = vecs
    assert out is not None
    return out


def _merge_write(path: Path, new: pl.DataFrame, key: pl.Expr) -> Path:
    """Write `new` into the table at `path`, replacing the rows `key` selects and keeping the others."""
    from pipeline.workspace import write_parquet

    if path.exists():
        old = pl.read_parquet(path)
        if C.LABEL_FIELD in old.columns:
            old = old.filter(~key.fill_null(False))
        else:  # rows of the Label Studio loop (retrain): another origin, kept as they are
            old = old.with_columns(pl.lit(None, pl.String).alias(C.LABEL_FIELD))
        new = pl.concat([old, new], how="diagonal_relaxed")
    return write_parquet(new.to_arrow(), path)


def read_reviews(ws: Workspace) -> pl.DataFrame:
    """The reviewed labels so far (id, label) from `<ws>/data_labels.parquet`."""
    path = ws.global_path(DATA_LABELS_TABLE)
    if not path.exists():
        return pl.DataFrame(schema={C.ID: pl.String, C.LABEL_VALUE: pl.String})
    return pl.read_parquet(path).filter(pl.col(C.LABEL_SOURCE) == REVIEW).select(C.ID, C.LABEL_VALUE)


def write_data_labels(ws: Workspace, frame: pl.DataFrame, reviews: pl.DataFrame) -> Path:
    """`<ws>/data_labels.parquet`: per checked record its training label: a reviewer's answer, else its
    group's vote where copies outvote it, else its own label (the shards carry it as `label`)."""
    from pipeline.workspace import write_parquet

    out = (
        frame.select(C.ID, C.LABEL_VALUE, C.VOTED_LABEL)
        .join(reviews.rename({C.LABEL_VALUE: "_rev"}), on=C.ID, how="left")
        .select(
            C.ID,
            pl.coalesce("_rev", C.VOTED_LABEL, C.LABEL_VALUE).alias(C.LABEL_VALUE),
            pl.when(pl.col("_rev").is_not_null())
            .then(pl.lit(REVIEW))
            .when(pl.col(C.VOTED_LABEL) != pl.col(C.LABEL_VALUE))
            .then(pl.lit(VOTE))
            .otherwise(pl.lit(DATA))
            .alias(C.LABEL_SOURCE),
        )
    )
    return write_parquet(out.to_arrow().cast(DATA_LABELS_SCHEMA), ws.global_path(DATA_LABELS_TABLE))


def check_workspace(
    workspace: str | Path,
    label_field: str,
    scope: str = "kept",
    queues: list | None = None,
    embed: Any = None,
    folds: int = 5,
    seed: int = 0,
) -> CheckResult:
    """`curate label check`: likely errors in the labels that came with the data (field `label_field`).

    Duplicate copies vote per group; confident learning runs out of fold on the default embeddings. Writes
    `<ws>/label_issues.parquet` (rows of this field replaced, the Label Studio loop's rows kept; `queue` is
    the queue each record routes to, so `curate label push --queue <queue>-review` sends the issues for a
    second look) and `<ws>/data_labels.parquet` (the voted labels the shards carry after publish).
    """
    from labeling import queues as routing
    from pipeline.decide import saved_config
    from schemas.labeling import default_queues

    ws = Workspace(workspace)
    frame = read_data_labels(ws, label_field, scope)
    classes = sorted(set(frame[C.LABEL_VALUE].to_list()))
    if frame.height == 0:
        raise ValueError(f"{ws.root}: no record carries a label in field {label_field!r} (meta or data)")
    if len(classes) < 2:
        raise ValueError(f"field {label_field!r} holds one class only ({classes[0]!r}): nothing to check")
    cfg = saved_config(ws)
    x = record_vectors(ws, frame, embed or cfg.embed)
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[v] for v in frame[C.LABEL_VALUE].to_list()])
    groups = np.unique(frame["grp"].to_numpy().astype(str), return_inverse=True)[1]
    err = check_labels(x, y, classes, groups, folds, seed)
    frame = routing.assign(frame, queues or cfg.labeling.queues or default_queues())
    frame = pl.concat([frame, err], how="horizontal").with_columns(pl.lit(label_field).alias(C.LABEL_FIELD))
    table = frame.select(
        C.ID, C.QUEUE, C.LABEL_FIELD, C.LABEL_VALUE, C.VOTED_LABEL, C.SUGGESTED_LABEL, C.LABEL_ISSUE,
        C.LABEL_QUALITY, C.P_WRONG, pl.col("grp").alias(C.DUP_GROUP), C.DECISION,
    ).sort(C.P_WRONG, descending=True)  # fmt: skip
    issues_path = ws.global_path(ISSUES_TABLE)
    _merge_write(issues_path, table, pl.col(C.LABEL_FIELD) == label_field)
    labels_path = write_data_labels(ws, frame, read_reviews(ws))
    return CheckResult(
        label_field, frame.height, int(groups.max() + 1), int(err[C.LABEL_ISSUE].sum()), classes, frame,
        {"label_issues": issues_path, "data_labels": labels_path},
    )  # fmt: skip


def read_truth(path: str | Path, label_field: str, id_field: str = "id") -> dict[str, str]:
    """id -> true label, from a table (TSV/CSV/JSONL/Parquet) with `id_field` and `label_field` (or
    `label`)."""
    from labeling.learner import _read_table

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such truth file")
    t = _read_table(p, label_field)
    col = label_field if label_field in t.columns else C.LABEL_VALUE
    missing = [c for c in (id_field, col) if c not in t.columns]
    if missing:
        raise ValueError(f"{p}: no column {missing[0]!r} (needs {id_field!r} and {label_field!r}); "
                         f"columns: {', '.join(t.columns)}")  # fmt: skip
    return dict(zip(t[id_field].cast(pl.String).to_list(), t[col].cast(pl.String).to_list(), strict=True))


@dataclass
class ReviewResult:
    """What `label review` did: candidates, labels spent (asked), labels changed, not in the truth file."""

    candidates: int
    asked: int
    changed: int
    unknown: int
    already: int
    check: CheckResult
    paths: dict[str, Path] = dc_field(default_factory=dict)


def review_candidates(check: CheckResult, reviewed: set[str]) -> pl.DataFrame:
    """Kept records whose label looks wrong, most likely wrong first (reviewed ones left out)."""
    f = check.frame
    return f.filter(
        (pl.col(C.DECISION) == C.KEEP) & pl.col(C.LABEL_ISSUE) & ~pl.col(C.ID).is_in(list(reviewed))
    ).sort([C.P_WRONG, C.ID], descending=[True, False])


def review_workspace(
    workspace: str | Path,
    label_field: str,
    truth: dict[str, str],
    noise: float = 0.0,
    budget: int | None = None,
    seed: int = 0,
    check: CheckResult | None = None,
    **check_args: Any,
) -> ReviewResult:
    """`curate label review --truth`: the likely label errors among kept records, most likely wrong first
    (at most `budget`), answered by a simulated annotator who reads `truth` and errs at rate `noise`; the
    answers become those records' `label` (`<ws>/data_labels.parquet`, carried by the shards after publish).
    Earlier answers are kept and never asked again."""
    ws = Workspace(workspace)
    check = check or check_workspace(ws.root, label_field, **check_args)
    reviews = read_reviews(ws)
    done = set(reviews[C.ID].to_list())
    cand = review_candidates(check, done)
    asked = cand if budget is None else cand.head(budget)
    # a truth file names records by the input's own id; workspace ids are `<source>/<id>`
    asked = asked.with_columns(
        pl.col(C.ID).replace_strict(truth, default=None, return_dtype=pl.String)
        .fill_null(
            pl.col(C.ID).str.splitn("/", 2).struct.field("field_1").replace_strict(truth, default=None)
        )
        .alias("_truth")
    )  # fmt: skip
    known = asked.filter(pl.col("_truth").is_not_null())
    classes = sorted(set(check.classes) | set(truth.values()))
    index = {c: i for i, c in enumerate(classes)}
    rng = np.random.default_rng(seed)
    y_true = np.array([index[v] for v in known["_truth"].to_list()], dtype=np.int64)
    from labeling.simulate import annotate

    answers = annotate(y_true, len(classes), noise, rng) if len(y_true) else y_true
    new = pl.DataFrame(
        {C.ID: known[C.ID], C.LABEL_VALUE: [classes[a] for a in answers]}, schema=reviews.schema
    )
    changed = int((new[C.LABEL_VALUE] != known[C.LABEL_VALUE]).sum()) if new.height else 0
    path = write_data_labels(ws, check.frame, pl.concat([reviews, new]))
    return ReviewResult(cand.height, known.height, changed, asked.height - known.height, len(done), check,
                        {"data_labels": path})  # fmt: skip

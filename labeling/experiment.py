"""Proof of value: does curated data train a model that matches the raw-data model with fewer examples and
fewer labels? (`curate eval`, benchmarks/data_value.py.)

Per seed: a stratified test split is held out (clean labels); the rest becomes a pool with stated,
seeded corruptions (class-conditional label flips, heavy-tailed duplicates carrying wrong labels, junk
lines, test items planted as leaks). The decontamination gate removes every leak from the pool before any
arm sees it. Arms:

- raw: the pool as it is;
- curated: the real flow (`pipeline.steps.run_local`: exact/near dedup, short-text rules, decontamination),
  kept records, with the labels of duplicate copies voted per group (`label check`);
- review: curated + `label review` of the likeliest label errors within a label budget, answered by a
  simulated annotator of stated error rate;
- active: curated records, labels bought by uncertainty sampling from the same simulated annotator.

Each arm trains the same downstream models (logistic regression on the default embeddings; TF-IDF +
logistic regression) on growing prefixes of its data and is scored on the test split (accuracy,
macro-F1). The factor an arm needs is raw's examples (labels) at its final point divided by the arm's at
its first point reaching raw's final score, per seed; a raw curve that falls is reported as such.
"""

from __future__ import annotations

import json
import shutil
import string
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from schemas import columns as C

ARMS = ("raw", "curated", "review", "active")
MODELS = ("embed", "tfidf")
CURVE_COLUMNS = ("dataset", "seed", "arm", "model", "examples", "labels", "accuracy", "macro_f1")


@dataclass
class Corruption:
    """The stated corruptions of the pool (all seeded)."""

    flip: dict[str, float] = field(default_factory=dict)  # class -> share of its labels flipped
    dup_sources: float = 0.05  # share of pool records copied, chosen among the flipped ones
    dup_zipf: float = 1.8  # copies per source ~ Zipf(a), capped at dup_cap (heavy tail)
    dup_cap: int = 40
    junk: float = 0.15  # junk lines added, as a share of the pool, with random labels
    leaks: float = 0.03  # share of test items planted in the pool (half exact, half lightly edited)


@dataclass
class Settings:
    """One experiment: the data, the split, the budgets, the annotator."""

    name: str
    test_size: float = 0.25
    budget: int = 300  # review: labels spent on the likeliest errors; active: labels bought
    noise: float = 0.05  # the simulated annotator's error rate
    al_batch: int = 25
    grid: tuple[int, ...] = (25, 50, 100, 200, 400, 800, 1600, 3200)
    corruption: Corruption = field(default_factory=Corruption)
    models: tuple[str, ...] = MODELS
    max_rows: int | None = None  # subsample the data set (quick runs)


# --- data sets ---------------------------------------------------------------------------------------


def load_sms(path: str | Path) -> tuple[list[str], list[str]]:
    """(texts, labels) of the SMS Spam Collection TSV (`label<TAB>text`, header line)."""
    rows = [ln.split("\t", 1) for ln in Path(path).read_text(encoding="utf-8").splitlines()[1:] if "\t" in ln]
    return [t for _, t in rows], [lab for lab, _ in rows]


def load_turku(folder: str | Path) -> tuple[list[str], list[str]]:
    """(lines, labels) of the Turku web-line quality set (1 = clean text, 0 = boilerplate), all splits;
    `labels` are `clean` / `boilerplate`."""
    texts, labels = [], []
    for split in ("train", "dev", "test"):
        p = Path(folder) / f"{split}.json"
        if p.exists():
            for doc in json.loads(p.read_text(encoding="utf-8")):
                for t, lab in zip(doc["text"], doc["labels"], strict=False):
                    if t and t.strip():
                        texts.append(t)
                        labels.append("clean" if str(lab) == "1" else "boilerplate")
    return texts, labels


# --- corruptions -------------------------------------------------------------------------------------


def light_edit(text: str, rng: np.random.Generator) -> str:
    """One light edit: two typos, a word dropped or inserted, case, a `Fwd:` prefix, two words swapped."""
    w = text.split()
    op = rng.choice(["typo", "drop", "case", "prefix", "swap", "insert"])
    if op == "typo" and len(text) > 4:
        s = list(text)
        for i in rng.choice(len(s), 2, replace=False):
            s[i] = chr(int(rng.integers(97, 123)))
        return "".join(s)
    if op == "drop" and len(w) > 3:
        del w[int(rng.integers(len(w)))]
    elif op == "case":
        return text.upper() if rng.random() < 0.5 else text.lower()
    elif op == "swap" and len(w) > 2:
        i = int(rng.integers(len(w) - 1))
        w[i], w[i + 1] = w[i + 1], w[i]
    elif op == "insert":
        w.insert(int(rng.integers(len(w) + 1)), "really")
    else:
        w = ["Fwd:", *w]
    return " ".join(w)


def junk_line(rng: np.random.Generator) -> str:
    """A junk line of one of the kinds real scraped text carries: digit runs, symbol runs, base64-like
    blobs, empty markup, a bare URL."""
    kind = int(rng.integers(5))
    if kind == 0:
        return " ".join("".join(rng.choice(list(string.digits), 4)) for _ in range(int(rng.integers(3, 8))))
    if kind == 1:
        return " ".join("".join(rng.choice(list("#*=~|_-"), 4)) for _ in range(int(rng.integers(2, 6))))
    if kind == 2:
        return "".join(
            rng.choice(list(string.ascii_letters + string.digits + "+/"), int(rng.integers(40, 90)))
        )
    if kind == 3:
        return ""
    return (
        "http://"
        + "".join(rng.choice(list(string.ascii_lowercase), 12))
        + ".example/"
        + str(rng.integers(1e6))
    )


def make_pool(texts: list[str], labels: list[str], test: np.ndarray, pool: np.ndarray, spec: Corruption,
              rng: np.random.Generator, true_labels: list[str] | None = None) -> pl.DataFrame:  # fmt: skip
    """The corrupted pool: id, text, label (given), true_label, kind (clean, flipped, copy, junk, leak)."""
    truth_all = true_labels if true_labels is not None else labels
    classes = sorted(set(labels) | set(truth_all))
    ids, out_t, out_l, truth, kind = [], [], [], [], []

    def add(text: str, given: str, true: str, k: str) -> None:
        ids.append(f"p{len(ids):06d}")
        out_t.append(text)
        out_l.append(given)
        truth.append(true)
        kind.append(k)

    flipped = []
    for i in pool:
        true, given = truth_all[i], labels[i]
        if rng.random() < spec.flip.get(given, 0.0):
            others = [c for c in classes if c != given]
            add(texts[i], others[int(rng.integers(len(others)))], true, "flipped")
            flipped.append(len(ids) - 1)
        else:
            add(texts[i], given, true, "clean" if given == true else "flipped")
            if given != true:
                flipped.append(len(ids) - 1)
    n_src = int(round(spec.dup_sources * len(pool)))
    sources = rng.choice(flipped, min(n_src, len(flipped)), replace=False) if flipped else []
    for s in sources:
        copies = int(min(rng.zipf(spec.dup_zipf), spec.dup_cap))
        for _ in range(copies):
            text = out_t[s] if rng.random() < 0.5 else light_edit(out_t[s], rng)
            add(text, out_l[s], truth[s], "copy")
    n_base = len(ids)
    for _ in range(int(round(spec.junk * n_base))):
        add(junk_line(rng), classes[int(rng.integers(len(classes)))], "", "junk")
    leak = rng.choice(test, int(round(spec.leaks * len(test))), replace=False) if len(test) else []
    for j, i in enumerate(leak):
        add(texts[i] if j % 2 == 0 else light_edit(texts[i], rng), labels[i], truth_all[i], "leak")
    frame = pl.DataFrame({C.ID: ids, C.TEXT: out_t, C.LABEL_VALUE: out_l, "true_label": truth, "kind": kind})
    return frame.sample(fraction=1.0, shuffle=True, seed=int(rng.integers(1 << 31)))


# --- downstream models and curves --------------------------------------------------------------------


def _fit_score(model: str, x_train: Any, y_train: np.ndarray, x_test: Any, y_test: np.ndarray,
               k: int, seed: int) -> tuple[float, float]:  # fmt: skip
    """(accuracy, macro-F1) on the test split of the downstream model trained on (x_train, y_train)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score

    if len(np.unique(y_train)) < 2:
        pred = np.full(len(y_test), y_train[0] if len(y_train) else 0)
    elif model == "tfidf":
        from sklearn.feature_extraction.text import TfidfVectorizer

        vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        xt = vec.fit_transform(x_train)
        clf = LogisticRegression(C=10.0, solver="liblinear", class_weight="balanced", random_state=seed)
        pred = clf.fit(xt, y_train).predict(vec.transform(x_test))
    else:
        clf = LogisticRegression(C=2.0, max_iter=2000, class_weight="balanced", random_state=seed)
        pred = clf.fit(x_train, y_train).predict(x_test)
    return float(accuracy_score(y_test, pred)), float(
        f1_score(y_test, pred, average="macro", labels=range(k))
    )


def grid_for(n: int, grid: tuple[int, ...]) -> list[int]:
    """The curve's sizes up to `n`, always ending at `n`."""
    return sorted({g for g in grid if g < n} | {n}) if n else []


def curve(arm: str, rows: np.ndarray, y: np.ndarray, extra_labels: np.ndarray, data: dict, settings: Settings,
          seed: int, sizes: list[int] | None = None) -> list[dict]:  # fmt: skip
    """Scores of each model trained on growing prefixes of `rows` (labels `y`); `extra_labels[i]` = labels
    spent on row i beyond its own (a review answer)."""
    out = []
    spent = np.cumsum(1 + extra_labels)
    for n in sizes or grid_for(len(rows), settings.grid):
        for model in settings.models:
            x = data["texts"] if model == "tfidf" else data["x"]
            xs = [x[i] for i in rows[:n]] if model == "tfidf" else x[rows[:n]]
            acc, f1 = _fit_score(model, xs, y[:n], data["x_test" if model != "tfidf" else "t_test"],
                                 data["y_test"], data["k"], seed)  # fmt: skip
            out.append({"arm": arm, "model": model, "examples": int(n), "labels": int(spent[n - 1]),
                        "accuracy": acc, "macro_f1": f1})  # fmt: skip
    return out


def active_curve(
    rows: np.ndarray, truth: np.ndarray, data: dict, settings: Settings, seed: int
) -> list[dict]:
    """Curated records, labels bought from the simulated annotator by uncertainty sampling (least
    confidence, diverse picks), `al_batch` at a time up to `budget`."""
    from labeling import route
    from labeling.learner import fit_predict_proba
    from labeling.simulate import annotate

    rng = np.random.default_rng(seed)
    k = data["k"]
    x = data["x"][rows]
    picked = np.zeros(0, np.int64)
    answers = np.zeros(0, np.int64)
    out: list[dict] = []
    marks = set(grid_for(min(settings.budget, len(rows)), settings.grid))
    proba = None
    while len(picked) < min(settings.budget, len(rows)):
        rest = np.setdiff1d(np.arange(len(rows)), picked)
        step = min(settings.al_batch, settings.budget - len(picked), len(rest))
        scores = None if proba is None else route.uncertainty(proba[rest], "least_confidence")
        pick = route.select(len(rest), step, "uncertainty" if scores is not None else "diversity", scores,
                            x[rest], 4.0, int(rng.integers(1 << 31)))  # fmt: skip
        new = rest[pick]
        picked = np.concatenate([picked, new])
        answers = np.concatenate([answers, annotate(truth[new], k, settings.noise, rng)])
        proba = fit_predict_proba("text", x[picked], answers, x, k, seed)
        for m in sorted(g for g in marks if g <= len(picked)):
            marks.discard(m)
            out += curve("active", rows[picked], answers, np.zeros(len(picked), np.int64), data, settings,
                         seed, [m])  # fmt: skip
    return out


# --- one seed ------------------------------------------------------------------------------------------


def run_seed(texts: list[str], labels: list[str], settings: Settings, seed: int, workdir: Path,
             log: Callable[[str], None] = lambda s: None, true_labels: list[str] | None = None,
             test_idx: np.ndarray | None = None) -> dict:  # fmt: skip
    """Every arm on one seed; the curve rows and what each step found.

    `labels` are the labels the data comes with; `true_labels` (default: the same) what the test split is
    scored on and what the simulated annotator reads. `test_idx`: a held-out test split (default: a
    stratified `test_size` share, new per seed)."""
    from sklearn.model_selection import train_test_split

    from labeling.label_errors import check_workspace, review_workspace
    from pipeline.decontaminate import build_index, match
    from pipeline.steps import run_local
    from quality.embed import embed_texts
    from schemas.config import CurateConfig, DecontaminateConfig

    rng = np.random.default_rng(seed)
    truth_all = true_labels if true_labels is not None else labels
    classes = sorted(set(labels) | set(truth_all))
    index = {c: i for i, c in enumerate(classes)}
    idx = np.arange(len(texts))
    if test_idx is None:
        pool_idx, test_idx = train_test_split(idx, test_size=settings.test_size, random_state=seed,
                                              stratify=truth_all)  # fmt: skip
    else:
        test_idx = np.asarray(test_idx)
        pool_idx = np.setdiff1d(idx, test_idx)
    pool = make_pool(texts, labels, test_idx, pool_idx, settings.corruption, rng, truth_all)
    workdir.mkdir(parents=True, exist_ok=True)
    test_path = workdir / "test.jsonl"
    with test_path.open("w", encoding="utf-8") as f:
        for i in test_idx:
            f.write(json.dumps({C.ID: f"t{i}", C.TEXT: texts[i]}) + "\n")
    # the decontamination gate: nothing of the test split may reach any arm
    dcfg = DecontaminateConfig(against=[str(test_path)])
    gate = build_index([f"t{i}" for i in test_idx], [texts[i] for i in test_idx], dcfg)
    found = match(pool[C.TEXT].to_list(), gate, dcfg)[C.CONTAMINATED_BY]
    leaked = np.asarray(found.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    planted = (pool["kind"] == "leak").to_numpy()
    stats: dict[str, Any] = {
        "pool": pool.height,
        "kinds": dict(pool["kind"].value_counts().iter_rows()),
        "leaks_planted": int(planted.sum()),
        "leaks_caught": int((leaked & planted).sum()),
        "gate_other_drops": int((leaked & ~planted).sum()),
    }
    pool = pool.filter(~pl.Series(leaked))
    pool_path = workdir / "pool.jsonl"
    pool.select(C.ID, C.TEXT, C.LABEL_VALUE).write_ndjson(pool_path)
    all_texts = pool[C.TEXT].to_list()
    x_all = embed_texts(all_texts + [texts[i] for i in test_idx])
    data = {"texts": all_texts, "x": x_all[: pool.height], "x_test": x_all[pool.height :],
            "t_test": [texts[i] for i in test_idx],
            "y_test": np.array([index[truth_all[i]] for i in test_idx]), "k": len(classes)}  # fmt: skip
    order = np.asarray(rng.permutation(pool.height))
    y_given = np.array([index[v] for v in pool[C.LABEL_VALUE].to_list()])
    true_of = {r: t for r, t in zip(pool[C.ID].to_list(), pool["true_label"].to_list(), strict=True) if t}
    rows: list[dict] = []
    log(f"  seed {seed}: pool {pool.height} ({stats['kinds']}), raw arm")
    rows += curve("raw", order, y_given[order], np.zeros(len(order), np.int64), data, settings, seed)
    # curated: the real flow
    ws = workdir / "ws"
    shutil.rmtree(ws, ignore_errors=True)
    cfg = CurateConfig.model_validate({
        "workspace": str(ws),
        "sources": [
            {"path": str(pool_path), "name": "pool", "modality": "text", "label_field": C.LABEL_VALUE}
        ],
        "rules": {"text": {"preset": "short"}},
        "stages": {"pii": False, "semantic": False},
        "decontaminate": {"against": [str(test_path)]},
    })  # fmt: skip
    run = run_local(cfg)
    counts = run.published.manifest["counts"]
    stats["flow"] = {"kept": counts["kept"], "by_reason": counts.get("by_reason", {})}
    check = check_workspace(ws, C.LABEL_VALUE, "kept", seed=seed)
    stats["check_issues"] = check.issues
    pos = {r: i for i, r in enumerate(pool[C.ID].to_list())}
    kept_mask = (check.frame[C.DECISION] == C.KEEP).to_numpy()
    labels_now = pl.read_parquet(ws / "data_labels.parquet")
    voted = dict(zip(labels_now[C.ID].to_list(), labels_now[C.LABEL_VALUE].to_list(), strict=True))
    kept_ids = [r for r, m in zip(check.frame[C.ID].to_list(), kept_mask, strict=True) if m]
    kept_rows = np.array([pos[r.split("/", 1)[1]] for r in kept_ids], dtype=np.int64)
    korder = rng.permutation(len(kept_rows))
    kept_rows, kept_ids = kept_rows[korder], [kept_ids[i] for i in korder]
    y_cur = np.array([index[voted[r]] for r in kept_ids])
    wrong_raw = float((y_given != np.array([index.get(true_of.get(r, ""), -1) for r in pool[C.ID]])).mean())
    wrong_cur = float(np.mean([voted[r] != true_of.get(r.split("/", 1)[1]) for r in kept_ids]))
    stats |= {"wrong_labels_raw": wrong_raw, "wrong_labels_curated": wrong_cur}
    log(f"  seed {seed}: curated {len(kept_rows)} kept of {pool.height}")
    rows += curve("curated", kept_rows, y_cur, np.zeros(len(kept_rows), np.int64), data, settings, seed)
    # curated + label review within the budget
    rev = review_workspace(ws, C.LABEL_VALUE, true_of, settings.noise, settings.budget, seed, check=check)
    labels_now = pl.read_parquet(ws / "data_labels.parquet")
    final = dict(zip(labels_now[C.ID].to_list(), labels_now[C.LABEL_VALUE].to_list(), strict=True))
    reviewed = set(labels_now.filter(pl.col(C.LABEL_SOURCE) == "review")[C.ID].to_list())
    y_rev = np.array([index[final[r]] for r in kept_ids])
    extra = np.array([1 if r in reviewed else 0 for r in kept_ids], dtype=np.int64)
    stats |= {"review_asked": rev.asked, "review_changed": rev.changed,
              "wrong_labels_reviewed": float(np.mean([final[r] != true_of.get(r.split("/", 1)[1])
                                                      for r in kept_ids]))}  # fmt: skip
    log(f"  seed {seed}: review spent {rev.asked} labels, changed {rev.changed}")
    rows += curve("review", kept_rows, y_rev, extra, data, settings, seed)
    # curated + active learning from the same annotator
    # junk that passed the rules has no true class: the annotator repeats its given label
    truth_kept = np.array([index[true_of.get(r.split("/", 1)[1], voted[r])] for r in kept_ids])
    rows += active_curve(kept_rows, truth_kept, data, settings, seed)
    for r in rows:
        r["seed"] = seed
        r["dataset"] = settings.name
    return {"rows": rows, "stats": stats}


# --- factors -------------------------------------------------------------------------------------------


def _stays_from(a: pl.DataFrame, metric: str, target: float) -> dict | None:
    """The first row of curve `a` (sorted by examples) from which `metric` stays at or above `target` (a
    noisy early blip does not count), or None."""
    below = a.with_row_index("i").filter(pl.col(metric) < target - 1e-9)["i"]
    hit = a.slice(int(below.max()) + 1 if below.len() else 0)
    return hit.row(0, named=True) if hit.height else None


def factors(rows: list[dict], metric: str = "macro_f1", model: str = "embed") -> dict:
    """Per arm: examples and labels at the first point from which it stays at raw's final `metric`, and
    raw's final examples / labels divided by them (None where the arm never reaches it); whether raw's
    curve falls, and the same factor against raw's best point (`*_vs_peak`: raw's examples at its peak
    divided by the arm's examples from which it stays at that peak score), the conservative figure when
    more raw data made the raw model worse."""
    df = pl.DataFrame(rows).filter(pl.col("model") == model)
    raw = df.filter(pl.col("arm") == "raw").sort("examples")
    if raw.height == 0:
        return {}
    final = raw.row(-1, named=True)
    target = final[metric]
    best = raw.sort([metric, "examples"], descending=[True, False]).row(0, named=True)
    out: dict[str, Any] = {
        "target": target,
        "raw_examples": final["examples"],
        "raw_labels": final["labels"],
        "raw_peak": best[metric],
        "raw_peak_examples": best["examples"],
        "raw_falls": bool(best[metric] > target + 0.005),
        "arms": {},
    }
    for arm in ARMS[1:]:
        a = df.filter(pl.col("arm") == arm).sort("examples")
        if a.height == 0:
            continue
        last = a.row(-1, named=True)
        entry: dict[str, Any] = {"final": last[metric], "final_examples": last["examples"]}
        h = _stays_from(a, metric, target)
        entry |= {
            "examples": h and h["examples"],
            "labels": h and h["labels"],
            "factor_examples": h and final["examples"] / h["examples"],
            "factor_labels": h and final["labels"] / h["labels"],
        }
        p = _stays_from(a, metric, best[metric])
        entry |= {
            "examples_vs_peak": p and p["examples"],
            "factor_examples_vs_peak": p and best["examples"] / p["examples"],
            "factor_labels_vs_peak": p and best["labels"] / p["labels"],
        }
        out["arms"][arm] = entry
    return out


def summarise(per_seed: list[dict], settings: Settings) -> dict:
    """Medians over seeds (with min/max) of the final scores and factors, per arm."""
    rows = [r for s in per_seed for r in s["rows"]]
    df = pl.DataFrame(rows)
    out: dict[str, Any] = {"dataset": settings.name, "seeds": [], "corruption": asdict(settings.corruption),
                           "budget": settings.budget, "annotator_error": settings.noise}  # fmt: skip
    for s, seed_rows in zip(per_seed, [[r for r in s["rows"]] for s in per_seed], strict=True):
        seed = seed_rows[0]["seed"]
        fac = {
            m: {met: factors(seed_rows, met, m) for met in ("macro_f1", "accuracy")} for m in settings.models
        }
        out["seeds"].append({"seed": seed, "stats": s["stats"], "factors": fac})
    finals = (
        df.sort("examples").group_by(["seed", "arm", "model"], maintain_order=True).last()
        .group_by(["arm", "model"]).agg(pl.col("accuracy").median(), pl.col("macro_f1").median(),
                                        pl.col("macro_f1").min().alias("f1_min"),
                                        pl.col("macro_f1").max().alias("f1_max"),
                                        pl.col("examples").median(), pl.col("labels").median())
    )  # fmt: skip
    out["final"] = finals.sort(["model", "arm"]).to_dicts()
    return out


def plot(rows: list[dict], path: str | Path, metric: str = "macro_f1") -> Path:
    """PNG: per data set and model, `metric` against examples and against labels, one line per arm and
    seed (log x)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pl.DataFrame(rows)
    sets = df["dataset"].unique(maintain_order=True).to_list()
    models = df["model"].unique(maintain_order=True).to_list()
    fig, axes = plt.subplots(len(sets) * len(models), 2, figsize=(11, 3.6 * len(sets) * len(models)),
                             squeeze=False)  # fmt: skip
    colours = {"raw": "tab:red", "curated": "tab:blue", "review": "tab:green", "active": "tab:purple"}
    for i, (ds, model) in enumerate((d, m) for d in sets for m in models):
        for j, xcol in enumerate(("examples", "labels")):
            ax = axes[i][j]
            sub = df.filter((pl.col("dataset") == ds) & (pl.col("model") == model))
            for (arm, seed), g in sub.group_by(["arm", "seed"], maintain_order=True):
                g = g.sort(xcol)
                ax.plot(g[xcol], g[metric], color=colours.get(arm, "grey"), alpha=0.8, marker=".",
                        label=arm if seed == sub["seed"].min() else None)  # fmt: skip
            ax.set_xscale("log")
            ax.set_xlabel(xcol)
            ax.set_ylabel(metric)
            ax.set_title(f"{ds}, {model}: {metric} vs {xcol}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(p, dpi=90)
    plt.close(fig)
    return p

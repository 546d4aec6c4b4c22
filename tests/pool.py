"""A pool of ~1 KB real-text documents with known duplicate groups, for dedup invariants.

Each base document is made of distinct real sentences (Common Crawl, SMS, MRPC: several languages, as
they come); `n_groups` of them get 1-5 extra copies, each an exact copy or a light edit (typos, web
boilerplate around it, truncated to 85 %, a sentence dropped, reflowed lines). The truth is the base
document each row was made from (`group`).
"""

from __future__ import annotations

import gzip
import json
import random
import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BOILERPLATE = [
    "Home | About us | Contact | Privacy policy",
    "Share this: Facebook Twitter Email Print",
    "Copyright 2019 All rights reserved. Powered by WordPress.",
    "Subscribe to our newsletter to get the latest updates in your inbox.",
    "Skip to main content",
]
EDITS = ("exact", "typos", "boilerplate", "truncate", "drop_sentence", "reflow")


def sentences() -> list[str]:
    """Distinct real sentences of 30-300 characters from three data sets."""
    out: list[str] = []
    cc = DATA / "commoncrawl_sample_dolma"
    for f in sorted(cc.glob("*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            for line in fh:
                text = json.loads(line).get("text") or ""
                out += re.split(r"(?<=[.!?])\s+|\n", text)
    for line in (DATA / "sms_spam" / "SMSSpamCollection").read_text(encoding="utf-8").split("\n")[1:]:
        if "\t" in line:
            out.append(line.split("\t", 1)[1])
    for line in (DATA / "mrpc" / "msr_paraphrase_train.txt").read_text(encoding="utf-8-sig").split("\n")[1:]:
        parts = line.split("\t")
        if len(parts) == 5:
            out += parts[3:]
    return sorted({s.strip() for s in out if 30 < len(s.strip()) < 300})


def edit(text: str, kind: str, rng: random.Random) -> str:
    """A copy of `text` with one light edit."""
    sents = text.split(" | ")
    if kind == "exact":
        return text
    if kind == "typos":
        words = text.split(" ")
        for _ in range(max(1, len(words) // 40)):
            i = rng.randrange(len(words))
            w = words[i]
            if len(w) > 3:
                j = rng.randrange(len(w) - 1)
                words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
        return " ".join(words)
    if kind == "boilerplate":
        return "\n".join([*rng.sample(BOILERPLATE, 2), text, *rng.sample(BOILERPLATE, 1)])
    if kind == "truncate":
        return text[: int(len(text) * 0.85)]
    if kind == "drop_sentence" and len(sents) > 3:
        k = rng.randrange(len(sents))
        return " | ".join(sents[:k] + sents[k + 1 :])
    words, lines, line = text.split(), [], []
    for w in words:  # reflow (and drop_sentence of a short text)
        line.append(w)
        if sum(len(x) + 1 for x in line) > 60:
            lines.append(" ".join(line))
            line = []
    return "\n".join([*lines, " ".join(line)])


def build_pool(n_base: int = 1500, n_groups: int = 300, seed: int = 11) -> list[dict]:
    """Rows `id`, `text`, `group` (the base document), `edit` (how the row was made), shuffled."""
    rng = random.Random(seed)
    pool = sentences()
    rng.shuffle(pool)
    it = iter(pool)
    rows = []
    for g in range(n_base):
        doc, size = [], 0
        while size < 1000:
            s = next(it)  # every sentence is used once: two base documents share nothing
            doc.append(s)
            size += len(s) + 3
        base = " | ".join(doc)
        rows.append({"text": base, "group": g, "edit": "base"})
        if g < n_groups:
            for _ in range(rng.randint(1, 5)):
                kind = rng.choice(EDITS)
                rows.append({"text": edit(base, kind, rng), "group": g, "edit": kind})
    rng.shuffle(rows)
    for i, r in enumerate(rows):
        r["id"] = f"p{i:05d}"
    return rows


def write_pool(path: Path, **kw: int) -> list[dict]:
    """Write the pool as JSONL (`id`, `text`; the truth stays in the returned rows)."""
    rows = build_pool(**kw)
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps({"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")
    return rows

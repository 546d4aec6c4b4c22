"""PII detection precision/recall on real text with stated insertions, with and without the validators.

Sample: real ham SMS in which our detector finds nothing; a third stay as they are, a third get one inserted
valid item at a random word boundary: e-mails, phone numbers (UK 020/07 and +44, US (NANP) and +1, German
+49 30), IPv4/IPv6, Luhn-valid card numbers of real issuer prefixes (half printed in groups of four),
mod-97-valid IBANs of DE/GB/FR/NL (half in groups of four); a third get an *invalid look-alike* (card with a
wrong Luhn digit, IBAN with wrong check digits, IPv4 with an octet > 255, 8-digit order number). A hit is a
span of the inserted kind overlapping the inserted item; anything else found is a false positive. The "regex
only" row runs the candidate patterns and keeps every candidate (what a regex-only scrubber does). Also
reported: how many untouched real texts (all SMS, English web lines) get flagged, by kind.

Usage: .venv/bin/python benchmarks/pii.py [--n 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
sys.path.insert(
    0, str(ROOT)
)  # the repo's packages, not this folder (benchmarks/quality.py shadows `quality`)
KINDS = ("email", "phone", "ip", "credit_card", "iban")


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def iban(country: str, bban: str, valid: bool = True) -> str:
    check = 98 - int("".join(str(int(ch, 36)) for ch in bban + country + "00")) % 97
    return f"{country}{(check if valid else (check + 1) % 97 or 2):02d}{bban}"


def grouped(s: str, rng: random.Random) -> str:
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4)) if rng.random() < 0.5 else s


def item(kind: str, rng: random.Random, valid: bool = True) -> str:
    d = lambda n: "".join(str(rng.randint(0, 9)) for _ in range(n))  # noqa: E731
    if kind == "email":
        user = rng.choice(["anna.smith", "j.doe", "mike_r", "lena+news", "p.virtanen"]) + str(
            rng.randint(1, 99)
        )
        return f"{user}@{rng.choice(['example.com', 'mail.co.uk', 'uni-helsinki.fi', 'web.de'])}"
    if kind == "phone":
        area = rng.choice(["212", "415", "617", "312"])
        n7 = f"{rng.randint(200, 899)}{rng.randint(1000, 9999)}"
        de = rng.randint(1000000, 9999999)
        return rng.choice(
            [f"020 7{d(3)} {d(4)}", f"+44 20 7{d(3)} {d(4)}", f"07{rng.randint(700, 999)} {d(6)}",
             f"({area}) {n7[:3]}-{n7[3:]}", f"+1 {area} {n7[:3]} {n7[3:]}", f"+49 30 {de}"]
        )  # fmt: skip
    if kind == "ip":
        if not valid:
            return ".".join(str(rng.randint(256, 999) if i == 1 else rng.randint(1, 254)) for i in range(4))
        if rng.random() < 0.7:
            return ".".join(str(rng.randint(1, 254)) for _ in range(4))
        return f"2001:db8:{rng.randint(1, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}"
    if kind == "credit_card":
        body = rng.choice(["4", "51", "6011"])
        body += d(15 - len(body))
        check = luhn_digit(body)
        return grouped(body + (check if valid else str((int(check) + 1) % 10)), rng)
    country, n = rng.choice([("DE", 18), ("FR", 23), ("GB", 14), ("NL", 10)])
    bban = {"GB": "NWBK", "NL": "ABNA"}.get(country, "") + d(n)
    return grouped(iban(country, bban, valid), rng)


def insert(text: str, value: str, rng: random.Random) -> tuple[str, tuple[int, int]]:
    words = text.split(" ")
    cut = rng.randint(0, len(words))
    prefix = " ".join(words[:cut]) + (" " if cut else "")
    rest = (" " + " ".join(words[cut:])) if cut < len(words) else ""
    return prefix + value + rest, (len(prefix), len(prefix) + len(value))


def sample(n: int, seed: int):
    from quality.pii import scan_texts

    rng = random.Random(seed)
    rows = [
        ln.split("\t", 1)
        for ln in (DATA / "sms_spam" / "SMSSpamCollection").read_text("utf-8").splitlines()[1:]
    ]
    ham = [r[1] for r in rows if r[0] == "ham"]
    counts = scan_texts(ham)["pii_count"].to_pylist()
    clean = [t for t, c in zip(ham, counts, strict=True) if c == 0]
    out = []
    for i in range(n):
        base = rng.choice(clean)
        if i % 3 == 0:
            out.append((base, None))
        elif i % 3 == 1:
            kind = KINDS[(i // 3) % len(KINDS)]
            text, span = insert(base, item(kind, rng), rng)
            out.append((text, (*span, kind)))
        else:  # invalid look-alike: must not be found
            kind = rng.choice(["credit_card", "iban", "ip", "order"])
            value = (
                f"order {rng.randint(10_000_000, 99_999_999)}"
                if kind == "order"
                else item(kind, rng, valid=False)
            )
            out.append((insert(base, value, rng)[0], None))
    return out


def regex_only(text: str) -> list[tuple[int, int, str]]:
    """The candidate patterns alone, no validators (a plain regex scrubber)."""
    from quality import pii

    spans = [(m.start(), m.end(), "email") for m in pii._EMAIL.finditer(text)]
    spans += [(m.start(), m.end(), "iban") for m in pii._IBAN.finditer(text)]
    spans += [(m.start(), m.end(), "credit_card") for m in pii._CARD.finditer(text)]
    spans += [(m.start(), m.end(), "ip") for m in pii._IPV4.finditer(text)]
    spans += [
        (m.start(), m.end(), "phone") for m in __import__("re").finditer(r"\+?\(?\d[\d ().-]{6,}\d", text)
    ]
    taken: list[tuple[int, int, str]] = []
    for s in sorted(spans, key=lambda s: (pii.PRIORITY.index(s[2]), s[0])):
        if all(s[1] <= t[0] or s[0] >= t[1] for t in taken):
            taken.append(s)
    return taken


def evaluate(data, finder) -> tuple[dict[str, list[int]], int]:
    per = {k: [0, 0] for k in KINDS}  # tp, fn
    fp = 0
    for text, gold in data:
        found = finder(text)
        hit = [s for s in found if gold and s[2] == gold[2] and s[0] < gold[1] and gold[0] < s[1]]
        if gold:
            per[gold[2]][0 if hit else 1] += 1
        fp += len(found) - len(hit)
    return per, fp


def main() -> None:
    from quality.pii import find_pii, scan_texts

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--n", type=int, default=2000, help="texts in the sample (1/3 clean, 1/3 PII, 1/3 look-alikes)"
    )
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    data = sample(args.n, args.seed)
    n_items = sum(g is not None for _, g in data)
    print(f"sample: {len(data)} real ham SMS, {n_items} with one valid inserted item, "
          f"{sum(g is None for _, g in data) - len(data) // 3} with an invalid look-alike")  # fmt: skip
    for label, finder in (("curate (validators)", find_pii), ("regex only", regex_only)):
        t = time.perf_counter()
        per, fp = evaluate(data, finder)
        secs = time.perf_counter() - t
        tp = sum(v[0] for v in per.values())
        fn = sum(v[1] for v in per.values())
        print(f"\n{label}: precision {tp / max(tp + fp, 1):.3f}  recall {tp / max(tp + fn, 1):.3f}  "
              f"({tp} hits, {fp} false positives, {fn} missed; {len(data) / secs:.0f} texts/s)")  # fmt: skip
        for k, (a, b) in per.items():
            print(f"  {k:12s} recall {a / max(a + b, 1):.3f} ({a}/{a + b})")
    rows = [
        ln.split("\t", 1)
        for ln in (DATA / "sms_spam" / "SMSSpamCollection").read_text("utf-8").splitlines()[1:]
    ]
    lines = []
    for split in ("train", "dev", "test"):
        for d in json.loads((DATA / "turku_web_line_quality" / "en" / f"{split}.json").read_text("utf-8")):
            lines += d["text"]
    ham = [r[1] for r in rows if r[0] == "ham"]
    spam = [r[1] for r in rows if r[0] == "spam"]
    for name, texts in (("SMS ham", ham), ("SMS spam", spam), ("Turku en lines", lines)):
        t = time.perf_counter()
        res = scan_texts(texts)
        secs = time.perf_counter() - t
        kinds = Counter(k for ks in res["pii_kinds"].to_pylist() for k in ks)
        flagged = sum(c > 0 for c in res["pii_count"].to_pylist())
        rate = len(texts) / secs
        print(f"\nuntouched {name}: {flagged}/{len(texts)} flagged {dict(kinds)} ({rate:.0f} texts/s)")


if __name__ == "__main__":
    main()

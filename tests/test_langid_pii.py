"""Language id on real multilingual web documents (Turku en/de/es/fi); PII detection on real SMS texts
into which known, valid PII items were inserted (how each item is made is stated in `make_items`)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from schemas import columns as C
from schemas.embed import LangConfig, PiiConfig

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"real data folder {DATA} is absent")
LANGS = ("en", "de", "es", "fi")


def turku(lang: str, split: str = "test") -> list[str]:
    docs = json.loads((DATA / "turku_web_line_quality" / lang / f"{split}.json").read_text(encoding="utf-8"))
    return ["\n".join(d["text"]) for d in docs]


def sms_ham() -> list[str]:
    rows = [
        ln.split("\t", 1)
        for ln in (DATA / "sms_spam" / "SMSSpamCollection").read_text("utf-8").splitlines()[1:]
    ]
    return [r[1] for r in rows if r[0] == "ham"]


def test_language_of_real_web_documents():
    from quality.langid import detect

    for lang in LANGS:
        docs = turku(lang)
        batch = pa.table({C.ID: [f"{lang}-{i}" for i in range(len(docs))], C.TEXT: docs})
        out = detect(batch)
        assert out.schema.names == [C.ID, C.LANG, C.LANG_SCORE]
        found = np.array(out[C.LANG].to_pylist())
        assert (found == lang).mean() >= 0.9, (lang, found)
        score = np.array(out[C.LANG_SCORE].to_pylist())
        assert ((score >= 0) & (score <= 1.0 + 1e-6)).all()


def test_language_policy_and_empty_text():
    from quality.langid import detect, language_ok

    texts = [turku("de")[0], turku("en")[0], "", None, turku("fi")[0]]
    batch = pa.table({C.ID: list("abcde"), C.TEXT: pa.array(texts, pa.string())})
    out = detect(batch)
    assert out[C.LANG].to_pylist()[2:4] == [None, None]
    assert language_ok(out).to_pylist() == [True] * 5  # no policy: everything passes
    assert language_ok(out, LangConfig(keep=["en", "de"])).to_pylist() == [True, True, False, False, False]
    only = detect(batch, LangConfig(candidates=["en", "de"]))
    assert set(only[C.LANG].drop_null().to_pylist()) <= {"en", "de"}


def _luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return str((10 - total % 10) % 10)


def _iban(country: str, bban: str) -> str:
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(ch, 36)) for ch in moved)) % 97
    return f"{country}{check:02d}{bban}"


def make_items(rng: random.Random) -> dict[str, list[str]]:
    """Valid PII made here: e-mails from names and domains; phone numbers in national and international
    formats of real numbering plans (UK 020/07, US NANP with real area codes, German 030); IPv4 with octets in
    range and IPv6 in compressed form; card numbers with issuer prefixes and a computed Luhn digit (some with
    spaces); IBANs of DE/GB/FR/NL with computed mod-97 check digits (some printed in groups of four)."""
    names = ["anna.smith", "j.doe", "mike_r", "lena+news", "p.virtanen"]
    domains = ["example.com", "mail.co.uk", "uni-helsinki.fi", "web.de", "corp.example.org"]
    items: dict[str, list[str]] = {k: [] for k in ("email", "phone", "ip", "credit_card", "iban")}
    for _ in range(40):
        items["email"].append(f"{rng.choice(names)}{rng.randint(1, 99)}@{rng.choice(domains)}")
        n7 = f"{rng.randint(200, 899)}{rng.randint(1000, 9999)}"
        items["phone"].append(
            rng.choice(
                [
                    f"020 7{rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                    f"+44 20 7{rng.randint(100, 999)} {rng.randint(1000, 9999)}",
                    f"07{rng.randint(700, 999)} {rng.randint(100000, 999999)}",
                    f"({rng.choice(['212', '415', '617', '312'])}) {n7[:3]}-{n7[3:]}",
                    f"+1 {rng.choice(['212', '415', '617', '312'])} {n7[:3]} {n7[3:]}",
                    f"+49 30 {rng.randint(1000000, 9999999)}",
                ]
            )
        )
        if rng.random() < 0.7:
            items["ip"].append(".".join(str(rng.randint(1, 254)) for _ in range(4)))
        else:
            items["ip"].append(f"2001:db8:{rng.randint(1, 0xFFFF):x}::{rng.randint(1, 0xFFFF):x}")
        body = rng.choice(["4", "51", "37", "6011"])
        length = 15 if body == "37" else 16
        body += "".join(str(rng.randint(0, 9)) for _ in range(length - len(body) - 1))
        card = body + _luhn_digit(body)
        items["credit_card"].append(
            " ".join(card[i : i + 4] for i in range(0, 16, 4)) if rng.random() < 0.5 else card
        )
        country, n = rng.choice([("DE", 18), ("GB", 18), ("FR", 23), ("NL", 14)])
        if country == "GB":
            bban = "NWBK" + "".join(str(rng.randint(0, 9)) for _ in range(14))
        elif country == "NL":
            bban = "ABNA" + "".join(str(rng.randint(0, 9)) for _ in range(10))
        else:
            bban = "".join(str(rng.randint(0, 9)) for _ in range(n))
        iban = _iban(country, bban)
        items["iban"].append(
            " ".join(iban[i : i + 4] for i in range(0, len(iban), 4)) if rng.random() < 0.5 else iban
        )
    return items


def inserted_sample(seed: int = 0) -> tuple[list[str], list[tuple[int, int, str] | None]]:
    """Real ham SMS without detected PII, half of them with one inserted item at a word boundary."""
    from quality.pii import scan_texts

    rng = random.Random(seed)
    ham = sms_ham()
    clean = [t for t, n in zip(ham, scan_texts(ham)[C.PII_COUNT].to_pylist(), strict=True) if n == 0]
    base = rng.sample(clean, 400)
    items = make_items(rng)
    pool = [(k, v) for k, vs in items.items() for v in vs]
    texts, truth = [], []
    for i, t in enumerate(base):
        if i % 2:
            texts.append(t)
            truth.append(None)
            continue
        kind, value = pool[(i // 2) % len(pool)]
        words = t.split(" ")
        cut = rng.randint(0, len(words))
        prefix = " ".join(words[:cut]) + (" " if cut else "")
        texts.append(prefix + value + (" " + " ".join(words[cut:]) if cut < len(words) else ""))
        truth.append((len(prefix), len(prefix) + len(value), kind))
    return texts, truth


def test_pii_precision_and_recall_on_real_text_with_inserted_items():
    from quality.pii import find_pii

    texts, truth = inserted_sample()
    tp = fp = fn = 0
    for text, gold in zip(texts, truth, strict=True):
        found = find_pii(text)
        hits = [s for s in found if gold and s[2] == gold[2] and s[0] < gold[1] and gold[0] < s[1]]
        tp += bool(hits)
        fn += bool(gold) and not hits
        fp += len(found) - len(hits)
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    assert precision >= 0.95, (precision, tp, fp)
    assert recall >= 0.9, (recall, tp, fn)


def test_validators_reject_lookalikes():
    from quality.pii import find_pii, iban_ok, luhn_ok

    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("DE89370400440532013000") and not iban_ok("DE89370400440532013001")
    text = (
        "Order 4111 1111 1111 1112 shipped on 2019-07-17 at 12:30:45, version 1.2.3.4.5, ip 300.1.2.3, "
        "IBAN DE89 3704 0044 0532 0130 01, mail me at someone@localhost or msg@kiosk.Valid, ref 1234567."
    )
    assert find_pii(text) == []
    good = "card 4111 1111 1111 1111, iban DE89 3704 0044 0532 0130 00, ip 10.0.0.254, bob@example.com"
    assert [s[2] for s in find_pii(good)] == ["credit_card", "iban", "ip", "email"]
    assert [s[2] for s in find_pii(good, PiiConfig(kinds=["email"]))] == ["email"]


def test_scan_and_redact_columns():
    from quality.pii import drop_mask, find_pii, redact, scan

    texts, truth = inserted_sample(seed=1)
    texts = texts[:60] + [None]
    batch = pa.table({C.ID: [str(i) for i in range(len(texts))], C.TEXT: pa.array(texts, pa.string())})
    out = scan(batch)
    assert out.schema.names == [C.ID, C.PII_COUNT, C.PII_KINDS]
    counts = out[C.PII_COUNT].to_pylist()
    assert counts[-1] == 0 and out[C.PII_KINDS].to_pylist()[-1] == []
    assert sum(c > 0 for c in counts) >= 0.9 * sum(t is not None for t in truth[:60])
    red = redact(batch[C.TEXT])
    assert isinstance(red, pa.ChunkedArray) and red.to_pylist()[-1] is None
    for before, after, n in zip(texts[:-1], red.to_pylist()[:-1], counts[:-1], strict=True):
        assert find_pii(after) == []
        assert (after != before) == (n > 0)
    assert any("<EMAIL>" in t for t in red.to_pylist()[:-1] if t)
    assert redact(["mail bob@example.com now"]) == ["mail <EMAIL> now"]
    assert drop_mask(out).to_pylist() == [False] * len(texts)
    assert drop_mask(out, PiiConfig(action="drop")).to_pylist() == [c > 0 for c in counts]


def test_scan_prefilters_agree_with_the_full_detector_and_dates_are_not_phones():
    """scan_texts runs each kind only where its RE2 prefilter fires and libphonenumber only around digit
    clusters; on real SMS (spam is full of phone numbers) it must count what find_pii counts on the whole
    text. Dates, year/age ranges, coordinates and time zones seen in web text are not phone numbers."""
    from quality.pii import find_pii, scan_texts

    rows = [
        ln.split("\t", 1)
        for ln in (DATA / "sms_spam" / "SMSSpamCollection").read_text("utf-8").splitlines()[1:]
    ]
    texts = [r[1] for r in rows]
    counts = scan_texts(texts)[C.PII_COUNT].to_pylist()
    assert counts == [len(find_pii(t)) for t in texts]
    assert sum(c > 0 for c in counts) > 300
    not_phone = [
        "online (02.10.2017 um 14:49 Uhr)",
        "44.552778°N 0.868056°W",
        "adults (16-46 years)",
        "2014-08-01 12:23:33 -0500 David",
        "Am 01.09.1898 – vor 109 Jahren",
        "Fr. von 09.00 - 18.30 Uhr",
        "2018-12-11 10:17:09,333 INFO",
    ]
    for t in not_phone:
        assert find_pii(t) == [], t
    assert [s[2] for s in find_pii("|Puh||09555544|")] == ["phone"]
    assert [s[2] for s in find_pii("mjzgroup. 08714342399.2stop reply STOP")] == ["phone"]


def test_batch_kernel_gives_py3langids_own_answer():
    """The compiled batch kernel runs py3langid's model: on real multilingual documents (whole, and cut
    mid-character by max_chars) and all-caps text it gives py3langid's own classify answer."""
    import pyarrow.compute as pc

    from quality.langid import detect_texts, identifier

    texts = [t for lang in LANGS for t in turku(lang, "dev")] + ["THIS IS ALL UPPER CASE ENGLISH TEXT"]
    cfg = LangConfig(max_chars=300)
    out = detect_texts(texts, cfg)
    heads = pc.utf8_slice_codeunits(pc.utf8_trim_whitespace(pa.array(texts)), 0, cfg.max_chars).to_pylist()
    want = [identifier(cfg).classify(h) for h in heads]
    assert out[C.LANG].to_pylist() == [w[0] for w in want]
    np.testing.assert_allclose(out[C.LANG_SCORE].to_numpy(), [w[1] for w in want], atol=2e-3)

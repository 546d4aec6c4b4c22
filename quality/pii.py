"""PII detection and redaction: e-mail, phone, IP address, credit card (Luhn), IBAN (mod-97), with validators.

Each kind has a cheap RE2 prefilter run over the whole column (pyarrow compute); only rows that match some
prefilter are examined in Python, where candidates must pass a validator: octet ranges and
`ipaddress` for IPs, Luhn and issuer prefixes for cards, country length and mod-97 for IBANs, and
libphonenumber (`phonenumbers`) validity for phone numbers.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from schemas import columns as C
from schemas.embed import PII_KINDS, PiiConfig

TOKENS = {
    "email": "<EMAIL>",
    "phone": "<PHONE>",
    "ip": "<IP>",
    "credit_card": "<CREDIT_CARD>",
    "iban": "<IBAN>",
}
PRIORITY = ("email", "iban", "credit_card", "ip", "phone")  # earlier kinds win overlapping spans
PHONE_REGIONS = ("US", "GB", "DE", "FR", "ES", "FI")

PII_SCHEMA = pa.schema(
    [
        pa.field(C.ID, pa.string()),
        pa.field(C.PII_COUNT, pa.int32()),
        pa.field(C.PII_KINDS, pa.list_(pa.string())),
    ]
)

# libphonenumber's _VALID_PUNCTUATION (the characters its matcher allows between digit blocks)
PHONE_PUNCTUATION = (
    "-x\u2010-\u2015\u2212\u30fc\uff0d-\uff0f \xa0\xad\u200b\u2060\u3000()"
    "\uff08\uff09\uff3b\uff3d.\\[\\]/~\u2053\u223c\uff5e"
)
PHONE_LEAD = "(\\[\uff08\uff3b+\uff0b"  # its lead class: opening brackets and plus signs

# RE2 prefilters (vectorised over the column): a row is examined only if one matches
PREFILTER = {
    "email": r"[A-Za-z0-9]@[A-Za-z0-9-]+\.[A-Za-z]",
    "ip": r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}|[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:",
    "credit_card": r"(?:\d[ -]?){12,18}\d",
    "iban": r"[A-Z]{2}\d{2} ?[A-Z0-9]{4}",
    # a chain of at least MIN_PHONE_DIGITS digits joined as libphonenumber's matcher joins them
    "phone": r"(?i)\p{Nd}(?:[" + PHONE_PUNCTUATION + r"]{0,4}\p{Nd}){6,}",
}

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\.?\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:(?<=:)(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])"
)
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}")

# IBAN length per country (SWIFT IBAN registry)
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29,
    "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28,
    "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20,
    "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19,
    "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29,
    "RO": 24, "RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip

Span = tuple[int, int, str]


def luhn_ok(digits: str) -> bool:
    """Luhn checksum of a digit string."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def card_ok(digits: str) -> bool:
    """13-19 digits, an issuer prefix in use (Visa, Mastercard, Amex, Discover, JCB, Diners...) and Luhn."""
    n = len(digits)
    if not 13 <= n <= 19 or len(set(digits)) == 1:
        return False
    p2, p4 = int(digits[:2]), int(digits[:4])
    issuer = (
        digits[0] == "4"
        or 51 <= p2 <= 55
        or 2221 <= p4 <= 2720
        or p2 in (34, 37, 36, 38, 30, 35, 62, 65)
        or p4 == 6011
        or 644 <= int(digits[:3]) <= 649
    )
    return issuer and luhn_ok(digits)


def iban_ok(compact: str) -> bool:
    """Country length and ISO 7064 mod-97 check of an IBAN without spaces."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in moved)) % 97 == 1


def _email_ok(s: str) -> bool:
    tld = s.rsplit(".", 1)[1]
    return ".." not in s and (tld.islower() or tld.isupper())  # "msg@kiosk.Valid" is a sentence, not a TLD


def _ipv4_ok(s: str) -> bool:
    parts = s.split(".")
    return all(p.isdigit() and int(p) <= 255 and (p == "0" or not p.startswith("0")) for p in parts)


def _ipv6_ok(s: str) -> bool:
    if s.count(":") < 2 or sum(c.isalnum() for c in s) < 3:
        return False
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def _find_iban(text: str) -> list[Span]:
    out = []
    for m in _IBAN.finditer(text):
        s = m.group()
        want = IBAN_LENGTHS.get(s[:2])
        if want is None:
            continue
        pos = [i for i, ch in enumerate(s) if ch != " "]  # positions of the IBAN's characters
        if len(pos) < want:
            continue
        compact = "".join(s[i] for i in pos[:want])
        end = m.start() + pos[want - 1] + 1
        if iban_ok(compact) and (end == len(text) or not text[end].isalnum()):
            out.append((m.start(), end, "iban"))
    return out


@lru_cache(maxsize=1)
def _phonenumbers() -> Any:
    import phonenumbers

    return phonenumbers


def _inside(span: Span, shapes: list[tuple[int, int]]) -> bool:
    return any(span[0] < e and s < span[1] for s, e in shapes)


def _card_span(m: re.Match[str]) -> Span | None:
    """The card number in a digit run, also when a neighbouring number's group is glued to either end."""
    run = m.group()
    cands = [(0, len(run))]
    first, last = run.find(" "), run.rfind(" ")
    if first > 0:
        cands.append((first + 1, len(run)))
    if last > 0:
        cands.append((0, last))
    for a, b in cands:
        if card_ok(run[a:b].replace(" ", "").replace("-", "")):
            return (m.start() + a, m.start() + b, "credit_card")
    return None


_ZIP4 = re.compile(r"\d{5}-\d{4}")


def _in_url(text: str, start: int, end: int) -> bool:
    """The span is part of a longer whitespace-delimited token holding a path or URL (…/2018262997_x.html)."""
    a = text.rfind(" ", 0, start) + 1
    b = text.find(" ", end)
    token = text[a : b if b >= 0 else len(text)]
    return len(token) > end - start + 1 and ("/" in token or "=" in token or "www." in token)


_DOTTED_QUAD = re.compile(r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
# number shapes that are never a phone number here (libphonenumber calls some of them valid German or
# Finnish numbers): ISO and European dates, year ranges, time ranges, decimals such as coordinates
_NOT_PHONE = re.compile(
    r"(?:(?:1[5-9]|20)\d\d[-/.]\d\d?[-/.]\d\d?|\d\d?[-/.] ?\d\d?[-/.] ?(?:1[5-9]|20)?\d\d)(?:[ \xa0T]\d\d?)?"
    r"|(?:1[5-9]|20)\d\d ?[-\u2013\u2014] ?(?:1[5-9]|20)\d\d|\d\d?[.:]\d\d ?[-\u2013] ?\d\d?[.:]\d\d"
    r"|\d{1,3}\.\d+"
)
MIN_PHONE_DIGITS = 7  # fewer digits is a year, a page range, an age range or a time zone, not a phone here
_CONTEXT = 24  # characters after a digit cluster that libphonenumber's matcher sees
_DIGIT = re.compile(r"\d")
# what the matcher reads past a digit cluster: an extension ("ext. 138", "x12", "#4") or a time stamp's ":30"
_AFTER = re.compile(
    r"[ \t,]*(?:e?xt(?:ensi[oó]n)?n?|доб|anexo|int|[x#~])[:.]?[ \t,-]*\d{1,20}#?|:[0-5]\d",
    re.IGNORECASE,
)


@lru_cache(maxsize=1)
def _cluster_re() -> re.Pattern[str]:
    """A digit cluster as libphonenumber's matcher chains it: digit blocks joined by up to 4 of its
    punctuation characters, with optional leading brackets or plus signs (unbounded, so a cluster holds
    every candidate the matcher would cut from it)."""
    punct = "[" + PHONE_PUNCTUATION + "]{0,4}"
    return re.compile(f"(?:[{PHONE_LEAD}]{punct})*\\d+(?:{punct}\\d+)*", re.IGNORECASE)


@lru_cache(maxsize=64)
def _min_nsn(region: str) -> int:
    """Fewest digits a national significant number of `region` can have (libphonenumber metadata)."""
    md = _phonenumbers().PhoneMetadata.metadata_for_region(region)
    lengths = md.general_desc.possible_length if md is not None else ()
    return min(lengths) if lengths else 4


@lru_cache(maxsize=65536)
def _match_window(window: str, regions: tuple[str, ...]) -> tuple[tuple[int, int, str], ...]:
    """(start, end, raw) of the numbers libphonenumber's matcher calls valid in `window`, any region."""
    ph = _phonenumbers()
    out = set()
    for region in regions:
        for m in ph.PhoneNumberMatcher(window, region, leniency=ph.Leniency.VALID):
            out.add((m.start, m.end, m.raw_string))
    return tuple(sorted(out))


def _phone_candidates(text: str, regions: Sequence[str]) -> list[tuple[int, int, str]]:
    """Matches of libphonenumber's matcher, run only on a window around each digit cluster that can hold
    an accepted number (not a bare short number, a date, a year range or a decimal), and only for the
    regions whose shortest number fits in the cluster ("+" numbers: one run, the region does not matter)."""
    out: list[tuple[int, int, str]] = []
    n = len(text)
    for m in _cluster_re().finditer(text):
        s = m.group()
        digits = sum(ch.isdigit() for ch in s)
        lead = not s[0].isdigit()
        if digits < MIN_PHONE_DIGITS or (s.isdigit() and s[0] != "0" and digits < 10):  # see _find_phone
            continue
        if _NOT_PHONE.fullmatch(s.lstrip("+＋([（［ ") if lead else s):
            continue
        if "+" in s[: len(s) - len(s.lstrip("+＋([（［ "))]:
            use: tuple[str, ...] = tuple(regions[:1])
        else:
            use = tuple(r for r in regions if _min_nsn(r) <= digits)
        if not use:
            continue
        # one character before (the matcher rejects a number glued to a letter), up to _CONTEXT after
        # (an extension "ext. 12", a time stamp's ":30") but not into the next digits
        a = max(0, m.start() - 1)
        tail = _AFTER.match(text, m.end())
        end = tail.end() if tail else m.end()
        nxt = _DIGIT.search(text, end, min(n, end + _CONTEXT))
        b = nxt.start() if nxt else min(n, end + _CONTEXT)
        for ws, we, raw in _match_window(text[a:b], use):
            if ws + a < m.end() and m.start() < we + a:
                out.append((ws + a, we + a, raw))
    return out


def _find_phone(text: str, regions: Sequence[str]) -> list[Span]:
    """Numbers libphonenumber calls valid, except inside IP- or card-shaped digit runs (unless +intl)."""
    found = _phone_candidates(text, regions)
    if not found:
        return []
    shapes = [(m.start(), m.end()) for m in _DOTTED_QUAD.finditer(text)]
    shapes += [(m.start(), m.end()) for m in _CARD.finditer(text)]
    out: list[Span] = []
    for start, end, raw in sorted(set(found)):
        shaped = any(start < e and s < end for s, e in shapes)
        bare_short = raw.isdigit() and not raw.startswith("0") and len(raw) < 10  # e.g. an order number
        zip4 = _ZIP4.fullmatch(raw) is not None  # US ZIP+4 "06269-3043"
        if sum(ch.isdigit() for ch in raw) < MIN_PHONE_DIGITS:
            continue
        if raw.startswith("+") or not (shaped or bare_short or zip4 or _in_url(text, start, end)):
            out.append((start, end, "phone"))
    return out


def find_pii(text: str, cfg: PiiConfig | None = None) -> list[Span]:
    """Validated PII spans `(start, end, kind)` in `text`, non-overlapping, sorted by start."""
    cfg = cfg or PiiConfig()
    return _find(text, cfg, set(cfg.kinds), True)


def _find(text: str, cfg: PiiConfig, kinds: set[str], iban_shaped: bool) -> list[Span]:
    """find_pii for the `kinds` whose prefilter matched `text` (`iban_shaped`: the IBAN one did)."""
    found: dict[str, list[Span]] = {}
    if "email" in kinds:
        found["email"] = [
            (m.start(), m.end(), "email") for m in _EMAIL.finditer(text) if _email_ok(m.group())
        ]
    if "iban" in kinds:
        found["iban"] = _find_iban(text)
    ibans = (
        [(m.start(), m.end()) for m in _IBAN.finditer(text) if m.group()[:2] in IBAN_LENGTHS]
        if iban_shaped
        else []
    )
    if "credit_card" in kinds:
        found["credit_card"] = [
            s for m in _CARD.finditer(text) if (s := _card_span(m)) and not _inside(s, ibans)
        ]
    if "ip" in kinds:
        v4 = [(m.start(), m.end(), "ip") for m in _IPV4.finditer(text) if _ipv4_ok(m.group())]
        v6 = [(m.start(), m.end(), "ip") for m in _IPV6.finditer(text) if _ipv6_ok(m.group())]
        found["ip"] = v4 + v6
    if "phone" in kinds:
        found["phone"] = [s for s in _find_phone(text, cfg.phone_regions) if not _inside(s, ibans)]
    taken: list[Span] = []
    for kind in PRIORITY:
        for s in sorted(set(found.get(kind, []))):
            if all(s[1] <= t[0] or s[0] >= t[1] for t in taken):
                taken.append(s)
    return sorted(taken)


def _masks(texts: pa.ChunkedArray | pa.Array, cfg: PiiConfig) -> dict[str, np.ndarray]:
    """Per kind (and for IBAN always, which card and phone spans must avoid): rows its RE2 prefilter
    matches, computed over the whole column in Arrow (no Python per row, no GIL)."""
    out = {}
    for kind in {*cfg.kinds, "iban"}:
        m = pc.fill_null(pc.match_substring_regex(texts, PREFILTER[kind]), False)
        out[kind] = np.asarray(m.to_numpy(zero_copy_only=False), bool)
    return out


def _candidates(texts: pa.ChunkedArray | pa.Array, cfg: PiiConfig) -> np.ndarray:
    """Row indices where some kind's RE2 prefilter matches."""
    masks = _masks(texts, cfg)
    hit = np.zeros(len(texts), bool)
    for kind in cfg.kinds:
        hit |= masks[kind]
    return np.flatnonzero(hit)


def _column(texts: Sequence[str | None] | pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    if isinstance(texts, pa.ChunkedArray):
        return texts.cast(pa.string())
    if isinstance(texts, pa.Array):
        return pa.chunked_array([texts.cast(pa.string())])
    return pa.chunked_array([pa.array(list(texts), pa.string())])


def scan_texts(
    texts: Sequence[str | None] | pa.Array | pa.ChunkedArray, cfg: PiiConfig | None = None
) -> pa.Table:
    """`pii_count`, `pii_kinds` (sorted distinct kinds, empty list for none) per text."""
    cfg = cfg or PiiConfig()
    col = _column(texts)
    n = len(col)
    counts = np.zeros(n, np.int32)
    kinds: list[list[str]] = [[] for _ in range(n)]
    masks = _masks(col, cfg)
    hit = np.zeros(n, bool)
    for kind in cfg.kinds:
        hit |= masks[kind]
    rows = np.flatnonzero(hit)
    if len(rows):
        for r, t in zip(rows, col.take(pa.array(rows)).to_pylist(), strict=True):
            spans = _find(t, cfg, {k for k in cfg.kinds if masks[k][r]}, bool(masks["iban"][r]))
            counts[r] = len(spans)
            kinds[r] = sorted({s[2] for s in spans})
    return pa.table(
        {C.PII_COUNT: pa.array(counts, pa.int32()), C.PII_KINDS: pa.array(kinds, pa.list_(pa.string()))}
    )


def scan(batch: pa.Table, cfg: PiiConfig | None = None) -> pa.Table:
    """`id`, `pii_count`, `pii_kinds` for the `text` of every row of `batch`."""
    res = scan_texts(batch[C.TEXT], cfg)
    return pa.table(
        {C.ID: batch[C.ID], C.PII_COUNT: res[C.PII_COUNT], C.PII_KINDS: res[C.PII_KINDS]}, schema=PII_SCHEMA
    )


def redact_text(text: str, cfg: PiiConfig | None = None) -> str:
    """`text` with each PII span replaced by its token (<EMAIL>, <PHONE>, <IP>, <CREDIT_CARD>, <IBAN>)."""
    out, last = [], 0
    for s, e, kind in find_pii(text, cfg):
        out.append(text[last:s])
        out.append(TOKENS[kind])
        last = e
    out.append(text[last:])
    return "".join(out)


def redact(texts: Sequence[str | None] | pa.Array | pa.ChunkedArray, cfg: PiiConfig | None = None) -> Any:
    """Texts with PII replaced by tokens; returns the same kind of container (list, Array, ChunkedArray)."""
    cfg = cfg or PiiConfig()
    col = _column(texts)
    values = col.to_pylist()
    for r in _candidates(col, cfg):
        values[r] = redact_text(values[r], cfg)
    if isinstance(texts, pa.ChunkedArray):
        return pa.chunked_array([pa.array(values, pa.string())])
    if isinstance(texts, pa.Array):
        return pa.array(values, pa.string())
    return values


def drop_mask(scan_table: pa.Table, cfg: PiiConfig | None = None) -> pa.ChunkedArray:
    """True where publish must drop the record (`action = drop` and it has PII)."""
    cfg = cfg or PiiConfig()
    has = pc.fill_null(pc.greater(scan_table[C.PII_COUNT], 0), False)
    if cfg.action != "drop":
        return pc.and_(has, pa.scalar(False))
    return has


__all__ = ["PII_KINDS", "find_pii", "scan", "scan_texts", "redact", "redact_text", "drop_mask", "luhn_ok"]

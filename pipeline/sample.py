"""`curate sample`: a small, deterministic, deliberately messy multimodal sample for demos and tests.

Text records with exact and near duplicates, empty and junk texts and broken rows; images generated with
Pillow, with re-encoded, resized and byte-identical copies, a blank, a tiny, a thin and an undecodable one;
structured records with near-duplicate rows, mostly-empty rows and a ragged row. Same bytes on every run.
"""

from __future__ import annotations

import csv
import io
import json
import random
from pathlib import Path

from PIL import Image, ImageDraw

ADJECTIVES = [
    "quiet",
    "busy",
    "narrow",
    "ancient",
    "modern",
    "wooden",
    "coastal",
    "rural",
    "urban",
    "northern",
    "southern",
    "eastern",
    "western",
    "famous",
    "hidden",
    "crowded",
    "empty",
    "colourful",
    "frozen",
    "sunny",
    "rainy",
    "windy",
    "golden",
    "silver",
    "broken",
    "newly",
    "restored",
    "tiny",
    "enormous",
    "local",
    "regional",
    "national",
    "private",
    "public",
    "seasonal",
    "weekly",
    "annual",
    "early",
    "late",
    "bright",
    "dark",
    "gentle",
    "noisy",
    "careful",
    "bold",
    "humble",
    "proud",
    "curious",
    "patient",
]
NOUNS = [
    "library",
    "bakery",
    "harbour",
    "bridge",
    "museum",
    "garden",
    "market",
    "school",
    "station",
    "orchard",
    "village",
    "council",
    "theatre",
    "clinic",
    "workshop",
    "river",
    "valley",
    "forest",
    "island",
    "tower",
    "chapel",
    "factory",
    "farm",
    "lighthouse",
    "stadium",
    "bookshop",
    "gallery",
    "canal",
    "quarry",
    "mill",
    "cottage",
    "observatory",
    "tunnel",
    "festival",
    "parade",
    "choir",
    "orchestra",
    "archive",
    "laboratory",
    "kitchen",
    "warehouse",
    "ferry",
    "railway",
    "airport",
    "meadow",
    "vineyard",
    "glacier",
    "volcano",
    "desert",
    "reef",
]
VERBS = [
    "opened",
    "closed",
    "repaired",
    "painted",
    "visited",
    "described",
    "measured",
    "photographed",
    "restored",
    "expanded",
    "celebrated",
    "inspected",
    "mapped",
    "studied",
    "protected",
    "funded",
    "designed",
    "rebuilt",
    "cleaned",
    "guarded",
    "replaced",
    "welcomed",
    "surveyed",
    "documented",
    "renamed",
]
PEOPLE = [
    "volunteers",
    "engineers",
    "students",
    "farmers",
    "teachers",
    "nurses",
    "artists",
    "fishermen",
    "historians",
    "children",
    "neighbours",
    "architects",
    "gardeners",
    "musicians",
    "scientists",
    "bakers",
    "drivers",
    "librarians",
]
PLACES = (
    "near the old square",
    "beside the river",
    "on the edge of town",
    "behind the station",
    "across the valley",
    "at the end of the pier",
    "under the hill",
    "along the coast road",
)
WHEN = (
    "last spring",
    "in early March",
    "after the storm",
    "during the summer holidays",
    "on a cold morning",
    "two years ago",
    "before the election",
    "at the start of the season",
)
BOILERPLATE = "\nSubscribe to our newsletter. Cookies help us deliver our services. All rights reserved."

CITIES = [
    "Springfield",
    "Riverton",
    "Lakeside",
    "Hillview",
    "Brookfield",
    "Fairmont",
    "Ashford",
    "Cliffton",
    "Dunmore",
    "Eastwick",
    "Glenrock",
    "Hollowell",
]
STREETS = [
    "Main",
    "Oak",
    "Maple",
    "Cedar",
    "Elm",
    "Park",
    "Lake",
    "Hill",
    "Birch",
    "Church",
    "Mill",
    "Station",
    "Market",
    "Bridge",
    "Castle",
    "Harbour",
]
KINDS = ["bakery", "pharmacy", "bookshop", "garage", "cafe", "florist", "dentist", "hardware"]
NAMES = [
    "Sunrise",
    "Golden",
    "Corner",
    "Harbor",
    "Blue Door",
    "Green Leaf",
    "Old Mill",
    "Northside",
    "Riverside",
    "Maple Tree",
    "Silver",
    "Hilltop",
]


def _sentence(rng: random.Random) -> str:
    c = rng.choice
    forms = [
        lambda: f"The {c(ADJECTIVES)} {c(NOUNS)} {c(PLACES)} was {c(VERBS)} by {c(PEOPLE)} {c(WHEN)}.",
        lambda: (
            f"{c(PEOPLE).title()} {c(VERBS)} a {c(ADJECTIVES)} {c(NOUNS)} {c(WHEN)}, and the "
            f"{c(NOUNS)} {c(PLACES)} is {c(ADJECTIVES)} again."
        ),
        lambda: (
            f"{c(WHEN).capitalize()}, the {c(NOUNS)} and the {c(ADJECTIVES)} {c(NOUNS)} were "
            f"{c(VERBS)} with help from {c(ADJECTIVES)} {c(PEOPLE)}."
        ),
        lambda: (
            f"Many {c(PEOPLE)} say that the {c(NOUNS)} {c(PLACES)} is more {c(ADJECTIVES)} than the "
            f"{c(NOUNS)} they {c(VERBS)} {c(WHEN)}."
        ),
    ]
    return c(forms)()


def _doc(rng: random.Random) -> str:
    sentences = [_sentence(rng) for _ in range(rng.randint(4, 8))]
    cut = rng.randint(2, len(sentences) - 1)
    return " ".join(sentences[:cut]) + "\n\n" + " ".join(sentences[cut:])


def _typos(text: str, rng: random.Random, n: int = 3) -> str:
    chars = list(text)
    spots = [
        i
        for i in range(1, len(chars) - 1)
        if chars[i].isalpha() and chars[i + 1].isalpha() and chars[i] != chars[i + 1]
    ]
    for i in rng.sample(spots, n):
        chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def write_texts(path: Path, rng: random.Random) -> dict[str, int]:
    """texts.jsonl with clean docs, duplicates, junk and broken lines; returns what it planted."""
    lines: list[bytes] = []
    docs = [_doc(rng) for _ in range(120)]
    n = 0

    def add(text: object, **extra: object) -> None:
        nonlocal n
        n += 1
        obj = {"id": f"doc-{n:04d}", "text": text, "url": f"https://example.org/news/{n}"} | extra
        lines.append(json.dumps(obj, ensure_ascii=False).encode())

    for d in docs:
        add(d)
    for d in docs[:6]:  # exact duplicates (one with extra whitespace, which exact dedup folds)
        add(d)
    add("  " + docs[6].replace(" ", "  ") + "\n")
    for i, d in enumerate(docs[10:22]):  # near duplicates: typos, boilerplate, truncation
        edits = [_typos(d, rng), d + BOILERPLATE, d[: int(len(d) * 0.85)]]
        add(edits[i % 3], variant="near_dup")
    for junk in [
        "",
        "",
        "   ",
        "Home | About | Contact | Login | Cart",
        "$$$ 100% FREE !!! 5555 0101 2222 ### ### ### CLICK ###",
        "\n".join(["Buy now"] * 12),
        "Lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor",
    ]:
        add(junk, variant="junk")
    lines.append(b'{"id": "doc-broken-1", "text": "This line was cut off in the mid')  # truncated JSON
    lines.append(b'{"id": "doc-broken-2", "text": "caf\xe9 au lait, encoded as latin-1"}')  # not UTF-8
    lines.append(b'{"id": "doc-broken-3", "body": "the text field is missing"}')
    lines.append(b'{"id": "doc-broken-4", "text": 12345}')
    path.write_bytes(b"\n".join(lines) + b"\n")
    return {"text_rows": n + 4, "text_broken": 4}


def _image(rng: random.Random, size: int = 96) -> Image.Image:
    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    c1 = [rng.randrange(256) for _ in range(3)]
    c2 = [rng.randrange(256) for _ in range(3)]
    for y in range(size):
        t = y / (size - 1)
        draw.line([(0, y), (size, y)], fill=tuple(int(a + (b - a) * t) for a, b in zip(c1, c2, strict=True)))
    for _ in range(rng.randint(2, 5)):
        x0, y0 = rng.randrange(size - 20), rng.randrange(size - 20)
        x1, y1 = x0 + rng.randint(10, 40), y0 + rng.randint(10, 40)
        shape = rng.choice([draw.ellipse, draw.rectangle])
        shape([x0, y0, x1, y1], fill=tuple(rng.randrange(256) for _ in range(3)))
    return img


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def write_images(folder: Path, rng: random.Random) -> dict[str, int]:
    """images/ with originals and planted variants, and captions.csv; returns what it planted."""
    folder.mkdir(parents=True, exist_ok=True)
    captions: list[tuple[str, str]] = []
    originals = []
    for i in range(24):
        img = _image(rng)
        originals.append(img)
        name = f"img-{i:03d}.png"
        (folder / name).write_bytes(_encode(img, "PNG"))
        captions.append((name, f"A picture with {rng.choice(['round', 'square', 'bright', 'dark'])} shapes"))
    for i in range(4):  # re-encoded copies
        (folder / f"img-{i:03d}-reencoded.jpg").write_bytes(_encode(originals[i], "JPEG", quality=70))
    for i in range(4, 7):  # resized copies
        (folder / f"img-{i:03d}-resized.png").write_bytes(_encode(originals[i].resize((64, 64)), "PNG"))
    (folder / "img-007-copy.png").write_bytes((folder / "img-007.png").read_bytes())  # byte-identical
    (folder / "blank.png").write_bytes(_encode(Image.new("RGB", (96, 96), (128, 128, 128)), "PNG"))
    (folder / "tiny.png").write_bytes(_encode(originals[8].resize((8, 8)), "PNG"))
    (folder / "thin.png").write_bytes(_encode(originals[9].resize((240, 16)), "PNG"))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG file")
    with open(folder.parent / "captions.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["file", "caption"])
        w.writerows(captions)
    return {"images": 24 + 4 + 3 + 1 + 4, "images_broken": 1}


def write_records(path: Path, rng: random.Random) -> dict[str, int]:
    """businesses.csv with near-duplicate, exact-duplicate, mostly-empty and ragged rows."""
    rows = []
    for i in range(40):
        rows.append(
            [
                f"b{i:03d}",
                f"{rng.choice(NAMES)} {rng.choice(KINDS).title()}",
                f"{rng.randint(1, 999)} {rng.choice(STREETS)} Street",
                rng.choice(CITIES),
                f"555-{rng.randint(1000, 9999)}",
                rng.choice(KINDS),
            ]
        )
    out = [r[:] for r in rows]
    for j, r in enumerate(rows[:6]):  # near duplicates: case, abbreviations, punctuation
        out.append(
            [f"b{100 + j}", r[1].upper(), r[2].replace("Street", "St."), r[3], r[4].replace("-", ""), r[5]]
        )
    for j, r in enumerate(rows[6:9]):  # exact duplicates except the id
        out.append([f"b{200 + j}"] + r[1:])
    out.append(["b300", "", "", "Riverton", "", ""])
    out.append(["b301", "Nameless", "", "", "", ""])
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["id", "name", "address", "city", "phone", "category"])
    w.writerows(out)
    path.write_text(buf.getvalue() + "b302,Ragged Row Cafe,1 Main Street\n", encoding="utf-8")
    return {"records": len(out) + 1, "records_broken": 1}


CONFIG = """# curate.toml for the sample written by `curate sample`
workspace = "workspace"

[[sources]]
path = "texts.jsonl"
name = "texts"

[[sources]]
path = "images"
name = "images"
captions = "captions.csv"

[[sources]]
path = "businesses.csv"
name = "businesses"

[rules.record]
required_fields = ["name", "address"]

[publish]
shard_rows = 100
"""


def write_sample(out: Path, seed: int = 7) -> dict[str, int]:
    """Write the sample and its curate.toml into `out`; returns counts of what was planted."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    counts = write_texts(out / "texts.jsonl", rng)
    counts |= write_images(out / "images", rng)
    counts |= write_records(out / "businesses.csv", rng)
    (out / "curate.toml").write_text(CONFIG, encoding="utf-8")
    return counts

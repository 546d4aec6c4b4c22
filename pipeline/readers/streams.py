"""Opening input files as byte streams: decompression chosen by magic bytes and suffix, text encodings.

Codecs read: gzip, bz2, xz/lzma (stdlib), zstd and lz4 frames (pyarrow's streaming decompressors, which
report a truncated stream instead of ending quietly). A file whose first bytes carry one of these magic
numbers is decompressed whatever its name says; a file named `.gz` (etc.) that is plain text is read as
text; one named so that is neither is a `corrupt_file`. Archives and codecs not read here (zip, 7z, rar,
brotli, snappy, Unix compress) are refused with a line saying how to unpack them.
"""

from __future__ import annotations

import bz2
import codecs
import gzip
import io
import lzma
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa

# suffix -> codec read by `open_stream`
CODEC_SUFFIXES = {
    ".gz": "gzip",
    ".gzip": "gzip",
    ".tgz": "gzip",
    ".bz2": "bz2",
    ".tbz2": "bz2",
    ".xz": "xz",
    ".txz": "xz",
    ".lzma": "xz",
    ".zst": "zstd",
    ".zstd": "zstd",
    ".tzst": "zstd",
    ".lz4": "lz4",
}
# suffix -> (what it is, how to get a readable file)
UNSUPPORTED_SUFFIXES = {
    ".zip": ("a zip archive", "unzip it and ingest the files inside"),
    ".7z": ("a 7z archive", "unpack it (7z x) and ingest the files inside"),
    ".rar": ("a rar archive", "unpack it and ingest the files inside"),
    ".br": ("brotli-compressed", "decompress it first (brotli -d)"),
    ".snappy": ("snappy-compressed", "decompress it first"),
    ".sz": ("snappy-compressed", "decompress it first"),
    ".z": ("Unix compress (.Z) data", "decompress it first (uncompress, or gzip -d)"),
    ".lzo": ("lzo-compressed", "decompress it first (lzop -d)"),
}
MAGIC = (
    (b"\x1f\x8b", "gzip"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
    (b"\x04\x22\x4d\x18", "lz4"),
)
UNSUPPORTED_MAGIC = (
    (b"PK\x03\x04", ".zip"),
    (b"7z\xbc\xaf\x27\x1c", ".7z"),
    (b"Rar!\x1a\x07", ".rar"),
    (b"\x1f\x9d", ".z"),
)
BZ2_BLOCK_MAGIC = (b"1AY&SY", b"\x17rE8P\x90")
SNIFF_BYTES = 4096
# what a damaged stream raises while it is read
STREAM_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, lzma.LZMAError, zlib.error)


class BadFile(ValueError):
    """A whole input that cannot be read; str() is the quarantine reason (`kind: detail`)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


def suffix_codec(path: Path) -> str | None:
    """The codec the file name announces (last suffix), or None."""
    return CODEC_SUFFIXES.get(path.suffix.lower())


def unsupported_suffix(path: Path) -> tuple[str, str] | None:
    """(what, fix) when the name announces an archive or codec that is not read, else None."""
    return UNSUPPORTED_SUFFIXES.get(path.suffix.lower())


def magic_codec(head: bytes) -> str | None:
    """The codec whose magic bytes start `head`, or None (raises BadFile for a codec not read)."""
    for magic, codec in MAGIC:
        if head.startswith(magic):
            return codec
    # bz2: 'BZh' + block size digit + a block or end-of-stream magic, so a text starting "BZh" stays text
    if head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] in BZ2_BLOCK_MAGIC:
        return "bz2"
    for magic, suffix in UNSUPPORTED_MAGIC:
        if head.startswith(magic):
            what, fix = UNSUPPORTED_SUFFIXES[suffix]
            raise BadFile("unsupported_compression", f"the file is {what}; {fix}")
    return None


def open_stream(path: Path) -> IO[bytes]:
    """The file's bytes, decompressed when its magic bytes (or name, for legacy .lzma) say so."""
    with open(path, "rb") as f:
        head = f.read(16)
    codec = magic_codec(head)
    if codec is None:
        named = suffix_codec(path)
        if path.suffix.lower() == ".lzma" and head:
            codec = "xz"  # legacy .lzma has no reliable magic; lzma's auto format reads it
        elif named is not None and head and not _looks_like_text(path):
            raise BadFile(
                "corrupt_file",
                f"named {path.suffix} but it does not start with the {named} magic bytes "
                f"(starts with {head[:8].hex(' ')}): damaged, or not {named} data",
            )
    return _open_codec(path, codec)


def _open_codec(path: Path, codec: str | None) -> IO[bytes]:
    if codec is None:
        return open(path, "rb")
    if codec == "gzip":
        return gzip.open(path, "rb")
    if codec == "bz2":
        return bz2.open(path, "rb")
    if codec == "xz":
        return lzma.open(path, "rb")
    # zstd, lz4: pyarrow raises "Truncated compressed stream" where other decoders end quietly
    return io.BufferedReader(pa.CompressedInputStream(pa.OSFile(str(path)), codec), 1 << 16)


def _looks_like_text(path: Path) -> bool:
    """Whether the file's first bytes read as text (a BOM, or UTF-8 without NULs)."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    if head.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return True
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # a character cut by the sniff window
    return b"\x00" not in head


def read_head(path: Path, n: int = SNIFF_BYTES) -> bytes:
    """Up to `n` decompressed bytes from the start (fewer when the stream breaks early)."""
    out = b""
    with open_stream(path) as f:
        try:
            while len(out) < n:
                chunk = f.read(min(n - len(out), 1024))
                if not chunk:
                    break
                out += chunk
        except (*STREAM_ERRORS, ValueError):
            pass  # the reader meets the same error at the same place and reports it
    return out


@dataclass(frozen=True)
class Encoding:
    """How an input's text is encoded: `python` names the codec, `label` goes into reasons."""

    python: str
    label: str
    bom: int  # bytes of byte-order mark at the start

    @property
    def utf8(self) -> bool:
        return self.label == "utf8"


UTF8 = Encoding("utf-8", "utf8", 0)


def sniff_encoding(path: Path) -> Encoding:
    """The text encoding from the byte-order mark; UTF-8 without one; BadFile for BOM-less UTF-16/32."""
    head = read_head(path)
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return Encoding("utf-32", "utf32", 4)
    if head.startswith(codecs.BOM_UTF8):
        return Encoding("utf-8", "utf8", 3)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Encoding("utf-16", "utf16", 2)
    wide = _wide_without_bom(head)
    if wide is not None:
        raise BadFile(
            "utf16_without_bom",
            f"the file looks like {wide.upper()} text without a byte-order mark (every other byte is NUL); "
            f"convert it to UTF-8 (iconv -f {wide.upper()} -t UTF-8) or save it with a BOM",
        )
    return UTF8


def _wide_without_bom(head: bytes) -> str | None:
    """'utf-16-le' / 'utf-16-be' when the NUL bytes of `head` sit at every other position."""
    if len(head) < 8:
        return None
    even, odd = head[0::2], head[1::2]
    nul_even, nul_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if nul_odd > 0.4 and nul_even < 0.05:
        return "utf-16-le"
    if nul_even > 0.4 and nul_odd < 0.05:
        return "utf-16-be"
    return None


def _mark_undecodable(exc: UnicodeError) -> tuple[str, int]:
    """Error handler: each undecodable byte becomes a lone surrogate (U+DC00 + byte), like surrogateescape
    but for every codec, so a reader can quarantine exactly the lines that hold one."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return "".join(chr(0xDC00 | b) for b in exc.object[exc.start : exc.end]), exc.end


codecs.register_error("curate.mark", _mark_undecodable)


def open_text(path: Path, enc: Encoding, newline: str | None) -> io.TextIOWrapper:
    """The decompressed file as text; undecodable bytes become lone surrogates (see `has_surrogates`)."""
    python = "utf-8-sig" if enc.utf8 and enc.bom else enc.python
    errors = "surrogateescape" if enc.utf8 else "curate.mark"
    return io.TextIOWrapper(open_stream(path), encoding=python, errors=errors, newline=newline)


def has_surrogates(s: str) -> bool:
    """True when `s` holds bytes that did not decode (see `open_text`)."""
    if s.isascii():
        return False
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False

"""What a data file is, from its first bytes: CSV text, an Edge Impulse data-acquisition file (read as a
source of its own), or another structured format, named in one sentence instead of being parsed as CSV
(a JSON file read as CSV gives "two columns named '"units": "m/s2"}'", a Parquet file "NUL bytes").
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyae.train.data.edgeimpulse import decode, is_acquisition

EXPORT = "export it to CSV (one column per channel, and a timestamp column if it has one)"
# magic bytes at offset 0 -> (what the file is, what to do)
MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"PAR1", "a Parquet file", EXPORT),
    (b"ARROW1", "an Arrow/Feather file", EXPORT),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file", EXPORT),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook (.xls)", "save the sheet as CSV"),
    (b"\x93NUMPY", "a NumPy .npy array", EXPORT),
    (b"MATLAB 5.0 MAT-file", "a MATLAB .mat file", EXPORT),
    (b"SQLite format 3\x00", "an SQLite database", "export the table to CSV"),
    (b"TDSm", "a LabVIEW TDMS file", EXPORT),
    (b"\x1f\x8b", "gzip-compressed", "decompress it first (gunzip)"),
    (b"BZh", "bzip2-compressed", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "xz-compressed", "decompress it first (unxz)"),
    (b"\x28\xb5\x2f\xfd", "zstd-compressed", "decompress it first (unzstd)"),
    (b"\x89PNG", "a PNG image", "pass sensor time series as CSV"),
    (b"\xff\xd8\xff", "a JPEG image", "pass sensor time series as CSV"),
)
UEA_TS = "a UEA/sktime .ts file"
TEXT_STARTS: tuple[tuple[str, str, str], ...] = (
    ("<?xml", "an XML document", EXPORT),
    ("<!doctype html", "an HTML page", "download the data file itself, not the page"),
    ("<html", "an HTML page", "download the data file itself, not the page"),
    ("@relation", "an ARFF (Weka) file", EXPORT),
    ("@problemname", UEA_TS, 'read it with data.source = "ucr"'),
)


@dataclass
class Sniffed:
    """What a file is when it is not CSV text."""

    kind: str  # "edgeimpulse" | "other"
    what: str  # "an Edge Impulse data-acquisition file (JSON)", "a Parquet file", ...
    advice: str  # what to do, for a command that reads CSV only
    obj: Any = None  # the decoded object (JSON / CBOR)
    encoding: str = ""

    def refusal(self, path: Path, reads: str = "CSV") -> str:
        """One sentence for a reader of `reads` that was handed this file."""
        return f"{path} is {self.what}, not {reads}; {self.advice}"


def _keys(obj: Any) -> str:
    if isinstance(obj, dict):
        keys = [str(k) for k in list(obj)[:5]]
        return f"an object with keys {', '.join(keys)}{', ...' if len(obj) > 5 else ''}"
    if isinstance(obj, list):
        return f"a list of {len(obj)} items"
    return type(obj).__name__


def _zip(path: Path) -> tuple[str, str]:
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (zipfile.BadZipFile, OSError):
        return "a ZIP archive", "unpack it first"
    if any(n.startswith("xl/") for n in names):
        return "an Excel workbook (.xlsx)", "save the sheet as CSV"
    if any(n.startswith("word/") or n.startswith("ppt/") for n in names):
        return "an Office document", EXPORT
    if names and all(n.endswith(".npy") for n in names):
        return "a NumPy .npz archive", EXPORT
    return "a ZIP archive", "unpack it first"


def sniff(path: Path) -> Sniffed | None:
    """What `path` is when it is not CSV text (None: read it as CSV). Reads the whole file only when it
    starts like JSON or CBOR."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
    except OSError:
        return None  # the CSV reader says why it cannot be read
    for magic, what, advice in MAGIC:
        if head.startswith(magic):
            return Sniffed("other", what, advice)
    if head.startswith(b"PK\x03\x04"):
        return Sniffed("other", *_zip(path))
    if head.startswith(b"RIFF") and head[8:12] == b"WAVE":
        return Sniffed("other", "a WAV audio file", EXPORT)
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] in (b"{", b"[") or (head[:1] and 0xA0 <= head[0] <= 0xBF):
        data = path.read_bytes()
        decoded = decode(path, data)
        if decoded is not None:
            obj, encoding = decoded
            if is_acquisition(obj):
                return Sniffed(
                    "edgeimpulse",
                    f"an Edge Impulse data-acquisition file ({encoding})",
                    'train on it with data.source = "edgeimpulse" (or "csv"); this command reads CSV',
                    obj,
                    encoding,
                )
            return Sniffed(
                "other",
                f"a {encoding} file ({_keys(obj)})",
                f"tinyae reads CSV and Edge Impulse data-acquisition JSON/CBOR; {EXPORT}",
            )
        if text[:1] == b"{":
            first = data.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
            try:
                json.loads(first)
            except ValueError:
                return None
            return Sniffed("other", "a JSON Lines file (one JSON object per line)", EXPORT)
        return None
    low = text[:20].decode("utf-8", "replace").lower()
    for start, what, advice in TEXT_STARTS:
        if low.startswith(start):
            return Sniffed("other", what, advice)
    return None

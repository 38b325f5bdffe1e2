"""Format sniffing and the encoding ladder (docs/validation.md).

Production documents UTF-8 CSV or JSON (docs/production.md §3). Integrators send cp1252 from
Excel's "CSV (Comma delimited)", UTF-16 from "Unicode Text", a BOM glued to the
first header, or a spreadsheet renamed to .csv (docs/validation.md). The ladder is fixed,
never a statistical guess:

    UTF-8 BOM -> strict UTF-8 -> cp1252 (warning) ; UTF-16 recognised (error)

Everything downstream works on UTF-8 *bytes*: a UTF-8 file without BOM is passed
on without a copy, so a 100 MB feed is never held twice.
"""

from __future__ import annotations

import codecs
import enum
from dataclasses import dataclass

from bwsandbox.validator import accel
from bwsandbox.validator.findings import file_finding
from bwsandbox.validator.model import Finding

BOM_UTF8 = codecs.BOM_UTF8
_BINARY_MAGIC = (
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)"),
    (b"\xd0\xcf\x11\xe0", "an old Excel .xls workbook"),
    (b"%PDF", "a PDF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"-----BEGIN PGP", "a PGP-armoured file (decrypt it first)"),
    (b"\x85\x01", "a PGP-encrypted file (decrypt it first)"),
    (b"\x84\x8c", "a PGP-encrypted file (decrypt it first)"),
)


class Format(enum.StrEnum):
    CSV = "csv"
    JSON = "json"


@dataclass(frozen=True, slots=True)
class Decoded:
    """UTF-8 text as bytes (None when the file cannot be read at all)."""

    text: bytes | None
    format: Format
    findings: tuple[Finding, ...]


def utf8_ok(data: bytes) -> bool:
    """Strict UTF-8, judged as `bytes.decode("utf-8")` would, in C with the
    GIL released (`_scan.c`): on a big file it runs on a worker beside the
    rest instead of holding up every Python thread for its whole length.
    Without `_cscan`, Python's decoder judges (`pure.utf8_valid`)."""
    if not accel.engines().cscan:
        from bwsandbox.validator import pure

        return pure.utf8_valid(data)
    from bwsandbox.validator import _cscan

    return _cscan.utf8_valid(data)


def _looks_utf16(data: bytes) -> bool:
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        return True
    head = data[:4096]
    # ASCII text in UTF-16 has a NUL in every other byte.
    return len(head) >= 4 and (head[1::2].count(0) > len(head) // 4 or head[0::2].count(0) > len(head) // 4)


def _sniff_format(text: bytes) -> Format:
    stripped = text[:4096].lstrip()
    return Format.JSON if stripped[:1] in (b"[", b"{") else Format.CSV


def body(data: bytes) -> bytes:
    """The bytes the UTF-8 check applies to (the BOM removed)."""
    return data[len(BOM_UTF8) :] if data.startswith(BOM_UTF8) else data


def decode(data: bytes, *, utf8: bool | None = None) -> Decoded:
    """Apply the ladder; the findings say what was done and how to re-export.

    `utf8`: the result of `utf8_ok` on the body when the caller already has it
    (the engine checks big files on a worker thread, speculatively).
    """
    if not data or data.isspace():
        return Decoded(None, Format.CSV, (file_finding("EMPTY_FILE", "The file is empty."),))
    for magic, what in _BINARY_MAGIC:
        if data.startswith(magic):
            return Decoded(
                None, Format.CSV, (file_finding("NOT_TEXT", f"This is {what}, not a CSV or JSON file."),)
            )
    if _looks_utf16(data):
        return Decoded(
            None,
            Format.CSV,
            (
                file_finding(
                    "ENCODING_UTF16",
                    "The file is UTF-16 (Excel 'Unicode Text'); production reads UTF-8 only. "
                    "Save it as 'CSV UTF-8 (Comma delimited)'.",
                ),
            ),
        )
    if b"\x00" in data[:65536] or b"\x00" in data[-65536:]:
        return Decoded(
            None,
            Format.CSV,
            (file_finding("NOT_TEXT", "The file contains NUL bytes: it is binary, not a CSV or JSON file."),),
        )
    findings: list[Finding] = []
    text = data
    if data.startswith(BOM_UTF8):
        text = data[len(BOM_UTF8) :]
        findings.append(
            file_finding("BOM_PRESENT", "The file starts with a UTF-8 byte order mark; it was stripped.")
        )
    if utf8 if utf8 is not None else utf8_ok(text):
        return Decoded(text, _sniff_format(text), tuple(findings))
    try:
        as_str = text.decode("cp1252")
    except UnicodeDecodeError as exc:
        findings.append(
            file_finding(
                "ENCODING_INVALID",
                f"The file is neither UTF-8 nor Windows-1252 (byte 0x{text[exc.start]:02x} at offset "
                f"{exc.start}). Re-export it as UTF-8.",
            )
        )
        return Decoded(None, Format.CSV, tuple(findings))
    if any(ord(ch) < 32 and ch not in "\t\r\n" for ch in as_str[:65536]):
        findings.append(file_finding("NOT_TEXT", "The file contains control bytes: it is not a text file."))
        return Decoded(None, Format.CSV, tuple(findings))
    findings.append(
        file_finding(
            "ENCODING_CP1252",
            "The file is not UTF-8; it was read as Windows-1252 (Excel 'CSV (Comma delimited)'). "
            "Production expects UTF-8: in Excel use Save As > 'CSV UTF-8 (Comma delimited)'.",
        )
    )
    recoded = as_str.encode("utf-8")
    return Decoded(recoded, _sniff_format(recoded), tuple(findings))

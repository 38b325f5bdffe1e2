"""The CSV structure scan in C (`_scan.c`); see `structure._scan`."""

from typing import TypedDict

class ScanResult(TypedDict):
    ends: bytearray  # int64 end offset of each record (the LF, or len(text))
    commas: bytearray  # int64 structural commas per record
    blank: bytearray  # bool per record: only delimiters
    empty: bytearray  # bool per record: an empty line
    maybe_blank: bytearray  # int64 records short enough to be all `""` cells
    crlf: int  # records ending with CRLF
    unclosed_at: int | None  # offset of the quote that never closes
    stray_at: list[int]  # offsets of the first quotes inside unquoted values
    bare_cr: bool  # a CR not followed by LF somewhere in the body

def scan(text: bytes, start: int, /) -> ScanResult: ...
def utf8_valid(data: bytes, /) -> bool: ...
def leaders(text: bytes, start: int, /) -> bytearray: ...

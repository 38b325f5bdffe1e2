"""JSON feeds (docs/production.md §3: an array of objects with the same keys) as a Table.

Each object is a record; its row number is its position + 1, so the first
object is row 2, exactly as the same data would be in a spreadsheet. A key
missing from an object leaves that field alone (absent, not cleared); `null`
is an empty cell. Numbers and booleans are turned into text as written.

A nested value (an object or an array) is docs/production.md §6's decision: in an
optional field it is an error on that field and the entry is applied without
it (docs/production.md §5 partial processing); in a required one the entry is skipped.
Which fields are required is the template's, so `nested_findings` judges them
once the header is mapped.
"""

from __future__ import annotations

import json
from typing import Any

from bwsandbox.validator.findings import file_finding, finding, row_of, too_many_columns
from bwsandbox.validator.header import HeaderMap
from bwsandbox.validator.model import Finding
from bwsandbox.validator.structure import Table


def _cell(value: Any) -> str | None:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    return None  # nested: not a flat value


class _Pairs(dict[str, Any]):
    """An object as parsed, remembering the keys it held more than once."""

    duplicates: tuple[str, ...] = ()


def _object(pairs: list[tuple[str, Any]]) -> _Pairs:
    obj = _Pairs(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        twice: dict[str, None] = {}
        for key, _ in pairs:
            if key in seen:
                twice[key] = None
            seen.add(key)
        obj.duplicates = tuple(twice)
    return obj


class _Number(str):
    """A JSON number, kept as written (and known to be a number, for messages)."""


def _kind(value: Any) -> str:
    """What a JSON value is, in JSON's words (messages never say `NoneType`)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, _Number):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (numbers must be finite)")


def _loads(text: bytes) -> Any:
    # Numbers stay as written (no float rounding, no 1e400 -> infinity);
    # NaN/Infinity are not JSON; duplicate keys are remembered, not collapsed.
    return json.loads(
        text, object_pairs_hook=_object, parse_float=_Number, parse_int=_Number, parse_constant=_no_constant
    )


def read_json_table(text: bytes, *, max_columns: int | None = None) -> Table | list[Finding]:
    """The records of a JSON feed, or the file-level findings that stop it
    (`max_columns`: more distinct keys than that stop it too, before a frame
    with a column per key is built)."""
    import numpy as np
    import polars as pl

    try:
        doc = _loads(text)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        msg = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        return [file_finding("JSON_MALFORMED", f"The JSON is malformed: {msg}{where}.")]
    except RecursionError:
        return [file_finding("JSON_MALFORMED", "The JSON is nested too deeply to read.")]
    if not isinstance(doc, list):
        return [
            file_finding(
                "JSON_NOT_ARRAY",
                f"The JSON document is {_kind(doc)}; "
                "production expects an array of objects, one per user.",
            )
        ]
    if not doc:
        return [file_finding("NO_DATA_ROWS", "The JSON array is empty: it holds no user entries.")]
    header: list[str] = []
    seen: set[str] = set()
    for entry in doc:
        if isinstance(entry, dict):
            for key in entry:
                if key not in seen:
                    seen.add(key)
                    header.append(key)
    if max_columns is not None and len(header) > max_columns:
        return [too_many_columns(len(header), max_columns)]
    findings: list[Finding] = []
    nested_at: dict[int, tuple[int, ...]] = {}
    broken = np.zeros(len(doc), dtype=bool)
    blank = np.zeros(len(doc), dtype=bool)
    records: list[list[str | None]] = []
    differ = 0
    for i, entry in enumerate(doc):
        if not isinstance(entry, dict):
            broken[i] = True
            records.append([None] * len(header))
            findings.append(
                finding(
                    "JSON_ENTRY_INVALID",
                    row_of(i),
                    f"Entry {i + 1} is {_kind(entry)}, not an object; it is skipped.",
                )
            )
            continue
        cells = [_cell(entry[k]) if k in entry else None for k in header]
        nested = [k for k in header if k in entry and _cell(entry[k]) is None]
        twice = getattr(entry, "duplicates", ())
        if twice:
            broken[i] = True
            findings.append(
                finding(
                    "JSON_ENTRY_INVALID",
                    row_of(i),
                    f"Entry {i + 1} has the key '{twice[0]}' more than once, so which value applies is "
                    "ambiguous. The entry is skipped.",
                    column=twice[0],
                )
            )
        elif nested:
            nested_at[i] = tuple(header.index(k) for k in nested)
        if not entry:
            blank[i] = True
        elif len(entry) != len(header):
            differ += 1
        records.append(["" if c is None and k in entry else c for c, k in zip(cells, header, strict=True)])
    if differ:
        findings.append(
            file_finding(
                "JSON_KEYS_DIFFER",
                f"{differ} entries lack some of the keys other entries have; a missing key leaves that "
                "field unchanged.",
            )
        )
    frame = pl.DataFrame(
        {f"c{i}": [r[i] for r in records] for i in range(len(header))},
        schema={f"c{i}": pl.String for i in range(len(header))},
    )
    return Table(
        header=tuple(header),
        n_records=len(records),
        frame=frame,
        blank=blank,
        broken=broken,
        findings=findings,
        nested=nested_at,
        _records=records,
    )


def nested_findings(table: Table, hmap: HeaderMap) -> list[Finding]:
    """docs/production.md §6 [decided]: a nested value in an optional field costs that value;
    in a required field (the identity, a name needed to create) the entry."""
    out: list[Finding] = []
    processed = {**hmap.columns, **hmap.custom}
    rule = ("Production does not document nested values; the sandbox's rule is to refuse the value "
            "and, as production's partial processing does for a bad optional value, apply the rest")
    for rec, indices in table.nested.items():
        names = [processed[i] for i in indices if i in processed]  # other columns are not processed
        required = [n for n in names if (spec := hmap.template.get(n)) is not None and spec.required]
        if required:
            table.broken[rec] = True
            out.append(finding(
                "JSON_ENTRY_INVALID", row_of(rec),
                f"Entry {rec + 1} has a nested value (an object or an array) in the required field "
                f"'{required[0]}'; values must be strings, numbers, booleans or null. The entry is skipped "
                "(the sandbox's rule: production does not document nested values).",
                column=required[0],
            ))  # fmt: skip
            continue
        for name in names:
            out.append(finding(
                "JSON_VALUE_NESTED", row_of(rec),
                f"Entry {rec + 1} has a nested value (an object or an array) in '{name}': it is not "
                f"applied, and the rest of the entry is. {rule}.",
                column=name,
            ))  # fmt: skip
    return out

"""Header rules (docs/production.md §3 "must match the template").

An unknown header is "not processed" [doc]. The did-you-mean comes from the
alias table first (what a human would answer for `FirstName`, `E-mail`,
`Surname`, `supervisor_email`...) and from fuzzy matching second. Headers are
matched exactly, case included, in both profiles: core says the header must
match the template, engage documents case-sensitive keys (docs/production.md §1, §3).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field

from bwsandbox.spec.fields import (
    CORE_FIELDS,
    CUSTOM_KEY_RE,
    DEPARTMENT_FIELDS,
    DIMENSION_KEY_RE,
    ENGAGE_FIELDS,
    HEADER_ALIASES,
    HEADER_NO_TARGET,
    Field,
    Kind,
    Profile,
    normalise_header,
    trim,
)
from bwsandbox.validator.findings import file_finding
from bwsandbox.validator.model import Context, Finding

_BOMS = ("\ufeff", "\u00ef\u00bb\u00bf")  # a BOM kept as text, or cp1252-decoded


@dataclass(slots=True)
class HeaderMap:
    kind: Kind
    template: dict[str, Field]
    columns: dict[int, str] = field(default_factory=dict)  # processed template columns
    custom: dict[int, str] = field(default_factory=dict)  # processed custom keys (no rules)
    findings: list[Finding] = field(default_factory=list)

    @property
    def fatal(self) -> bool:
        return any(f.code in ("HEADER_DUPLICATE", "HEADER_REQUIRED_MISSING") for f in self.findings)


def detect_kind(header: tuple[str, ...], profile: Profile) -> Kind:
    """docs/production.md §3 [decided]: a department file has `name` and no `email`."""
    if profile is Profile.CORE and "name" in header and "email" not in header:
        return Kind.DEPARTMENTS
    return Kind.USERS


def template_for(kind: Kind, profile: Profile) -> dict[str, Field]:
    if kind is Kind.DEPARTMENTS:
        return DEPARTMENT_FIELDS
    return ENGAGE_FIELDS if profile is Profile.ENGAGE else CORE_FIELDS


def suggest(raw: str, template: dict[str, Field]) -> str | None:
    """Alias table first, fuzzy second; None when nothing is close."""
    key = normalise_header(raw)
    target = HEADER_ALIASES.get(key)
    if target in template:
        return target
    close = difflib.get_close_matches(raw.strip().lower(), list(template), n=1, cutoff=0.75)
    return close[0] if close else None


def map_header(written: tuple[str, ...], context: Context) -> HeaderMap:
    # docs/production.md §6 [decided]: spaces around a header are trimmed, with a warning.
    header = tuple(trim(raw) for raw in written)
    kind = detect_kind(header, context.profile)
    template = template_for(kind, context.profile)
    hmap = HeaderMap(kind=kind, template=template)
    out = hmap.findings
    for raw, name in zip(written, header, strict=True):
        if raw != name and name:
            out.append(
                file_finding(
                    "HEADER_WHITESPACE",
                    f'The header "{raw}" has spaces around it; it is read as "{name}". Production does '
                    "not document how it treats them; trimming them is the sandbox's rule.",
                    column=name,
                    value=raw,
                )
            )
    seen: dict[str, int] = {}
    for raw in header:
        seen[raw] = seen.get(raw, 0) + 1
    for name, count in seen.items():
        if count > 1 and name:
            out.append(
                file_finding(
                    "HEADER_DUPLICATE",
                    f'The column "{name}" appears {count} times; production cannot tell which to use.',
                    column=name,
                )
            )
    for idx, raw in enumerate(header):
        if raw in template:
            if seen[raw] == 1:
                hmap.columns[idx] = raw
            continue
        if not raw.strip():
            out.append(
                file_finding(
                    "HEADER_EMPTY",
                    f"Column {idx + 1} has no header; its values are not processed.",
                    column=raw or None,
                )
            )
            continue
        if raw in context.custom_keys and (kind is Kind.USERS):
            if CUSTOM_KEY_RE.match(raw):
                hmap.custom[idx] = raw
            elif context.profile is Profile.ENGAGE:
                # docs/production.md §3 [decided]: engage dimension keys are case-sensitive
                # and may hold capitals; [a-z0-9_] is for core custom keys.
                hmap.custom[idx] = raw
                out.append(
                    file_finding(
                        "DIMENSION_KEY_CAPITALS",
                        f'The dimension key "{raw}" has capital letters: it is processed as written and '
                        "matched case-sensitively. Production documents case-sensitive keys but not the "
                        "characters they may hold; accepting capitals in engage (core custom keys stay "
                        "a-z, 0-9 and _) is the sandbox's rule.",
                        column=raw,
                    )
                )
            else:
                out.append(
                    file_finding(
                        "CUSTOM_KEY_INVALID",
                        f'The custom key "{raw}" uses characters other than a-z, 0-9 and _; '
                        "the column is not processed.",
                        column=raw,
                    )
                )
            continue
        out.append(_unknown(raw, template, kind, context))
    # Only the identity column is required of the file; first and last names are
    # required to *create* a user, so their absence is a per-row matter [decided].
    required = [n for n, f in template.items() if f.required and n not in ("first_name", "last_name")]
    for name in required:
        if name not in hmap.columns.values() and name not in seen:
            out.append(
                file_finding(
                    "HEADER_REQUIRED_MISSING",
                    f'The required column "{name}" is missing; no row can be processed.',
                    column=name,
                )
            )
    return hmap


def _unknown(raw: str, template: dict[str, Field], kind: Kind, context: Context) -> Finding:
    for bom in _BOMS:
        if raw.startswith(bom):
            bare = raw[len(bom) :]
            return file_finding(
                "HEADER_UNKNOWN",
                f'The header "{bare}" has a byte order mark glued to it, so it is not recognised and '
                "the column is not processed. Save the file as UTF-8 (with or without BOM, not both).",
                column=raw,
            )
    if raw.lower() in template:
        return file_finding(
            "HEADER_CASE",
            f'The column "{raw}" is not processed: headers are case-sensitive; use "{raw.lower()}".',
            column=raw,
        )
    same = sorted(k for k in context.custom_keys if k.lower() == raw.lower())
    if kind is Kind.USERS and same:
        return file_finding(
            "HEADER_CASE",
            f'The column "{raw}" is not processed: keys are case-sensitive, and the tenant defines '
            f'"{same[0]}".',
            column=raw,
        )
    hint = suggest(raw, template)
    no_target = HEADER_NO_TARGET.get(normalise_header(raw))
    if hint is None and no_target is None and kind is Kind.USERS:
        defined = {k.lower(): k for k in context.custom_keys}
        slug = "".join(c if c.isalnum() else "_" for c in raw.strip().lower())
        if CUSTOM_KEY_RE.match(raw) or (context.profile is Profile.ENGAGE and DIMENSION_KEY_RE.match(raw)):
            return file_finding(
                "CUSTOM_KEY_UNDEFINED",
                f'The custom key "{raw}" is not defined in the tenant, so the column is not processed. '
                "Define it in Betterworks first, or remove the column.",
                column=raw,
            )
        if slug in defined:
            return file_finding(
                "CUSTOM_KEY_INVALID",
                f'The column "{raw}" is not a valid custom key (only a-z, 0-9 and _); '
                f'did you mean the defined key "{defined[slug]}"? The column is not processed.',
                column=raw,
            )
    message = f'The column "{raw}" is not a template header, so it is not processed.'
    if hint:
        message += f' Did you mean "{hint}"?'
    elif no_target:
        message += f" {no_target}."
    return file_finding("HEADER_UNKNOWN", message, column=raw)

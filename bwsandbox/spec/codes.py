"""The catalogue of finding codes: stable names, severity, and a fix hint.

Codes are a contract (scripts match on them): add new ones, never rename.
A test proves every code here has a fixture in `fixtures/` that triggers it.

Severity (the report contract, docs/validation.md):
- error:   the file, an entry or a value in it will not be applied;
- warning: applied, but something was ignored or looks damaged;
- notice:  best practice, or a rule production does not document.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bwsandbox.spec.fields import EMAIL_MAX


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"
    NOTICE = "notice"


class Scope(enum.StrEnum):
    """What an error costs: the whole file, the row, or only the value."""

    FILE = "file"  # nothing in the file is applied
    ROW = "row"  # the entry is skipped
    VALUE = "value"  # the entry applies without this value (docs/production.md §5 partial)
    NONE = "none"  # warnings and notices cost nothing


@dataclass(frozen=True, slots=True, kw_only=True)
class Code:
    code: str
    severity: Severity
    scope: Scope
    title: str
    hint: str


def _c(code: str, severity: Severity, scope: Scope, title: str, hint: str) -> Code:
    return Code(code=code, severity=severity, scope=scope, title=title, hint=hint)


E, W, N = Severity.ERROR, Severity.WARNING, Severity.NOTICE
F, R, V, X = Scope.FILE, Scope.ROW, Scope.VALUE, Scope.NONE

_CODES = (
    # --- the file as a whole -------------------------------------------------
    _c("EMPTY_FILE", E, F, "The file is empty", "Export again; the job produced no bytes."),
    _c("NOT_TEXT", E, F, "Not a text file",
       "Upload a UTF-8 CSV or JSON file, not a spreadsheet, archive or binary."),
    _c("NO_DATA_ROWS", E, F, "No user rows", "The file has a header but no records."),
    _c("JSON_MALFORMED", E, F, "Malformed JSON", "Fix the JSON syntax at the position shown."),
    _c("JSON_NOT_ARRAY", E, F, "JSON is not an array of objects",
       "Send a JSON array of objects, one object per user, all with the same keys."),
    _c("JSON_ENTRY_INVALID", E, R, "JSON entry is not a flat object",
       "Each entry must be an object whose values are strings, numbers, booleans or null."),
    _c("JSON_KEYS_DIFFER", W, X, "JSON entries have different keys",
       "Give every object the same keys; a missing key leaves that field alone."),
    _c("ENCODING_CP1252", W, X, "Windows-1252 instead of UTF-8",
       "In Excel use Save As > 'CSV UTF-8 (Comma delimited)', not 'CSV (Comma delimited)'."),
    _c("ENCODING_UTF16", E, F, "UTF-16 file",
       "Save as 'CSV UTF-8 (Comma delimited)'; 'Unicode Text' in Excel is UTF-16."),
    _c("ENCODING_INVALID", E, F, "Unknown encoding", "Re-export the file as UTF-8."),
    _c("BOM_PRESENT", N, X, "UTF-8 byte order mark",
       "Accepted and stripped; some tools glue it to the first header, so prefer UTF-8 without BOM."),
    _c("DELIMITER_SEMICOLON", E, F, "Semicolon-delimited file",
       "Use commas: in Excel choose 'CSV UTF-8 (Comma delimited)', or change the list separator."),
    _c("DELIMITER_OTHER", E, F, "Not comma-delimited", "Export with commas as the delimiter."),
    _c("UNCLOSED_QUOTE", E, F, "Unclosed quote", "A quoted field never ends; check the quote on that row."),
    _c("STRAY_QUOTE", W, X, "Quote inside an unquoted field",
       "Quote the whole field and double the inner quote: \"say \"\"hi\"\"\"."),
    _c("MIXED_LINE_ENDINGS", N, X, "Mixed line endings", "Use one style of line ending (CRLF or LF)."),
    # Bounds on what one feed may cost (docs/security.md "Limits"; settings of the same names).
    _c("TOO_MANY_COLUMNS", E, F, "Too many columns",
       "A user file has a few dozen columns: check the delimiter and the header row (max_columns)."),
    _c("JSON_TOO_LARGE", E, F, "JSON feed too large to read",
       "Send the feed as CSV, which has no such limit, or split it (max_json_bytes)."),
    # --- the header ------------------------------------------------------------
    _c("HEADER_UNKNOWN", W, X, "Unknown column: not processed",
       "Rename it to a template header, or remove it."),
    _c("HEADER_DUPLICATE", E, F, "Duplicate column", "Keep one column of each name."),
    _c("HEADER_EMPTY", W, X, "Column without a header", "Name the column or remove it."),
    _c("HEADER_REQUIRED_MISSING", E, F, "Required column missing",
       "Add the column with its template header."),
    _c("HEADER_CASE", W, X, "Header in the wrong letter case: not processed",
       "Headers are case-sensitive; use the template's spelling."),
    _c("CUSTOM_KEY_UNDEFINED", W, X, "Custom key not defined in the tenant: not processed",
       "Define the custom key in Betterworks first, or remove the column."),
    _c("CUSTOM_KEY_INVALID", W, X, "Custom key with invalid characters: not processed",
       "Custom keys use only a-z, 0-9 and _."),
    # docs/production.md §6 [decided] rules: each message says the rule is the sandbox's own.
    _c("HEADER_WHITESPACE", W, X, "Spaces around a header: trimmed",
       "Remove the spaces around the header in the export."),
    _c("DIMENSION_KEY_CAPITALS", N, X, "Engage dimension key with capitals",
       "Accepted as written, case-sensitively; send it with exactly the tenant's spelling."),
    # --- structure -------------------------------------------------------------
    _c("ROW_TOO_FEW_CELLS", E, R, "Row has fewer cells than the header",
       "A cell is missing (often an unquoted comma on the row before, or a cut line)."),
    _c("ROW_TOO_MANY_CELLS", E, R, "Row has more cells than the header",
       "A value contains a comma: quote it."),
    _c("ROW_BLANK", W, X, "Blank row ignored", "Remove empty rows such as ',,,,,'."),
    _c("JSON_VALUE_NESTED", E, V, "Nested JSON value in an optional field",
       "Send a string, number, boolean or null; the rest of the entry is applied without it."),
    # --- values ----------------------------------------------------------------
    _c("EMAIL_REQUIRED", E, R, "Email address is required", "Fill the email column."),
    _c("EMAIL_INVALID", E, R, "Invalid email address", "Use a full address like name@example.com."),
    _c("EMAIL_TOO_LONG", E, R, f"Email longer than {EMAIL_MAX} characters", "Shorten the address."),
    _c("REQUIRED_VALUE_MISSING", E, R, "Required value missing",
       "first_name and last_name are required to create a user."),
    _c("REQUIRED_VALUE_KEPT", W, X, "Required value empty on an update",
       "Send the value, or leave the column out: a required field is never cleared."),
    _c("VALUE_TOO_LONG", E, R, "Value too long", "Shorten the value to the template's limit."),
    _c("VALUE_WHITESPACE", W, X, "Spaces around values: trimmed",
       "Remove the spaces before and after values in the export."),
    _c("EMAIL_QUOTED_LOCAL", N, X, "Quoted local part in an email address",
       'Valid ("a b"@example.com, RFC 5322) but unusual; many systems refuse it.'),
    _c("DATE_INVALID", E, V, "Not a date",
       "Use mm/dd/yyyy, yyyy/mm/dd or dd/mm/yyyy."),
    _c("DATE_IMPOSSIBLE", E, V, "Impossible date", "The day does not exist in that month."),
    _c("DATE_AMBIGUOUS", N, X, "Ambiguous day and month",
       "Read with the tenant's locale; use yyyy/mm/dd to be unambiguous."),
    _c("DATE_ISO", N, X, "ISO date", "yyyy-mm-dd is not a documented format; the sandbox accepts it."),
    _c("DATE_OTHER_ORDER", N, X, "Date readable only in the other day/month order",
       "Send dates in the tenant's order, or as yyyy/mm/dd."),
    _c("DATE_ORDER_MIXED", W, X, "Day/month orders mixed in one column",
       "Export every date in one order, ideally yyyy/mm/dd; check the ambiguous ones."),
    _c("DATE_EXCEL_SERIAL", E, V, "Excel serial number instead of a date",
       "Format the column as text or a date before saving the CSV."),
    _c("BOOLEAN_INVALID", E, V, "Not a yes/no value", "Use true/false, yes/no or 1/0."),
    _c("EMPLOYEE_ID_APOSTROPHE", N, X, "Leading apostrophe stripped",
       "The Excel text marker ' is removed from employee ids."),
    _c("EXCEL_SCIENTIFIC", W, X, "Number mangled into scientific notation",
       "Excel turned a long number into 1.23E+13; format the column as text."),
    _c("LEADING_ZEROS_LOST", W, X, "Leading zeros look lost",
       "Other ids in this column keep leading zeros; format the column as text."),
    _c("MOBILE_INVALID", E, V, "Invalid mobile number", "Use + and digits only, e.g. +15551234567."),
    _c("VALUE_FORMULA", W, X, "Value starts like a spreadsheet formula",
       "Remove the leading =, +, -, @ or tab: a spreadsheet runs such a cell as a formula (CSV "
       "injection). The sandbox's own CSV files prefix it with '."),
    # --- across rows ---------------------------------------------------------
    _c("EMAIL_DUPLICATE", E, R, "Duplicate email address",
       "Each user once; emails match case-insensitively."),
    _c("EMPLOYEE_ID_DUPLICATE", E, R, "Duplicate employee id", "Each employee id once."),
    _c("EMPLOYEE_ID_CASE", E, R, "Employee id letter case differs from the directory",
       "Send the employee id with the same letter case as stored in Betterworks."),
    _c("EMPLOYEE_ID_CHANGED", E, R, "Employee id cannot change",
       "In the engage profile an employee id is immutable once set."),
    _c("EMPLOYEE_ID_TAKEN", E, V, "Employee id belongs to another user",
       "Each employee id belongs to one user: fix this id, or the other user's first."),
    _c("EMAIL_TAKEN", E, R, "Email address belongs to another active user",
       "Each address belongs to one active user: change or deactivate the other user first."),
    _c("MANAGER_NOT_FOUND", E, V, "Manager not found",
       "The manager must be an active user once the file is applied: in this file or in Betterworks."),
    _c("MANAGER_SELF", E, V, "User is their own manager",
       "Leave the manager blank for the top of the organisation."),
    _c("MANAGER_CYCLE", E, V, "Manager cycle", "Break the loop of managers."),
    _c("LICENSE_LIMIT", E, R, "Not enough user licences",
       "Reduce the import, deactivate users, or add licences."),
    _c("TERMINATIONS", W, X, "Engage file terminates users",
       "Users left out of an engage file are terminated: check they have left."),
    _c("TERMINATION_LIMIT", E, F, "File would terminate too many users",
       "Send the full roster, or raise engage_termination_limit if the terminations are intended."),
    # --- department files ------------------------------------------------------
    _c("DEPARTMENT_NAME_REQUIRED", E, R, "Department name is required", "Fill the name column."),
    _c("DEPARTMENT_DUPLICATE", E, R, "Duplicate department", "Each department once."),
    _c("DEPARTMENT_PARENT_MISSING", E, R, "Parent department has no row of its own",
       "Add a row for every parent department."),
    _c("DEPARTMENT_HAS_ACTIVE_USERS", E, V, "Department still has active users",
       "Move or deactivate its users before deactivating the department."),
    _c("DEPARTMENT_CYCLE", E, R, "Department parent cycle", "Break the loop of parents."),
    _c("DEPARTMENT_FILE_MANUAL", N, X, "Department file sent over SFTP",
       "Accepted here; production may require it in the Admin module's manual upload."),
)

# Codes no sample file can trigger on its own: an upload's name, its PGP
# envelope, or a deactivated department of the tenant. Tests of the vendor
# app trigger each (tests/unit/test_fixtures.py checks a test names it).
_UPLOAD_CODES = (
    _c("DEPARTMENT_INACTIVE", E, V, "Department is deactivated",
       "Reactivate the department with a department file first."),
    _c("FILE_NAME_UNDATED", N, X, "File name has no date", "Name the file users_YYYYMMDD.csv."),
    _c("FILE_NAME_EXTENSION", N, X, "File name does not end in .csv or .json",
       "Name the file users_YYYYMMDD.csv (or .json)."),
    _c("PGP_REQUIRED", E, F, "Engage file not encrypted",
       "Encrypt the file to the tenant's key and name it employees.YYYYMMDDHHMM.csv.pgp."),
    _c("PGP_NO_KEY", E, F, "Tenant has no PGP key", "Export the tenant's key and encrypt to it."),
    _c("PGP_NOT_ENCRYPTED", E, F, "Named .pgp but not encrypted (plain, signed or stored only)",
       "Encrypt the file to the tenant's key (gpg -e, not --sign or --store), or drop the .pgp suffix."),
    _c("PGP_WRONG_KEY", E, F, "Encrypted to another key",
       "Encrypt to the key `bwsandbox pgp export-key` gives."),
    _c("PGP_INVALID", E, F, "PGP data cannot be decrypted", "Send a whole, valid OpenPGP message."),
    _c("PGP_TOO_LARGE", E, F, "Decrypted file too large",
       "The plaintext passed max_decrypted_bytes; check the export, or raise the setting."),
)
CATALOGUE: dict[str, Code] = {c.code: c for c in (*_CODES, *_UPLOAD_CODES)}
WITHOUT_FIXTURE = frozenset(c.code for c in _UPLOAD_CODES)


def scope_of(code: object, row: object) -> Scope:
    """What a finding costs. A stored report is read back, never trusted: an
    unknown code there costs its row (or the file, when it has no row)."""
    known = CATALOGUE.get(str(code))
    if known is not None:
        return known.scope
    return Scope.FILE if row is None else Scope.ROW

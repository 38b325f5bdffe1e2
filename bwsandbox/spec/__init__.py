"""Production's templates, limits and messages as data (docs/production.md §1, §3, §4).

Nothing here does work: the validator, ingest and server read these tables.
"""

from bwsandbox.spec.codes import CATALOGUE, Code, Severity
from bwsandbox.spec.fields import CORE_FIELDS, Field, Profile

__all__ = ["CATALOGUE", "CORE_FIELDS", "Code", "Field", "Profile", "Severity"]

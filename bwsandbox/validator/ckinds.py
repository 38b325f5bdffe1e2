"""The C pass's reading of one column (`_cells.c`): its kind, byte limit,
whether an empty cell is slow, and a vocabulary. Each value rule says how
the C pass reads its columns beside its exact version and its vectorised
pre-filter (`emails.fast_column`, `dates.fast_column`, `values.fast_*`);
`fastpath.plan` only puts them together. The C pass can only skip work: a
cell it flags "slow" goes through the exact rule."""

from __future__ import annotations

# The kinds of _cells.c's enum (K_ID_LOWER is not used from Python).
TEXT, EMAIL, ID, BOOL, DATE_US, DATE_GB, OTHER = range(7)

# (cell index, kind, byte limit or -1, an empty cell is slow, vocabulary)
FastColumn = tuple[int, int, int, bool, tuple[bytes, ...] | None]


def column(
    index: int, kind: int, *, limit: int | None = None, required: bool = False,
    vocabulary: tuple[bytes, ...] | None = None,
) -> FastColumn:
    return (index, kind, -1 if limit is None else limit, required, vocabulary)

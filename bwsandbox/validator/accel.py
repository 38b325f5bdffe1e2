"""Which C accelerators the validator uses: the one switch (a guest in
integrators' processes installs without a compiler: docs/server.md).

The two C extensions are optional builds (setup.py): `_cscan` (the
structure scan and the strict UTF-8 check) and `_ccells` (the value fast
path and the split points of a big body). Each has a pure stand-in
(`pure.py`; no fast path at all for `_ccells`: every record goes through the
exact polars rules) that gives byte-identical reports, so an install where
gcc is missing validates the same files the same way, only slower.

The environment variable BWSANDBOX_NO_ACCEL turns accelerators off even
when they are built (tests and benchmarks run both engines in one process):

    unset, "" or "0"     use every accelerator that is built
    "cscan", "ccells"    (comma-separated) leave those out
    anything else ("1")  use none

It is read when a validation starts, never at import (nothing happens at
import), and `pinned()` holds that choice for the whole validation, on its
worker threads too, so one file is never judged half by one engine and half
by the other (their key hashes differ and must never meet).
"""

from __future__ import annotations

import contextvars
import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

ENV = "BWSANDBOX_NO_ACCEL"
NAMES = ("cscan", "ccells")


@dataclass(frozen=True, slots=True)
class Engines:
    """The accelerators one validation uses (True: the C module)."""

    cscan: bool
    ccells: bool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name in NAMES if getattr(self, name))


# Whether each C module imports, learnt on first use (a missing module is
# looked for once, not on every call). Nothing is imported before that.
_built: dict[str, bool] = {}
_pinned: contextvars.ContextVar[Engines | None] = contextvars.ContextVar("bwsandbox_accel", default=None)


def built(name: str) -> bool:
    """Whether the C module `_<name>` was built and imports."""
    if name not in NAMES:
        raise ValueError(f"unknown accelerator {name!r}; known: {', '.join(NAMES)}")
    if name not in _built:
        try:
            importlib.import_module(f"bwsandbox.validator._{name}")
        except ImportError:
            _built[name] = False
        else:
            _built[name] = True
    return _built[name]


def turned_off() -> frozenset[str]:
    """The accelerators BWSANDBOX_NO_ACCEL turns off, read now."""
    raw = os.environ.get(ENV, "").strip().lower()
    if raw in ("", "0"):
        return frozenset()
    names = {part.strip() for part in raw.split(",")}
    # A value that is not a list of known names (a typo too) turns everything
    # off: the pure engine is always right, only slower.
    return frozenset(names) if names <= set(NAMES) else frozenset(NAMES)


def choose() -> Engines:
    """The engines a validation starting now uses: built and not turned off."""
    off = turned_off()
    return Engines(
        cscan="cscan" not in off and built("cscan"),
        ccells="ccells" not in off and built("ccells"),
    )


def engines() -> Engines:
    """The engines of the running validation (`pinned`), else `choose()`."""
    got = _pinned.get()
    return got if got is not None else choose()


@contextmanager
def pinned() -> Iterator[Engines]:
    """Hold one choice for a whole validation; jobs it sends to worker threads
    must run in a copy of the caller's context (`contextvars.copy_context`)."""
    chosen = engines()
    token = _pinned.set(chosen)
    try:
        yield chosen
    finally:
        _pinned.reset(token)

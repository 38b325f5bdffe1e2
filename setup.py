"""Only the C extensions live here (setuptools' stable API for them); all other
metadata is in pyproject.toml. They are the validator's one-pass structure
scan (bwsandbox/validator/_scan.c) and its value fast path
(bwsandbox/validator/_cells.c, with the row as the apply writes it in
bwsandbox/validator/_rows.c and a change's history in
bwsandbox/validator/_diff.c); docs/benchmarks.md says what each buys.

Both are optional: where they cannot be built (no C compiler, `CC=false`),
setuptools warns and goes on, and the validator uses its pure engine
(bwsandbox/validator/pure.py), whose reports are byte-identical.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("bwsandbox.validator._cscan", ["bwsandbox/validator/_scan.c"], optional=True),
        Extension(
            "bwsandbox.validator._ccells",
            ["bwsandbox/validator/_cells.c", "bwsandbox/validator/_rows.c", "bwsandbox/validator/_diff.c"],
            depends=["bwsandbox/validator/_date.h", "bwsandbox/validator/_text.h"],
            optional=True,
        ),
    ]
)

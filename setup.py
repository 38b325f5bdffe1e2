"""Only the C extensions live here (setuptools' stable API for them); all other
metadata is in pyproject.toml. They are the validator's one-pass structure
scan (bwsandbox/validator/_scan.c) and its value fast path
(bwsandbox/validator/_cells.c); docs/benchmarks.md says what each buys.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("bwsandbox.validator._cscan", ["bwsandbox/validator/_scan.c"], optional=True),
        Extension("bwsandbox.validator._ccells", ["bwsandbox/validator/_cells.c"], optional=True),
    ]
)

"""Only the C extension lives here (setuptools' stable API for it); all other
metadata is in pyproject.toml. The extension is the validator's one-pass
structure scan (bwsandbox/validator/_scan.c, README "Benchmarks")."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("bwsandbox.validator._cscan", ["bwsandbox/validator/_scan.c"])])

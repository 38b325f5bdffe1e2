"""Reproducible speed and memory measurements (`python -m benchmarks [NAME...]`).

Each `bench_<name>.py` module in this package exposes `main() -> int`; the
runner discovers them, so a new benchmark is one new file. Results go to
`benchmarks/out/` (gitignored).
"""

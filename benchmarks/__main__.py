"""Run every benchmark (`python -m benchmarks`) or some (`python -m benchmarks validator`).

Options after one benchmark's name go to its `main(argv)`
(`python -m benchmarks apply --rows 1000000`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def available() -> list[str]:
    here = Path(__file__).resolve().parent
    return sorted(
        m.name[len("bench_") :] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")
    )


def main(argv: list[str]) -> int:
    names = available()
    split = next((i for i, arg in enumerate(argv) if arg.startswith("-")), len(argv))
    wanted, options = argv[:split] or names, argv[split:]
    if options and len(wanted) != 1:
        print("options need exactly one benchmark named before them", file=sys.stderr)
        return 2
    unknown = [n for n in wanted if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}", file=sys.stderr)
        return 2
    status = 0
    for name in wanted:
        print(f"== benchmark: {name}")
        module = importlib.import_module(f"benchmarks.bench_{name}")
        status |= int((module.main(options) if options else module.main()) or 0)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

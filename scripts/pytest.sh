#!/usr/bin/env bash
# Run the test suite; pytest's "no tests collected" (exit 5) is a failure
# here too, since a suite that runs nothing proves nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
# Benchmark-sized tests (marker `scale`) take minutes and GBs: left out
# here; a later `-m scale` in the arguments wins (docs/benchmarks.md).
.venv/bin/pytest -n 2 -m "not scale" "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "pytest collected no tests: failing on purpose" >&2
  exit 1
fi
exit "$rc"

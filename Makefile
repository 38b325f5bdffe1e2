# The two set-up commands of the README are `make serve` and `make test`.
.PHONY: serve test lint unit bench clean

serve:
	@scripts/bootstrap.sh
	@.venv/bin/bwsandbox serve

test:
	@scripts/bootstrap.sh --test
	@.venv/bin/ruff check .
	@.venv/bin/mypy
	@.venv/bin/lint-imports --no-logo --no-cache
	@scripts/pytest.sh

unit:
	@.venv/bin/pytest -q tests/unit

bench:
	@scripts/bootstrap.sh --test
	@.venv/bin/python -m benchmarks

clean:
	rm -rf .venv .bwsandbox benchmarks/out

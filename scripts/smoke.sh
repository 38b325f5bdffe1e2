#!/usr/bin/env bash
# Integrator smoke test (CI runs it after `make test`): does bwsandbox work
# for a stranger who only `pip install`s it into their own project?
#
#   1. a fresh virtualenv; this checkout installed with NO constraints file
#      (the newest dependencies PyPI offers within pyproject's ranges) and no
#      C compiler (CC=false: any compile fails), plus pytest and paramiko;
#   2. examples/integrator-pytest (its own pytest.ini, filterwarnings = error)
#      copied to a temp folder and run there with that venv's pytest, once
#      whole and once with only its test that ignores bwsandbox;
#   3. a summary of every check; exit 1 if any failed.
#
# Writes nothing in the checkout (pip would build a local folder in place,
# so a copy of the checkout's files is installed); everything lives in one
# temp folder, removed at exit (SMOKE_KEEP=1 keeps it). Runs from any cwd.
# PYTHON picks the interpreter (default python3); SMOKE_REF=<commit> installs
# that commit instead of the files on disk (the integrator project is always
# the one on disk); SMOKE_CC=gcc lets C extensions build (to see the other
# checks while a no-compiler install is known to fail; CI never sets it).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
PY=${PYTHON:-python3}
started=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/bwsandbox-smoke.XXXXXX")
cleanup() {
  if [ "${SMOKE_KEEP:-0}" = 1 ]; then echo "smoke: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
steps="$work/steps.tsv"
: >"$steps"
step() { printf '%s\t%s\t%s\n' "$1" "$2" "$3" >>"$steps"; }  # PASS|FAIL  name  detail

junit_files() {  # the junit XML of each pytest run so far, one per line
  local f
  for f in "$work"/junit-*.xml; do if [ -f "$f" ]; then printf '%s\n' "$f"; fi; done
}

summary() {
  local files=()
  mapfile -t files < <(junit_files)
  "$PY" - "$steps" "${files[@]}" <<'EOF'
import sys
import xml.etree.ElementTree as ET

LABELS = {  # what each test of examples/integrator-pytest stands for
    "test_export_job_upload_is_processed": "(a) fixture + paramiko upload, report and directory",
    "test_arithmetic": "(b) unrelated test",
    "test_a_sandbox_serving_an_upload": "(c) asyncssh/asyncio/cryptography unchanged by a sandbox",
    "test_importing_does_not_import_asyncssh": "(d) import does not load asyncssh",
    "test_importing_leaves_the_csv_field_size_limit": "(d) import leaves csv.field_size_limit",
}
rows = []
for line in open(sys.argv[1], encoding="utf-8"):
    status, name, detail = (line.rstrip("\n").split("\t") + ["", ""])[:3]
    rows.append((status, name, detail))
for path in sys.argv[2:]:
    run = path.rsplit("junit-", 1)[1].removesuffix(".xml")
    for case in ET.parse(path).iter("testcase"):
        name = case.get("name", "")
        label = next((v for k, v in LABELS.items() if name.startswith(k)), "")
        problem = next((c for c in case if c.tag in ("failure", "error")), None)
        skipped = case.find("skipped")
        status = "FAIL" if problem is not None else "SKIP" if skipped is not None else "PASS"
        detail = ""
        if problem is not None:
            text = (problem.get("message") or problem.text or "").strip()
            detail = text.splitlines()[0][:300] if text else problem.tag
        elif skipped is not None:
            detail = (skipped.get("message") or "")[:200]
        test_id = f"{case.get('classname', '').rsplit('.', 1)[-1]}.py::{name}"
        rows.append((status, f"[{run}] {label + ': ' if label else ''}{test_id}", detail))
print("\n===== bwsandbox integrator smoke: summary =====")
for status, name, detail in rows:
    print(f"{status:4}  {name}" + (f"\n        {detail}" if detail else ""))
passed = sum(s == "PASS" for s, _, _ in rows)
failed = sum(s == "FAIL" for s, _, _ in rows)
print(f"smoke: {passed} passed, {failed} failed")
EOF
}

finish() {  # print the summary, then exit 0 only if every line passed
  local took=$((SECONDS - started))
  summary
  echo "smoke: took ${took}s"
  local files=()
  mapfile -t files < <(junit_files)
  if grep -q '^FAIL' "$steps" || [ ${#files[@]} = 0 ] || grep -q -e '<failure' -e '<error' "${files[@]}"; then
    exit 1
  fi
  exit 0
}

echo "smoke: work folder $work"

# -- 0. a copy of the checkout: its tracked and new files, not .venv/, build
#       output or anything .gitignore'd; SMOKE_REF=<commit> takes a commit
#       instead of the files on disk -------------------------------------------
mkdir -p "$work/checkout"
if [ -n "${SMOKE_REF:-}" ]; then
  git -C "$repo" archive "$SMOKE_REF" | tar -xf - -C "$work/checkout"
  echo "smoke: installing $(git -C "$repo" rev-parse --short "$SMOKE_REF") ($SMOKE_REF), not the files on disk"
elif git -C "$repo" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$repo" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do if [ -f "$f" ]; then printf '%s\0' "$f"; fi; done |
    tar --null -T - -cf -) | tar -xf - -C "$work/checkout"
else
  tar -C "$repo" --exclude=.git --exclude=.venv --exclude=.bwsandbox --exclude=build \
    --exclude='*.egg-info' --exclude='*.so' --exclude=__pycache__ -cf - . | tar -xf - -C "$work/checkout"
fi

# -- 1. fresh venv; install with no constraints and no compiler -------------
venv="$work/venv"
if "$PY" -m venv "$venv" >"$work/venv.log" 2>&1; then
  step PASS "venv ($("$venv/bin/python" --version 2>&1))" ""
else
  step FAIL "venv" "$(tail -n 3 "$work/venv.log" | tr '\n' ' ')"
  finish
fi

# pip as a stranger runs it: no constraints from pip.conf or PIP_* variables
# (this machine's config files are skipped, PIP_CONFIG_FILE=/dev/null), no
# local wheel folders or extra indexes, an empty cache (so no wheel built
# earlier with a compiler is reused). Only where to reach PyPI carries over:
# the CA bundle and index URL, from the environment or pip's config.
cc=${SMOKE_CC:-false}
pip_env=(env -u PIP_CONSTRAINT -u PIP_REQUIREMENT -u PIP_FIND_LINKS -u PIP_EXTRA_INDEX_URL
         -u PIP_NO_INDEX -u PIP_ONLY_BINARY -u PIP_NO_BINARY -u PIP_PRE -u PYTHONPATH
         PIP_CONFIG_FILE=/dev/null PIP_CACHE_DIR="$work/pip-cache" PIP_NO_INPUT=1
         PIP_DISABLE_PIP_VERSION_CHECK=1 CC="$cc")
if [ "$cc" = false ]; then pip_env+=(CXX=false); fi
for key in cert index-url; do
  var=PIP_$(printf '%s' "$key" | tr 'a-z-' 'A-Z_')
  if [ -z "${!var:-}" ]; then
    value=$("$PY" -m pip config get "global.$key" 2>/dev/null || true)
    if [ -n "$value" ]; then pip_env+=("$var=$value"); fi
  fi
done

echo "smoke: pip install <checkout> pytest paramiko (no constraints, CC=$cc) ..."
if timeout 300 "${pip_env[@]}" "$venv/bin/python" -m pip install "$work/checkout" pytest paramiko \
     </dev/null >"$work/pip.log" 2>&1; then
  versions=$("$venv/bin/python" -m pip list --format=freeze 2>/dev/null |
    grep -i -E '^(bwsandbox|asyncssh|cryptography|paramiko|pytest|polars|numpy|pysequoia|rich)==' | tr '\n' ' ')
  step PASS "install (CC=$cc, no constraints)" "$versions"
else
  echo "smoke: pip install failed; the end of its log:" >&2
  tail -n 40 "$work/pip.log" >&2
  why=$(grep -E -i 'error:|failed|No matching distribution|ResolutionImpossible' "$work/pip.log" |
    grep -v -i 'warning' | head -n 3 | tr -s ' \n' ' ' || true)
  compiling=$(grep -o "building '[^']*' extension" "$work/pip.log" | tail -n 1 || true)
  if [ -n "$compiling" ]; then why="$why(last step: $compiling)"; fi
  step FAIL "install (CC=$cc, no constraints)" "${why:-see the log above}"
  finish
fi

# -- 2. the integrator's project, copied, run from its own folder -----------
project="$work/project"
mkdir -p "$project"
tar -C "$repo/examples/integrator-pytest" --exclude=__pycache__ --exclude=.pytest_cache -cf - . |
  tar -xf - -C "$project"
run_pytest() {  # run_pytest NAME ARGS...: the venv's pytest in the project copy
  local name=$1 rc why
  shift
  echo "smoke: pytest ($name) in $project"
  set +e
  (cd "$project" && timeout 300 env -u PYTHONPATH -u PYTEST_ADDOPTS -u PYTEST_PLUGINS \
    "$venv/bin/python" -m pytest -p no:cacheprovider -rA --basetemp="$work/tmp-$name" \
    --junitxml="$work/junit-$name.xml" "$@" </dev/null 2>&1) | tee "$work/pytest-$name.log"
  rc=${PIPESTATUS[0]}
  set -e
  if [ ! -s "$work/junit-$name.xml" ]; then  # pytest stopped before running anything
    rm -f "$work/junit-$name.xml"
    why=$(grep -m 1 '^E ' "$work/pytest-$name.log" || grep -m 1 -i 'error' "$work/pytest-$name.log" || true)
    step FAIL "pytest ($name)" "exit $rc, no test ran: ${why#E }"
  elif [ "$rc" != 0 ] && ! grep -q -e '<failure' -e '<error' "$work/junit-$name.xml"; then
    step FAIL "pytest ($name)" "exit $rc with no failing test"
  fi
}
run_pytest all
run_pytest alone test_unrelated.py::test_arithmetic

finish

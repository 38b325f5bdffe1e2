#!/usr/bin/env bash
# Fuzz the validator with its two C extensions built under AddressSanitizer
# and UndefinedBehaviorSanitizer, then run the apply's C record reader's
# property tests on that build (docs/security.md "Fuzzing").
#
#   scripts/fuzz.sh [MINUTES]        default 10; split between the two engines
#
# What it does, leaving the checkout and .venv untouched:
#   1. copies the working tree (tracked and untracked files, not .venv) to a
#      temporary folder and builds _cscan and _ccells there in place with
#      -fsanitize=address,undefined -fno-sanitize-recover=undefined (gcc);
#   2. makes a temporary virtualenv whose only packages are .venv's (a .pth
#      file: the pinned dependencies, nothing downloaded) and whose
#      bwsandbox is the sanitized copy;
#   3. runs tests/unit/test_validator_fuzz.py there with
#      BWSANDBOX_FUZZ_SECONDS, on the accelerated engine (half the time) and
#      on the pure one (the other half), with libasan preloaded into Python;
#   4. then the property tests of the apply's C record reader (_rows.c) and
#      of its history of a change (_diff.c).
# Any sanitizer report aborts the run (exit non-zero); the last lines say how
# many examples each engine tried. Needs gcc with libasan/libubsan.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MINUTES="${1:-10}"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || { echo "fuzz.sh: run scripts/bootstrap.sh --test first (.venv is missing)" >&2; exit 2; }
command -v gcc >/dev/null || { echo "fuzz.sh: gcc is needed to build the sanitized extensions" >&2; exit 2; }
LIBASAN="$(gcc -print-file-name=libasan.so)"
[ -e "$LIBASAN" ] || { echo "fuzz.sh: libasan not found (apt-get install gcc: it ships with it)" >&2; exit 2; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/bwsandbox-fuzz.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

echo "fuzz.sh: copying the working tree to $TMP/src"
mkdir -p "$TMP/src"
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard \
    | grep -zv -e '^\.venv/' -e '\.so$' | xargs -0 tar -cf - --no-recursion) | tar -xf - -C "$TMP/src"

echo "fuzz.sh: a virtualenv with .venv's packages"
"$PY" -m venv --without-pip "$TMP/venv"
SITE="$("$TMP/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
"$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$SITE/bwsandbox-deps.pth"

echo "fuzz.sh: building _cscan and _ccells with -fsanitize=address,undefined"
# gcc directly, with the flags Python's own build uses for extensions
# (setup.py would do the same through setuptools' build environment).
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
INCLUDE="$("$PY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
SUFFIX="$("$PY" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')"
for pair in "_scan.c:_cscan" "_cells.c _rows.c _diff.c:_ccells"; do
    srcs="${pair%%:*}"; mod="${pair##*:}"
    files=()
    for src in $srcs; do files+=("$TMP/src/bwsandbox/validator/$src"); done
    gcc -shared -fPIC -std=c11 -Wall -Werror $SAN -I"$INCLUDE" \
        "${files[@]}" -o "$TMP/src/bwsandbox/validator/$mod$SUFFIX"
done

export PYTHONPATH="$TMP/src"
export LD_PRELOAD="$LIBASAN"
# Python itself is not instrumented: its allocations are not leaks to report.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cd "$TMP/src"
"$TMP/venv/bin/python" - <<'EOF'
from bwsandbox.validator import _ccells, _cscan, accel
assert accel.built("cscan") and accel.built("ccells"), "the sanitized extensions do not import"
for mod in (_cscan, _ccells):
    print("fuzz.sh: using", mod.__file__)
EOF

HALF=$((MINUTES * 30))
status=0
for engine in accelerated pure; do
    echo "fuzz.sh: $engine engine, $HALF s"
    BWSANDBOX_FUZZ_SECONDS="$HALF" "$TMP/venv/bin/python" -m pytest -p no:cacheprovider -o timeout=0 \
        -q -s "tests/unit/test_validator_fuzz.py::test_hostile_csv_never_makes_validate_raise[$engine]" \
        || status=$?
done
# The apply's C record reader (_rows.c), history of a change and quick change's
# reading of two JSON texts (_diff.c) under the same sanitizers: their property
# tests against the csv module, the normalisers, the rows one by one, the Python
# history rule and `valuechange.read_fields`, and the quick change against the merge.
echo "fuzz.sh: the record reader's, the history's and the quick change's property tests"
"$TMP/venv/bin/python" -m pytest -p no:cacheprovider -o timeout=0 -q tests/unit/test_quick_records.py \
    tests/unit/test_history_texts.py tests/unit/test_valuechange.py \
    "tests/unit/test_validator_fastpath.py::test_the_c_quick_row_is_the_rules" \
    "tests/unit/test_validator_fastpath.py::test_the_c_text_of_a_new_users_fields_is_the_one_json_dumps_writes" \
    || status=$?
exit "$status"

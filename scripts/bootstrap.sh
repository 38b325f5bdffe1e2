#!/usr/bin/env bash
# Set up everything on a fresh machine: the Debian packages the tests drive
# (real SFTP clients, sshd for the benchmark baseline, chromium + chromedriver for
# the web UI test, Node for the examples/ client) and a virtualenv with
# pinned Python dependencies (constraints.txt). Idempotent: fast when done.
#   scripts/bootstrap.sh          runtime only (for `make serve`)
#   scripts/bootstrap.sh --test   runtime + test clients + test libraries
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$want_test" = 1 ]; then
  missing=()
  for pair in sftp:openssh-client sshd:openssh-server sshpass:sshpass psftp:putty-tools \
              lftp:lftp curl:curl rclone:rclone strace:strace \
              chromium:chromium chromedriver:chromium-driver node:nodejs npm:npm; do
    bin=${pair%%:*}; pkg=${pair#*:}
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
# Rebuild when the dependencies or the C extension's source change.
stamp=".venv/.bootstrap-$want_test-$(cat pyproject.toml setup.py constraints.txt bwsandbox/validator/*.c | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$want_test" = 1 ]; then
    .venv/bin/python -m pip install -q -c constraints.txt -e ".[test]"
  else
    .venv/bin/python -m pip install -q -c constraints.txt -e .
  fi
  touch "$stamp"
fi

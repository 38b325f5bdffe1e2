#!/usr/bin/env bash
# Set up everything on a fresh machine: the Debian packages the tests drive
# (real SFTP clients, sshd for the benchmark baseline, chromium + chromedriver for
# the web UI test, Node for the examples/ client, gpg for the engage files' tests) and a virtualenv with
# pinned Python dependencies (constraints.txt). Debian packages are installed
# with apt-get, as root or through sudo. Idempotent: fast when done.
#   scripts/bootstrap.sh          runtime only (for `make serve`)
#   scripts/bootstrap.sh --test   runtime + test clients + test libraries
set -euo pipefail
cd "$(dirname "$0")/.."

apt_install() {
  local sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

if [ "$want_test" = 1 ]; then
  missing=()
  for pair in sftp:openssh-client sshd:openssh-server sshpass:sshpass psftp:putty-tools \
              lftp:lftp curl:curl rclone:rclone strace:strace \
              chromium:chromium chromedriver:chromium-driver node:nodejs npm:npm gpg:gnupg; do
    bin=${pair%%:*}; pkg=${pair#*:}
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "bootstrap: installing Debian packages: ${missing[*]}"
    apt_install "${missing[@]}"
  fi
fi

PY=${PYTHON:-python3}
# Debian and Ubuntu ship ensurepip (which puts pip in a virtualenv) apart, in
# python3.X-venv: installed here as the test packages are.
need_ensurepip() {
  "$PY" -c 'import ensurepip' >/dev/null 2>&1 && return
  local venv_pkg
  venv_pkg="python$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv"
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: $PY cannot make a virtualenv (no ensurepip): install $venv_pkg or its equivalent" >&2
    exit 1
  fi
  echo "bootstrap: installing Debian package: $venv_pkg (the virtualenv's pip)"
  apt_install "$venv_pkg"
}
if [ ! -x .venv/bin/python ]; then
  need_ensurepip
  "$PY" -m venv --clear .venv
elif ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  # A virtualenv without pip: made by uv or with --without-pip, or half-made
  # (`python3 -m venv` stops there when ensurepip is missing). Add pip to it;
  # remake it only when even that fails.
  if ! .venv/bin/python -m ensurepip >/dev/null 2>&1; then
    need_ensurepip
    .venv/bin/python -m ensurepip >/dev/null || "$PY" -m venv --clear .venv
  fi
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

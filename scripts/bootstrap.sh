#!/usr/bin/env bash
# Create the virtualenv and install inboxsync into it (the only set-up step the Makefile needs;
# system services are installed and started on demand by `python -m inboxsync.localenv`).
set -euo pipefail

venv=${1:-.venv}
python=${PYTHON:-python3}

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "inboxsync needs Python 3.11 or newer; set PYTHON=/path/to/python3.11" >&2
  exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian ships venv separately.
    rm -rf "$venv"
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get install -y -qq python3-venv
    "$python" -m venv "$venv"
  fi
fi

# The parse's C fast path (setup.py) needs a C compiler and Python's headers. Without them the
# install still succeeds and the parse runs its pure Python code: same rows, about three times
# slower. Debian's packages provide both for Debian's Python.
has_headers() {
  "$venv/bin/python" -c 'import os, sys, sysconfig
sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))'
}
if { ! command -v cc >/dev/null 2>&1 || ! has_headers; } && command -v apt-get >/dev/null 2>&1; then
  { sudo_if_needed apt-get update -qq && sudo_if_needed apt-get install -y -qq gcc python3-dev; } \
    >/dev/null || echo "bootstrap: no C compiler or Python headers: the parse runs in Python" >&2
fi

"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[dev]"

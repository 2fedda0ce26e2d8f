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

"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q -e ".[dev]"

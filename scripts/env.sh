#!/usr/bin/env bash
# Create the virtual environment (.venv) and install the project, pinned as in pyproject.toml
# and constraints.txt.
# Usage: scripts/env.sh [dev]   ("dev" adds the test and benchmark tools)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
extra="${1:-}"
python="${PYTHON:-python3}"

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python >= 3.11 is required" >&2; exit 1; }
# Debian's Python makes virtual environments only with python3-venv (ensurepip).
if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing: python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    timeout 300 apt-get update -qq
    timeout 600 apt-get install -y -qq python3-venv >/dev/null
  else
    echo "python3-venv is missing: sudo apt-get install python3-venv" >&2
    exit 1
  fi
fi
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"

stamp="$venv/.installed${extra:+-$extra}"
# Reinstall when the pins change or a top-level package appears (an editable install maps the
# packages it found when it was made).
digest=$( (cat pyproject.toml constraints.txt; ls -1 ./*/__init__.py) | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  "$venv/bin/python" -m pip install --quiet "pip==26.3"
  # Every package as in a green run (constraints.txt), not whatever is newest today.
  if [ "$extra" = dev ]; then
    "$venv/bin/python" -m pip install --quiet -c constraints.txt -e ".[dev]"
  else
    "$venv/bin/python" -m pip install --quiet -c constraints.txt -e .
  fi
  echo "$digest" > "$stamp"
fi

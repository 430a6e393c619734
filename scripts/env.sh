#!/usr/bin/env bash
# Create the virtual environment (.venv) and install the project, pinned as in pyproject.toml.
# Usage: scripts/env.sh [dev]   ("dev" adds the test and benchmark tools)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-.venv}"
extra="${1:-}"
python="${PYTHON:-python3}"

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python >= 3.11 is required" >&2; exit 1; }
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"

stamp="$venv/.installed${extra:+-$extra}"
# Reinstall when the pins change or a top-level package appears (an editable install maps the
# packages it found when it was made).
digest=$( (cat pyproject.toml; ls -1 ./*/__init__.py) | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$digest" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  if [ "$extra" = dev ]; then
    "$venv/bin/python" -m pip install --quiet -e ".[dev]"
  else
    "$venv/bin/python" -m pip install --quiet -e .
  fi
  echo "$digest" > "$stamp"
fi

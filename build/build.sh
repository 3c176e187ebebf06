#!/usr/bin/env bash
# One-folder build of edgetutor: dist/edgetutor/ plus dist/edgetutor-<version>-linux-<arch>.tar.gz
# and its .sha256 (see build/build.py and docs/build.md). Options: --dist DIR, --work DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
if [ ! -x "$PY" ]; then
  echo "build: $PY not found: run bash scripts/setup first (or set PYTHON to a Python with edgetutor installed)" >&2
  exit 1
fi
# PyInstaller is a dev dependency; install it (from PyPI) only if this environment lacks it.
"$PY" -c "import PyInstaller" 2>/dev/null || "$PY" -m pip install --quiet "pyinstaller>=6.10"
exec "$PY" build/build.py "$@"

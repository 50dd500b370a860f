#!/usr/bin/env bash
# Creates .venv (if missing) with the Python build and test tools, pinned.
set -euo pipefail
. "$(dirname "$0")/env.sh"
venv="$POLYRACER_ROOT/.venv"
if [ ! -x "$venv/bin/python" ]; then
  step "creating $venv"
  python3 -m venv "$venv"
fi
if ! { [ -x "$venv/bin/maturin" ] && [ -x "$venv/bin/ruff" ] && "$venv/bin/python" -c "import pytest, pytest_timeout" 2>/dev/null; }; then
  step "installing Python tools into .venv"
  "$venv/bin/pip" install --quiet -r "$POLYRACER_ROOT/bindings-python/requirements-dev.txt"
fi

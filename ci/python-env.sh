#!/usr/bin/env bash
# Creates .venv (if missing) with the Python build and test tools, pinned.
set -euo pipefail
. "$(dirname "$0")/env.sh"
venv="$POLYRACER_ROOT/.venv"
if [ ! -x "$VENV_BIN/python" ]; then
  step "creating $venv"
  "$PYTHON" -m venv "$venv"
fi
if ! { [ -x "$VENV_BIN/maturin" ] && [ -x "$VENV_BIN/ruff" ] && "$VENV_BIN/python" -c "import pytest, pytest_timeout" 2>/dev/null; }; then
  step "installing Python tools into .venv"
  "$VENV_BIN/python" -m pip install --quiet -r "$POLYRACER_ROOT/bindings-python/requirements-dev.txt"
fi

#!/usr/bin/env bash
# Demo: the Python binding (maturin develop into .venv) runs the tested
# quick-start example from docs/.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
step "Python: docs/examples/python/quickstart.py"
bash "$POLYRACER_ROOT/ci/python-env.sh"
(cd "$POLYRACER_ROOT/bindings-python" && "$POLYRACER_ROOT/.venv/bin/maturin" develop --quiet)
"$POLYRACER_ROOT/.venv/bin/python" docs/examples/python/quickstart.py

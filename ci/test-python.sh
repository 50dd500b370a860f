#!/usr/bin/env bash
# The Python binding's suite, as users get it: a release abi3 wheel built by
# maturin, installed into a clean venv, tested there (plus ruff).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"

step "Python binding: ruff, release wheel (maturin build), clean venv, pytest"
bash "$POLYRACER_ROOT/ci/python-env.sh"
tools="$POLYRACER_ROOT/.venv/bin"
"$tools/ruff" check bindings-python
"$tools/ruff" format --check bindings-python
# The release wheel exactly (ci/package-python.sh: abi3, manylinux tag).
rm -rf "$POLYRACER_ROOT/target/wheels-ci"
wheel=$(bash "$POLYRACER_ROOT/ci/package-python.sh" "$POLYRACER_ROOT/target/wheels-ci")
clean=$(mktemp -d)
trap 'rm -rf "$clean"' EXIT
python3 -m venv "$clean/venv"
"$clean/venv/bin/pip" install --quiet "$wheel" -r bindings-python/requirements-test.txt
# Run from the tests folder so `import polyracer` finds the installed wheel,
# not the source tree.
# Per-test time limit: pyproject.toml's pytest-timeout settings (120 s);
# the results file lets check-results.py fail on zero tests or any skip.
(cd bindings-python/tests && "$clean/venv/bin/python" -m pytest -q -rs -p no:cacheprovider \
  --junitxml="$clean/results.xml" .)
python3 ci/check-results.py junit "$clean/results.xml"

# PyMiniRacer's own suite against the compatibility layer (issue 11), from
# the PyPI sdist, with the wheel just built.
bash "$POLYRACER_ROOT/ci/compat-suites.sh"

#!/usr/bin/env bash
# Runs every test suite: formatting and lints, the Rust core and CLI tests
# (including the shared conformance cases), and the Python binding's suite.
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$POLYRACER_ROOT/ci/setup.sh"
cd "$POLYRACER_ROOT"

step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
step "cargo test (core, cli, conformance)"
cargo test --workspace

step "Python binding: build (maturin develop) and pytest"
bash "$POLYRACER_ROOT/ci/python-env.sh"
py="$POLYRACER_ROOT/.venv/bin/python"
(cd "$POLYRACER_ROOT/bindings-python" && "$POLYRACER_ROOT/.venv/bin/maturin" develop --quiet)
"$POLYRACER_ROOT/.venv/bin/ruff" check bindings-python
"$POLYRACER_ROOT/.venv/bin/ruff" format --check bindings-python
"$py" -m pytest bindings-python/tests -q

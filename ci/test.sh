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

step "Python binding: release wheel (maturin build), clean venv, pytest"
bash "$POLYRACER_ROOT/ci/python-env.sh"
tools="$POLYRACER_ROOT/.venv/bin"
"$tools/ruff" check bindings-python
"$tools/ruff" format --check bindings-python
rm -rf "$POLYRACER_ROOT/target/wheels-ci"
"$tools/maturin" build --release --quiet -m bindings-python/Cargo.toml -o "$POLYRACER_ROOT/target/wheels-ci"
clean=$(mktemp -d)
trap 'rm -rf "$clean"' EXIT
python3 -m venv "$clean/venv"
"$clean/venv/bin/pip" install --quiet "$POLYRACER_ROOT"/target/wheels-ci/polyracer-*.whl -r bindings-python/requirements-test.txt
# Run from the tests folder so `import polyracer` finds the installed wheel,
# not the source tree.
(cd bindings-python/tests && "$clean/venv/bin/python" -m pytest -q -p no:cacheprovider .)

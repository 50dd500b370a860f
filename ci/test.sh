#!/usr/bin/env bash
# Runs every test suite: formatting and lints, the Rust core and CLI tests
# (including the shared conformance cases), then each binding's own suite
# through its own tooling (ci/test-<binding>.sh).
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$POLYRACER_ROOT/ci/setup.sh"
cd "$POLYRACER_ROOT"
start=$SECONDS

step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy -D warnings (whole workspace, bindings included)"
cargo clippy --workspace --all-targets -- -D warnings
# The default members (core, cli) only: the bindings are cdylibs tested by
# their languages' own runners below.
step "cargo test (core, cli, conformance)"
cargo test

for binding in python ruby node swift; do
  bash "$POLYRACER_ROOT/ci/test-$binding.sh"
done
step "all suites passed in $((SECONDS - start)) s"

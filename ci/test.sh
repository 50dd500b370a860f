#!/usr/bin/env bash
# Runs every test suite: formatting and lints, the Rust core and CLI tests
# (including the shared conformance cases).
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

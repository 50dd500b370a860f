#!/usr/bin/env bash
# Runs every test suite: formatting and lints, the Rust core and CLI tests
# (including the shared conformance cases), then each binding's own suite
# through its own tooling (ci/test-<binding>.sh), then the release check
# (ci/release-check.sh). Every runner has a per-test
# time limit, and every suite fails if it ran no tests or skipped any it was
# not expected to (ci/check-results.py).
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$POLYRACER_ROOT/ci/setup.sh"
cd "$POLYRACER_ROOT"
start=$SECONDS

step "cargo fmt --check"
cargo fmt --all --check
step "cargo clippy -D warnings (whole workspace, bindings included)"
cargo clippy --workspace --all-targets -- -D warnings
step "no import cycles between each binding's native modules"
python3 ci/check-module-cycles.py bindings-python/src bindings-ruby/ext/polyracer/src bindings-node/src bindings-swift/src
# The default members (core, cli) only: the bindings are cdylibs tested by
# their languages' own runners below. cargo-nextest runs each test in its own
# process with a time limit (.config/nextest.toml), so a hang fails the test.
step "cargo nextest run (core, cli, conformance)"
results=$(mktemp)
trap 'rm -f "$results"' EXIT
cargo nextest run --profile ci 2>&1 | tee "$results"
# The only skipped tests may be the #[ignore = "run by ..."] helpers that
# another test runs in a child process; any other #[ignore] hides a test.
if grep -rnE '^\s*#\[ignore' core/src core/tests cli/src cli/tests --include=*.rs | grep -v '#\[ignore = "run by '; then
  echo 'only helpers run by another test may be #[ignore]d (#[ignore = "run by <test> ..."])' >&2
  exit 1
fi
helpers=$(grep -rhE '^\s*#\[ignore = "run by ' core/src core/tests cli/src cli/tests --include=*.rs | wc -l)
python3 ci/check-results.py nextest "$results" "$helpers"

for binding in python ruby node swift; do
  bash "$POLYRACER_ROOT/ci/test-$binding.sh"
done
# Every release artifact for this machine's target, built as release.yml
# builds it, installed clean and run; the workflows linted.
bash "$POLYRACER_ROOT/ci/release-check.sh"
step "all suites passed in $((SECONDS - start)) s"

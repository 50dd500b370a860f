#!/usr/bin/env bash
# The Node binding's suite: build the addon, type-check the shipped
# declarations, pack the packages as the release does (ci/package-node.sh:
# the platform package with the addon, the main package without it),
# install both into a clean directory and run the node:test suite there
# (spike, API, conformance cases, docs example).
set -euo pipefail
. "$(dirname "$0")/env.sh"
pkg="$POLYRACER_ROOT/bindings-node"

clean=$(mktemp -d)
trap 'rm -rf "$clean"' EXIT
platform_tgz=$(bash "$POLYRACER_ROOT/ci/package-node.sh" platform "$clean")
main_tgz=$(bash "$POLYRACER_ROOT/ci/package-node.sh" main "$clean")

step "Node: tsc --noEmit on the typed usage file"
(cd "$pkg" && node_modules/.bin/tsc -p test/types/tsconfig.json)

step "Node: install both packages into a clean directory, node --test"
mkdir -p "$clean/app/test"
cp "$pkg"/test/*.test.js "$clean/app/test/"
(
  cd "$clean/app"
  echo '{"name": "polyracer-clean-install", "private": true}' >package.json
  npm install --no-audit --no-fund --loglevel=error "$platform_tgz" "$main_tgz"
  # Time limits: --test-timeout fails a test (async work) after 120 s; a
  # test that blocks the event loop (a sync call that never returns) cannot
  # be timed out from inside its process, so `timeout` bounds the whole run.
  POLYRACER_CONFORMANCE="$POLYRACER_ROOT/conformance/cases" \
    POLYRACER_EXAMPLE="$POLYRACER_ROOT/docs/examples/node/quickstart.js" \
    timeout --kill-after=30 1200 \
    node --test --test-concurrency=1 --test-timeout=120000 --test-reporter=dot --test-reporter-destination=stdout \
    --test-reporter=tap --test-reporter-destination="$clean/results.tap" test/
)
grep -E '^# (tests|pass|fail|cancelled|skipped|todo)' "$clean/results.tap"
# Fails on zero tests and on any skip (the nm check skips only without nm).
python3 "$POLYRACER_ROOT/ci/check-results.py" tap "$clean/results.tap"

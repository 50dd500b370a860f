#!/usr/bin/env bash
# Builds the Node binding and runs the docs quick start with it.
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$POLYRACER_ROOT/ci/node-build.sh"
step "Node: docs/examples/node/quickstart.js"
modules=$(mktemp -d)
trap 'rm -rf "$modules"' EXIT
ln -s "$POLYRACER_ROOT/bindings-node" "$modules/polyracer"
NODE_PATH="$modules" node "$POLYRACER_ROOT/docs/examples/node/quickstart.js"

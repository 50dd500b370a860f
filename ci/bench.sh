#!/usr/bin/env bash
# Benchmarks: the core round trips (release build).
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$POLYRACER_ROOT/ci/setup.sh"
cd "$POLYRACER_ROOT"
cargo bench -p polyracer --bench core

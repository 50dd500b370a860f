#!/usr/bin/env bash
# Benchmarks (release build): the core round trips, then code cache and
# snapshot start-up on a real 9 MB bundle.
set -euo pipefail
. "$(dirname "$0")/env.sh"
bash "$POLYRACER_ROOT/ci/setup.sh"
cd "$POLYRACER_ROOT"
cargo bench -p polyracer --bench core
cargo bench -p polyracer --bench bundle

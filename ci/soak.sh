#!/usr/bin/env bash
# Soak run (not part of CI): four threads mixing every operation for
# POLYRACER_SOAK_SECS seconds (default 600), sampling RSS, threads, open fds
# and a long-lived context's heap every POLYRACER_SOAK_INTERVAL seconds
# (default 5). Prints CSV, then whether each is flat (last third of the
# samples against the first third after warm-up); exits 1 on growth.
# Usage: ci/soak.sh [seconds]
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
export POLYRACER_SOAK_SECS=${1:-${POLYRACER_SOAK_SECS:-600}}
# Release: the point is many operations per second, as in production.
exec nice -n 19 cargo bench -p polyracer --bench soak

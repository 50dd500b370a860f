#!/usr/bin/env bash
# Runs one cargo-fuzz target of core/fuzz for a while (not part of CI).
# Usage: ci/fuzz.sh TARGET [seconds, default 600] [extra libFuzzer args]
# Targets: framing, modules, values, options (see core/fuzz/README.md).
# SANITIZER=address|none (default address; see core/fuzz/README.md).
set -euo pipefail
. "$(dirname "$0")/env.sh"
target=${1:?usage: ci/fuzz.sh TARGET [seconds]}
secs=${2:-600}
shift $(( $# >= 2 ? 2 : 1 ))
cd "$POLYRACER_ROOT/core/fuzz"
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP enables them on stable.
# Its RUSTFLAGS replace .cargo/config.toml's, so lld is named again here.
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=lld"
mkdir -p "corpus/$target" artifacts
# corpus/ (ignored) collects what the run finds; seeds/ is committed.
nice -n 19 cargo fuzz run --sanitizer "${SANITIZER:-address}" "$target" "corpus/$target" "seeds/$target" -- \
  -max_total_time="$secs" -rss_limit_mb=4096 -timeout=30 -print_final_stats=1 "$@"

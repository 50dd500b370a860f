#!/usr/bin/env bash
# LeakSanitizer over the core tests (not part of ci/test.sh: a separate
# sanitizer build of V8's consumers costs minutes). Builds into target/lsan
# so the normal build cache is untouched, and fails on any leak report that
# ci/lsan.supp does not explain.
# Usage: ci/lsan.sh [extra args for the test binary, e.g. a test name filter]
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
# -Zsanitizer needs nightly features; RUSTC_BOOTSTRAP enables them on the
# stable toolchain, whose sysroot ships the LSan runtime
# (librustc-*_rt.lsan.a), so no clang runtime package is needed. --target
# keeps build scripts and proc macros (which run on the host) unsanitised.
# The explicit rustflags replace .cargo/config.toml's, so lld is repeated.
export RUSTC_BOOTSTRAP=1
export RUSTFLAGS="-Zsanitizer=leak -C link-arg=-fuse-ld=lld"
target=$(rustc -vV | sed -n 's/^host: //p')
export LSAN_OPTIONS="suppressions=$POLYRACER_ROOT/ci/lsan.supp:print_suppressions=1:report_objects=0"
step "LeakSanitizer: core tests ($target, target/lsan)"
nice -n 19 cargo test -p polyracer --test core --target "$target" --target-dir target/lsan -- "$@"

#!/usr/bin/env bash
# The Swift binding's checks that run on Linux (no Swift compiler here):
#   1. build libpolyracer_swift (cargo build -p polyracer-swift);
#   2. regenerate the Swift sources + C header with the workspace's pinned
#      uniffi-bindgen and fail if the committed ones in bindings-swift/Sources
#      are stale;
#   3. run the pytest suite in bindings-swift/tests-ffi against uniffi's
#      generated *Python* bindings of the same library (every exported
#      function, callbacks, errors, async, the conformance cases).
# The XCTest cases in bindings-swift/Tests run on macOS CI (swift test).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
pkg=bindings-swift

step "Swift binding: cargo build -p polyracer-swift"
lib=$(python3 ci/cargo-artifact.py --debug polyracer-swift cdylib)

step "Swift binding: generated sources are current"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash "$pkg/generate.sh" swift "$lib" "$tmp/swift"
stale=0
diff -u "$pkg/Sources/PolyRacer/Generated/PolyRacer.swift" "$tmp/swift/Sources/PolyRacer/Generated/PolyRacer.swift" \
  >"$tmp/swift.diff" || stale=1
diff -u "$pkg/Sources/PolyRacerFFI/PolyRacerFFI.h" "$tmp/swift/Sources/PolyRacerFFI/PolyRacerFFI.h" \
  >>"$tmp/swift.diff" || stale=1
if [ $stale = 1 ]; then
  head -40 "$tmp/swift.diff" >&2
  echo "bindings-swift/Sources is stale: run bindings-swift/generate.sh swift $lib bindings-swift" >&2
  exit 1
fi
echo "ok"

step "Swift binding: pytest through uniffi's Python bindings"
bash "$POLYRACER_ROOT/ci/python-env.sh"
tools=$POLYRACER_ROOT/.venv/bin
"$tools/ruff" check --config "$pkg/tests-ffi/ruff.toml" "$pkg/tests-ffi" "$pkg/bench" docs/examples/swift
"$tools/ruff" format --check --config "$pkg/tests-ffi/ruff.toml" "$pkg/tests-ffi" "$pkg/bench" docs/examples/swift
bash "$pkg/generate.sh" python "$lib" "$tmp/python"
# Per-test time limit: tests-ffi/pytest.ini's pytest-timeout settings (120 s);
# the results file lets check-results.py fail on zero tests or any skip.
(cd "$pkg/tests-ffi" && POLYRACER_SWIFT_FFI_DIR="$tmp/python" "$tools/python" -m pytest -q -rs -p no:cacheprovider \
  --junitxml="$tmp/results.xml" .)
python3 ci/check-results.py junit "$tmp/results.xml"

#!/usr/bin/env bash
# Demo of the Swift binding on a machine without a Swift compiler: builds the
# library, regenerates the bindings and runs the docs example's equivalent
# (docs/examples/swift/quickstart_equivalent.py) through uniffi's generated
# Python bindings of the same library. On macOS, run the Swift example itself:
#   ci/swift-xcframework.sh && (cd bindings-swift && swift run PolyRacerQuickstart)
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
step "Swift binding: building libpolyracer_swift and regenerating its bindings"
lib=$(python3 ci/cargo-artifact.py --debug polyracer-swift cdylib --quiet)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash bindings-swift/generate.sh swift "$lib" "$tmp/swift"
bash bindings-swift/generate.sh python "$lib" "$tmp/python"
echo "Swift package:     bindings-swift/Package.swift (import PolyRacer)"
echo "Swift sources:     bindings-swift/Sources/PolyRacer/ (generated: Generated/PolyRacer.swift)"
echo "C header:          bindings-swift/Sources/PolyRacerFFI/PolyRacerFFI.h"
echo "Swift example:     docs/examples/swift/main.swift"

step "docs/examples/swift/main.swift, run through the generated Python bindings (no Swift compiler here)"
python=python3
[ -x "$POLYRACER_ROOT/.venv/bin/python" ] && python=$POLYRACER_ROOT/.venv/bin/python
PYTHONPATH="$tmp/python" "$python" docs/examples/swift/quickstart_equivalent.py

#!/usr/bin/env bash
# The C library and header the Swift package is built from, for this
# machine's target (the macOS release job packs the same into the
# XCFramework with ci/swift-xcframework.sh):
#   ci/package-swift-lib.sh OUT_DIR
# writes OUT_DIR/libpolyracer_swift.a (core, the uniffi layer and V8),
# OUT_DIR/include/PolyRacerFFI.h + module.modulemap, and
# OUT_DIR/native-static-libs.txt: the system libraries a program linking the
# archive needs (as rustc reports them). Prints OUT_DIR.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
out=$(mkdir -p "$1" && cd "$1" && pwd)
step "Swift C library (cargo rustc --release -p polyracer-swift --crate-type staticlib)" >&2
# cargo rustc for the one crate type, so rustc prints the native libraries.
cargo rustc --release --locked -p polyracer-swift --lib --crate-type staticlib --message-format=json-render-diagnostics \
  -- --print=native-static-libs >"$out/cargo.json" 2>"$out/rustc.txt" || { cat "$out/rustc.txt" >&2; exit 1; }
lib=$(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and "staticlib" in m.get("target", {}).get("crate_types", []):
        print(next(f for f in m["filenames"] if f.endswith((".a", ".lib"))))
' "$out/cargo.json")
[ -n "$lib" ] || { echo "cargo reported no staticlib for polyracer-swift" >&2; exit 1; }
sed -n 's/.*native-static-libs: //p' "$out/rustc.txt" | tail -1 >"$out/native-static-libs.txt"
cp "$lib" "$out/libpolyracer_swift.a"
mkdir -p "$out/include"
cp bindings-swift/Sources/PolyRacerFFI/PolyRacerFFI.h bindings-swift/Sources/PolyRacerFFI/module.modulemap "$out/include/"
rm -f "$out/cargo.json" "$out/rustc.txt"
echo "$out"

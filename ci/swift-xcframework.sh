#!/usr/bin/env bash
# Builds bindings-swift/PolyRacerFFI.xcframework (macOS only): the static
# library of polyracer-swift (core + uniffi layer, V8 linked in) per Apple
# target, with the uniffi C header and a module map, so `swift build` /
# `swift test` in bindings-swift/ link it. Also writes
# bindings-swift/build/PolyRacerFFI.xcframework.zip and its SwiftPM checksum
# (for a remote `.binaryTarget(url:checksum:)`).
#
#   ci/swift-xcframework.sh
#       macOS arm64 + x86_64 (one universal static library), with rusty_v8's
#       official macOS V8 archives (the TLS problem of the Linux archive is
#       ELF-only). macOS only: rusty_v8 142 has no iOS target, so there is
#       no iOS slice until it does.
#
# First regenerates the Swift sources and fails if the committed ones are
# stale, as ci/test-swift.sh does on Linux.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
if [ "$(uname -s)" != Darwin ]; then
  echo "ci/swift-xcframework.sh needs macOS (xcodebuild, lipo); on Linux run ci/test-swift.sh" >&2
  exit 1
fi
pkg=bindings-swift
out=$pkg/PolyRacerFFI.xcframework
work=target/swift-xcframework
rm -rf "$work" "$out" "$pkg/build"
mkdir -p "$work/headers" "$pkg/build"

macos=(aarch64-apple-darwin x86_64-apple-darwin)
for t in "${macos[@]}"; do
  step "cargo build --release -p polyracer-swift --target $t"
  rustup target add "$t" >/dev/null
  cargo build --release --locked -p polyracer-swift --target "$t"
done

step "generated bindings are current"
host=aarch64-apple-darwin
[ "$(uname -m)" = x86_64 ] && host=x86_64-apple-darwin
fresh=$(mktemp -d)
trap 'rm -rf "$fresh"' EXIT
bash "$pkg/generate.sh" swift "target/$host/release/libpolyracer_swift.dylib" "$fresh"
diff -u "$pkg/Sources/PolyRacer/Generated/PolyRacer.swift" "$fresh/Sources/PolyRacer/Generated/PolyRacer.swift"
diff -u "$pkg/Sources/PolyRacerFFI/PolyRacerFFI.h" "$fresh/Sources/PolyRacerFFI/PolyRacerFFI.h"

cp "$pkg/Sources/PolyRacerFFI/PolyRacerFFI.h" "$work/headers/"
# The XCFramework links the library itself, so this module map has no `link`.
cat >"$work/headers/module.modulemap" <<'MAP'
module PolyRacerFFI {
    header "PolyRacerFFI.h"
    export *
}
MAP

fat() { # fat <name> <targets...>: one (universal) static library
  local name=$1
  shift
  mkdir -p "$work/$name"
  local libs=()
  for t in "$@"; do libs+=("target/$t/release/libpolyracer_swift.a"); done
  lipo -create "${libs[@]}" -output "$work/$name/libpolyracer_swift.a"
  echo "$work/$name/libpolyracer_swift.a"
}

args=(-library "$(fat macos "${macos[@]}")" -headers "$work/headers")
step "xcodebuild -create-xcframework"
xcodebuild -create-xcframework "${args[@]}" -output "$out"
(cd "$pkg" && ditto -c -k --keepParent PolyRacerFFI.xcframework build/PolyRacerFFI.xcframework.zip)
(cd "$pkg" && swift package compute-checksum build/PolyRacerFFI.xcframework.zip >build/PolyRacerFFI.xcframework.zip.checksum)
echo "built $out and $pkg/build/PolyRacerFFI.xcframework.zip (checksum $(cat "$pkg/build/PolyRacerFFI.xcframework.zip.checksum"))"

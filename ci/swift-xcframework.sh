#!/usr/bin/env bash
# Builds bindings-swift/PolyRacerFFI.xcframework (macOS only): the static
# library of polyracer-swift (core + uniffi layer, V8 linked in) per Apple
# target, with the uniffi C header and a module map, so `swift build` /
# `swift test` in bindings-swift/ link it. Also writes
# bindings-swift/build/PolyRacerFFI.xcframework.zip and its SwiftPM checksum
# (for a remote `.binaryTarget(url:checksum:)`).
#
#   ci/swift-xcframework.sh
#       macOS arm64 + x86_64 (universal), with the v8 crate's prebuilt V8.
#   POLYRACER_V8_ARTIFACTS=dir ci/swift-xcframework.sh
#       the release workflow: dir/v8-<target>/ holds the V8 that
#       ci/build-v8.sh built for each target; every Apple target found there
#       is built, including iOS (aarch64-apple-ios, aarch64-apple-ios-sim)
#       if present. The release workflow has none (rusty_v8 142 supports no
#       iOS target), so its XCFramework is macOS-only for now.
#       V8 on iOS may not JIT: call configure(flags: ["--jitless"]) first.
#
# First regenerates the Swift sources and fails if the committed ones are
# stale, as ci/test-swift.sh does on Linux.
set -euo pipefail
. "$(dirname "$0")/env.sh"
# Made absolute against the caller's directory before the cd below: the v8
# crate's build script would resolve a relative RUSTY_V8_ARCHIVE in its own
# registry folder.
if [ -n "${POLYRACER_V8_ARTIFACTS:-}" ]; then
  POLYRACER_V8_ARTIFACTS=$(cd "$POLYRACER_V8_ARTIFACTS" && pwd)
fi
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
ios=()
ios_sim=()
artifacts=${POLYRACER_V8_ARTIFACTS:-}
if [ -n "$artifacts" ]; then
  [ -d "$artifacts/v8-aarch64-apple-ios" ] && ios=(aarch64-apple-ios)
  for t in aarch64-apple-ios-sim x86_64-apple-ios; do
    [ -d "$artifacts/v8-$t" ] && ios_sim+=("$t")
  done
fi

build() { # build <target>: cargo build, with that target's V8 when given
  local t=$1
  step "cargo build --release -p polyracer-swift --target $t"
  rustup target add "$t" >/dev/null
  if [ -n "$artifacts" ] && [ -d "$artifacts/v8-$t" ]; then
    RUSTY_V8_ARCHIVE=$(ls "$artifacts/v8-$t"/*rusty_v8_release_*) \
      RUSTY_V8_SRC_BINDING_PATH="$artifacts/v8-$t/src_binding_release_$t.rs" \
      cargo build --release --locked -p polyracer-swift --target "$t"
  else
    cargo build --release --locked -p polyracer-swift --target "$t"
  fi
}
# (the +-expansions keep bash 3.2, macOS's /bin/bash, happy with empty arrays)
for t in "${macos[@]}" ${ios[@]+"${ios[@]}"} ${ios_sim[@]+"${ios_sim[@]}"}; do
  build "$t"
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
[ ${#ios[@]} -gt 0 ] && args+=(-library "$(fat ios "${ios[@]}")" -headers "$work/headers")
[ ${#ios_sim[@]} -gt 0 ] && args+=(-library "$(fat ios-sim "${ios_sim[@]}")" -headers "$work/headers")
step "xcodebuild -create-xcframework"
xcodebuild -create-xcframework "${args[@]}" -output "$out"
(cd "$pkg" && ditto -c -k --keepParent PolyRacerFFI.xcframework build/PolyRacerFFI.xcframework.zip)
(cd "$pkg" && swift package compute-checksum build/PolyRacerFFI.xcframework.zip >build/PolyRacerFFI.xcframework.zip.checksum)
echo "built $out and $pkg/build/PolyRacerFFI.xcframework.zip (checksum $(cat "$pkg/build/PolyRacerFFI.xcframework.zip.checksum"))"

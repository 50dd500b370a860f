#!/usr/bin/env bash
# The npm packages, the same here (ci/test-node.sh, ci/release-check.sh)
# and in the release workflow:
#   ci/package-node.sh platform OUT_DIR
#       builds the addon for this machine (ci/node-build.sh) and packs its
#       per-platform package (@polyracer/binding-<platform>, from
#       bindings-node/npm/<platform>/) into OUT_DIR.
#   ci/package-node.sh main OUT_DIR
#       packs the main package `polyracer` (JS, loader, types; no binary),
#       with every napi.targets platform package as an optional dependency
#       at this version: npm installs the one whose os/cpu/libc match.
# Packs from a staged copy, so the checkout (and its lock file) is not
# rewritten. Prints the tarball's path.
set -euo pipefail
. "$(dirname "$0")/env.sh"
pkg="$POLYRACER_ROOT/bindings-node"
mode=$1
out=$(mkdir -p "$2" && cd "$2" && pwd)
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
case "$mode" in
  platform)
    bash "$POLYRACER_ROOT/ci/node-build.sh" >&2
    suffix=$(node "$POLYRACER_ROOT/ci/napi-platform.js")
    [ -f "$pkg/npm/$suffix/package.json" ] || { echo "no bindings-node/npm/$suffix: not a napi.targets platform" >&2; exit 1; }
    cp "$pkg/npm/$suffix/package.json" "$pkg/npm/$suffix/README.md" "$stage/"
    cp "$pkg/polyracer.$suffix.node" "$stage/"
    ;;
  main)
    cp -r "$pkg/package.json" "$pkg/lib" "$pkg/index.js" "$pkg/index.d.ts" "$pkg/README.md" "$stage/"
    cp "$POLYRACER_ROOT/LICENSE" "$stage/"
    node "$POLYRACER_ROOT/ci/napi-platform.js" --optional-dependencies "$stage/package.json"
    ;;
  *) echo "usage: ci/package-node.sh platform|main OUT_DIR" >&2; exit 2 ;;
esac
(cd "$stage" && npm pack --silent --pack-destination "$out" | tail -1 | sed "s|^|$out/|")

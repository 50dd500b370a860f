#!/usr/bin/env bash
# Regenerates the uniffi bindings from a built polyracer_swift library.
#
#   generate.sh swift  <library> <package-root>  Swift sources + C header in the
#                                                 package layout (Sources/...)
#   generate.sh python <library> <dir>            Python module (tests, demo) with
#                                                 a copy of the library next to it
#
# Output is never formatted (--no-format), so it is the same on every machine
# and the committed sources can be checked for staleness.
set -euo pipefail
. "$(dirname "$0")/../ci/env.sh"
lang=$1 lib=$(cd "$(dirname "$2")" && pwd)/$(basename "$2") dest=$3
# uniffi_bindgen is mostly askama-generated code: at the workspace's
# dependency opt-level 2 it took minutes of CPU to compile, unoptimised it
# generates these bindings in under a second all the same.
bindgen=$(cd "$POLYRACER_ROOT" && python3 ci/cargo-artifact.py --debug uniffi-bindgen bin \
  -q --config 'profile.dev.package.uniffi_bindgen.opt-level=0')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# From the workspace: library mode finds uniffi.toml through `cargo metadata`.
(cd "$POLYRACER_ROOT" && "$bindgen" generate --no-format \
  --language "$lang" --out-dir "$tmp" "$lib" >"$tmp/log" 2>&1) || { cat "$tmp/log" >&2; exit 1; }
mkdir -p "$dest"
case $lang in
  swift)
    mkdir -p "$dest/Sources/PolyRacer/Generated" "$dest/Sources/PolyRacerFFI"
    cp "$tmp/PolyRacer.swift" "$dest/Sources/PolyRacer/Generated/PolyRacer.swift"
    cp "$tmp/PolyRacerFFI.h" "$dest/Sources/PolyRacerFFI/PolyRacerFFI.h"
    ;;
  python)
    cp "$tmp/polyracer_swift.py" "$dest/"
    cp "$lib" "$dest/"
    ;;
  *) echo "unknown language $lang" >&2; exit 2 ;;
esac

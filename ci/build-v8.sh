#!/usr/bin/env bash
# Release CI only (hours on a small machine; never run it on a dev box).
# Builds rusty_v8 (the `v8` crate) from source for one target with the GN
# arguments every polyracer artifact needs, and packs the result the way the
# crate's own download is packed, so every later build uses it through
# RUSTY_V8_ARCHIVE / RUSTY_V8_SRC_BINDING_PATH (see ci/env.sh):
#   - v8_monolithic_for_shared_library=true: the TLS model that can go into a
#     shared object (Python, Ruby and Node extensions are shared objects; the
#     official x86_64 Linux archive uses local-exec TLS and cannot).
#   - v8_enable_temporal_support=false: as the development machines' V8, so
#     every artifact exposes the same globals.
# Usage: ci/build-v8.sh TARGET OUT_DIR
set -euo pipefail
target=$1
out=$(mkdir -p "$2" && cd "$2" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
version=$(sed -n 's/^v8 = "=\(.*\)"/\1/p' "$root/Cargo.toml")
work=${V8_WORK_DIR:-$root/target/v8-src}
if [ ! -d "$work/.git" ]; then
  git clone --depth 1 --branch "v$version" --recurse-submodules --shallow-submodules \
    https://github.com/denoland/rusty_v8.git "$work"
fi
cd "$work"
export V8_FROM_SOURCE=1
export GN_ARGS="v8_monolithic_for_shared_library=true v8_enable_temporal_support=false ${EXTRA_GN_ARGS:-}"
cargo build --release --locked --target "$target" --lib
gn_out="target/$target/release/gn_out"
lib=$(find "$gn_out/obj" -name 'librusty_v8.a' -o -name 'rusty_v8.lib' | head -1)
case "$lib" in
  *.lib) gzip -c "$lib" > "$out/rusty_v8_release_$target.lib.gz" ;;
  *) gzip -c "$lib" > "$out/librusty_v8_release_$target.a.gz" ;;
esac
cp "$gn_out/src_binding.rs" "$out/src_binding_release_$target.rs"
ls -l "$out"

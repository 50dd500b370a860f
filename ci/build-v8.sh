#!/usr/bin/env bash
# Release CI only (hours on a small machine; never run it on a dev box).
# Builds rusty_v8 (the `v8` crate) from source for one target with the GN
# arguments every polyracer artifact needs, and packs the result the way the
# crate's own download is packed, so every later build uses it through
# RUSTY_V8_ARCHIVE / RUSTY_V8_SRC_BINDING_PATH (see ci/env.sh). Both must be
# absolute paths: the v8 crate's build script resolves a relative one against
# its own folder in the cargo registry, not against the caller's directory.
#   - v8_monolithic=true and v8_monolithic_for_shared_library=true: the TLS
#     model that can go into a shared object (Python, Ruby and Node extensions
#     are shared objects; the official x86_64 Linux archive uses local-exec
#     TLS and cannot). V8's BUILD.gn adds the V8_TLS_USED_IN_LIBRARY define
#     only when v8_monolithic is true as well as
#     v8_monolithic_for_shared_library, so the second alone changes nothing
#     (v8/BUILD.gn line 1171 in the 142.2.0 crate). rusty_v8's .gn already
#     sets is_component_build=false and v8_use_external_startup_data=false,
#     which V8 asserts for v8_monolithic.
#     After the build the archive is gated on it (ELF targets): no local-exec
#     (TPOFF / TLSLE) relocation may remain.
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
# Both monolithic args: see the header (V8_TLS_USED_IN_LIBRARY needs both).
export GN_ARGS="v8_monolithic=true v8_monolithic_for_shared_library=true v8_enable_temporal_support=false ${EXTRA_GN_ARGS:-}"
cargo build --release --locked --target "$target" --lib
gn_out="target/$target/release/gn_out"
lib=$(find "$gn_out/obj" -name 'librusty_v8.a' -o -name 'rusty_v8.lib' | head -1)
[ -n "$lib" ] || { echo "no librusty_v8.a / rusty_v8.lib under $gn_out/obj" >&2; exit 1; }

# TLS gate (ELF only: the local-exec problem does not exist on Mach-O or
# COFF). The whole point of this build is that V8's thread-locals use a model
# a dlopen()ed extension can use; a local-exec relocation (x86_64
# R_X86_64_TPOFF32/TPOFF64, aarch64 R_AARCH64_TLSLE_*) in any object means
# the define did not take and the archive must not be published. readelf
# reads every member of the .a. Its output goes to a file first, so a
# readelf failure fails the script instead of passing as "no matches".
case "$target" in
  *-linux-*)
    relocs=$(mktemp)
    "${READELF:-readelf}" -rW "$lib" >"$relocs"
    if ! grep -q 'Relocation section' "$relocs"; then
      echo "TLS gate: readelf -rW printed no relocations for $lib" >&2
      exit 1
    fi
    if grep -E 'R_X86_64_TPOFF(32|64)|R_AARCH64_TLSLE_' "$relocs" >"$relocs.bad"; then
      echo "TLS gate: $(wc -l <"$relocs.bad") local-exec TLS relocations in $lib, e.g.:" >&2
      head -5 "$relocs.bad" >&2
      exit 1
    fi
    echo "TLS gate: no TPOFF/TLSLE relocations in $lib"
    rm -f "$relocs" "$relocs.bad"
    ;;
esac
case "$lib" in
  *.lib) gzip -c "$lib" > "$out/rusty_v8_release_$target.lib.gz" ;;
  *) gzip -c "$lib" > "$out/librusty_v8_release_$target.a.gz" ;;
esac
cp "$gn_out/src_binding.rs" "$out/src_binding_release_$target.rs"
ls -l "$out"

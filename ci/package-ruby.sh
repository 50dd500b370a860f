#!/usr/bin/env bash
# Ruby release artifacts, the same here (ci/release-check.sh) and in the
# release workflow:
#   ci/package-ruby.sh ext EXT_DIR
#       builds the extension for the `ruby` on PATH (its ABI) into
#       EXT_DIR/<X.Y>/polyracer.so. The workflow runs it once per Ruby minor,
#       on a runner of the gem's platform (no cross-compiling).
#   ci/package-ruby.sh gem EXT_DIR OUT_DIR
#       the native gem for this platform, carrying every EXT_DIR/<X.Y>, and
#       the source gem (standalone Cargo manifest, core from crates.io).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
mode=$1
ext_dir=$(mkdir -p "$2" && cd "$2" && pwd)
case "$mode" in
  ext)
    minor=$(ruby -e 'print RUBY_VERSION[/\A\d+\.\d+/]')
    step "Ruby $minor extension (cargo build --release -p polyracer-ruby)"
    built=$("$PYTHON" ci/cargo-artifact.py polyracer-ruby cdylib)
    mkdir -p "$ext_dir/$minor"
    install -m 0755 "$built" "$ext_dir/$minor/polyracer.so"
    ;;
  gem)
    out=$(mkdir -p "$3" && cd "$3" && pwd)
    step "Ruby native gem (carries $(ls "$ext_dir" | tr '\n' ' ')) and source gem"
    rm -rf bindings-ruby/pkg
    native=$(cd bindings-ruby && EXT_DIR="$ext_dir" rake -s native_gem | tail -1)
    (cd bindings-ruby && rake -s source_gem >/dev/null)
    cp "$native" bindings-ruby/pkg/polyracer-"$(ruby -Ibindings-ruby/lib -rpolyracer/version -e 'print Polyracer::VERSION')".gem "$out/"
    ls -l "$out"
    ;;
  *) echo "usage: ci/package-ruby.sh ext EXT_DIR | gem EXT_DIR OUT_DIR" >&2; exit 2 ;;
esac

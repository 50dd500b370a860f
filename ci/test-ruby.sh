#!/usr/bin/env bash
# The Ruby binding's suite: runs the shared setup (ci/setup.sh), builds
# the extension with cargo (release; rubygems.org is not used), runs every
# minitest file (API, bad input, threads, fork, conformance cases, MiniRacer
# compat, docs example, RBS signatures), then checks that `gem build` makes a
# valid package with a standalone Cargo manifest.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"

# Ruby's toolchain (ruby, ruby-dev, libclang-dev, ruby-minitest, rake) is
# installed by the shared setup; a no-op when ci/test.sh already ran it.
bash "$POLYRACER_ROOT/ci/setup.sh"
ruby --version

step "Ruby binding: build (cargo build --release -p polyracer-ruby)"
install -m 0755 "$(python3 ci/cargo-artifact.py polyracer-ruby cdylib)" bindings-ruby/lib/polyracer/polyracer.so

step "Ruby binding: minitest (rake test)"
# Time limits: test/test_helper.rb fails any test that runs over 120 s
# (Timeout, which interrupts an eval: the binding releases the GVL); code
# that held the GVL forever could not be interrupted, so `timeout` bounds the
# whole run too. The output is kept so check-results.py can fail on zero
# tests or any skip.
results=$(mktemp)
(cd bindings-ruby && timeout --kill-after=30 1200 rake test) 2>&1 | tee "$results"
python3 ci/check-results.py minitest "$results"

step "Ruby binding: gem build"
(cd bindings-ruby && rake source_gem >/dev/null)
gem_file="bindings-ruby/pkg/polyracer-$(ruby -Ibindings-ruby/lib -rpolyracer/version -e 'print Polyracer::VERSION').gem"
unpacked=$(mktemp -d)
trap 'rm -rf "$unpacked" "$results"' EXIT
gem unpack "$gem_file" --target "$unpacked" >/dev/null
pkg="$unpacked/$(basename "$gem_file" .gem)"
[ "$(gem spec "$gem_file" extensions | grep -c 'ext/polyracer/extconf.rb')" = 1 ]
for f in lib/polyracer.rb lib/polyracer/mini_racer.rb sig/polyracer.rbs ext/polyracer/src/lib.rs \
  ext/polyracer/Cargo.lock LICENSE; do
  [ -f "$pkg/$f" ] || { echo "missing from the gem: $f" >&2; exit 1; }
done
if grep -Eq 'workspace *= *true|path *=' "$pkg/ext/polyracer/Cargo.toml"; then
  echo "the gem's Cargo.toml depends on the workspace" >&2
  exit 1
fi
# The standalone manifest parses on its own (no workspace around it).
cargo read-manifest --manifest-path "$pkg/ext/polyracer/Cargo.toml" >/dev/null 2>&1 ||
  cargo metadata --no-deps --offline --format-version 1 --manifest-path "$pkg/ext/polyracer/Cargo.toml" >/dev/null
[ ! -e "$pkg/lib/polyracer/polyracer.so" ] || { echo "the gem ships a prebuilt .so" >&2; exit 1; }
echo "gem ok: $gem_file"

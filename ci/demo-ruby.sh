#!/usr/bin/env bash
# Builds the Ruby binding and runs the tested docs example
# (docs/examples/ruby/quickstart.rb, shown in docs/ruby.md).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
command -v ruby >/dev/null || { echo "ruby is missing: run ci/setup.sh" >&2; exit 1; }
step "Ruby binding: build"
cargo build --release --quiet -p polyracer-ruby
install -m 0755 target/release/libpolyracer_ruby.so bindings-ruby/lib/polyracer/polyracer.so
step "Ruby: docs/examples/ruby/quickstart.rb"
ruby -Ibindings-ruby/lib docs/examples/ruby/quickstart.rb

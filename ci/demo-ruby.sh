#!/usr/bin/env bash
# Builds the Ruby binding and runs the tested docs example
# (docs/examples/ruby/quickstart.rb, shown in docs/ruby.md).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$POLYRACER_ROOT"
command -v ruby >/dev/null || { echo "ruby is missing: run ci/setup.sh" >&2; exit 1; }
step "Ruby binding: build"
install -m 0755 "$(python3 ci/cargo-artifact.py polyracer-ruby cdylib --quiet)" bindings-ruby/lib/polyracer/polyracer.so
step "Ruby: docs/examples/ruby/quickstart.rb"
ruby -Ibindings-ruby/lib docs/examples/ruby/quickstart.rb

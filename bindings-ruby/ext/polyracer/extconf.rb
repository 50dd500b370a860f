# frozen_string_literal: true

# Builds the native extension when the gem is installed: rb_sys runs
# `cargo build --release` on ext/polyracer/Cargo.toml (the standalone
# manifest `rake gem` writes into the package) and installs the library as
# lib/polyracer/polyracer.so.
require "mkmf"
require "rb_sys/mkmf"

create_rust_makefile("polyracer/polyracer")

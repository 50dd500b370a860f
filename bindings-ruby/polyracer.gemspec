# frozen_string_literal: true

require_relative "lib/polyracer/version"

Gem::Specification.new do |spec|
  spec.name = "polyracer"
  spec.version = Polyracer::VERSION
  spec.authors = ["polyracer contributors"]
  spec.summary = "A V8 JavaScript engine embedded in Ruby: fast, GVL-free, sandboxed"
  spec.description = <<~DESC
    polyracer embeds V8 in Ruby through a Rust core: each context is an isolate
    on its own thread, calls release the GVL, Ruby callbacks run on the calling
    thread, and errors, timeouts and memory limits are Ruby exceptions. Includes
    a MiniRacer-compatible API (require "polyracer/mini_racer").
  DESC
  spec.homepage = "https://github.com/polyracer/polyracer"
  spec.license = "MIT"
  spec.required_ruby_version = ">= 3.1"
  spec.metadata = {
    "source_code_uri" => "https://github.com/polyracer/polyracer/tree/main/bindings-ruby",
    "rubygems_mfa_required" => "true"
  }

  spec.files = Dir.chdir(__dir__) do
    Dir["lib/**/*.rb", "sig/**/*.rbs", "ext/polyracer/{Cargo.toml,Cargo.lock,extconf.rb}",
        "ext/polyracer/src/**/*.rs", "README.md", "LICENSE"]
  end
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/polyracer/extconf.rb"]

  # rb_sys drives cargo from extconf.rb.
  spec.add_dependency "rb_sys", "~> 0.9.130"
end

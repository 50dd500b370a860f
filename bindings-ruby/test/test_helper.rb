# frozen_string_literal: true

$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "minitest/autorun"
require "polyracer"
require "rbconfig"
require "open3"

module PolyracerTestHelper
  ROOT = File.expand_path("../..", __dir__)
  LIB = File.expand_path("../lib", __dir__)

  def setup
    @contexts = []
  end

  def teardown
    @contexts.each { |c| c.dispose unless c.disposed? }
  end

  def ctx(**opts)
    c = Polyracer::Context.new(**opts)
    @contexts << c
    c
  end

  # Runs Ruby code in a fresh process with the library on the load path.
  def run_ruby(code)
    Open3.capture3(RbConfig.ruby, "-I#{LIB}", "-e", code)
  end
end

# frozen_string_literal: true

require_relative "test_helper"

# The example shown in docs/ruby.md and run by ci/demo-ruby.sh.
class TestDocs < Minitest::Test
  include PolyracerTestHelper

  EXAMPLE = File.join(PolyracerTestHelper::ROOT, "docs", "examples", "ruby", "quickstart.rb")

  def test_quickstart_example_output
    out, err, status = capture_within(RbConfig.ruby, "-I#{PolyracerTestHelper::LIB}", EXAMPLE)
    assert status.success?, err
    assert_equal <<~OUT, out
      42
      ruby bigint 2024
      hello, polyracer
      done
      RangeError: negative at check.js:1:in `check'
      timed out
    OUT
  end

  ASYNC_EXAMPLE = File.join(PolyracerTestHelper::ROOT, "docs", "examples", "ruby", "async_example.rb")

  def test_async_example_output
    assert_example_runs_and_is_shown(ASYNC_EXAMPLE, "async.md", "A2!\n")
  end

  SHARED_EXAMPLE = File.join(PolyracerTestHelper::ROOT, "docs", "examples", "ruby", "shared_buffers.rb")

  def test_shared_buffers_example_output
    assert_example_runs_and_is_shown(SHARED_EXAMPLE, "ruby.md", "255\n67108864 255\n")
  end

  # `example` prints `expected`, and docs/`page` shows it whole.
  def assert_example_runs_and_is_shown(example, page, expected)
    out, err, status = capture_within(RbConfig.ruby, "-I#{PolyracerTestHelper::LIB}", example)
    assert status.success?, err
    assert_equal expected, out
    text = File.read(File.join(PolyracerTestHelper::ROOT, "docs", page))
    assert_includes text, File.read(example), "docs/#{page} shows the tested example"
  end

  def test_docs_page_includes_the_example
    page = File.read(File.join(PolyracerTestHelper::ROOT, "docs", "ruby.md"))
    File.read(EXAMPLE).lines.grep(/ctx\./).each do |line|
      assert_includes page, line.strip, "docs/ruby.md shows the tested example"
    end
  end
end

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
    out, err, status = capture_within(RbConfig.ruby, "-I#{PolyracerTestHelper::LIB}", ASYNC_EXAMPLE)
    assert status.success?, err
    assert_equal "A2!\n", out
    page = File.read(File.join(PolyracerTestHelper::ROOT, "docs", "async.md"))
    assert_includes page, File.read(ASYNC_EXAMPLE), "docs/async.md shows the tested example"
  end

  SHARED_EXAMPLE = File.join(PolyracerTestHelper::ROOT, "docs", "examples", "ruby", "shared_buffers.rb")

  def test_shared_buffers_example_output
    out, err, status = capture_within(RbConfig.ruby, "-I#{PolyracerTestHelper::LIB}", SHARED_EXAMPLE)
    assert status.success?, err
    assert_equal "255\n67108864 255\n", out
    page = File.read(File.join(PolyracerTestHelper::ROOT, "docs", "ruby.md"))
    assert_includes page, File.read(SHARED_EXAMPLE), "docs/ruby.md shows the tested example"
  end

  def test_docs_page_includes_the_example
    page = File.read(File.join(PolyracerTestHelper::ROOT, "docs", "ruby.md"))
    File.read(EXAMPLE).lines.grep(/ctx\./).each do |line|
      assert_includes page, line.strip, "docs/ruby.md shows the tested example"
    end
  end
end

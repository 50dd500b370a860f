# frozen_string_literal: true

require_relative "test_helper"
require "polyracer/mini_racer"

# Hostile input and the option values users pick: typed errors, never an
# abort, a panic or a hang (core tests the same rules; one case each here).
class TestSafety < Minitest::Test
  include PolyracerTestHelper

  RANGE = "memory limit must be a whole number of bytes from 4194304 (4 MiB) to 1099511627776 (1 TiB)"

  def test_unaligned_memory_limits_give_working_contexts
    # 100_000_000 and 200_000_000 used to abort the process (a V8 CHECK).
    [100_000_000, 200_000_000, 123_456_789, 2e8, 4 << 20].each do |limit|
      assert_equal 3, ctx(memory_limit: limit).eval("[1, 2, 3].length"), "memory_limit: #{limit}"
    end
  end

  def test_out_of_range_memory_limits_are_invalid_arguments
    [0, 1000, -1, 2**41, 2**70, 2.5e8 + 0.5, Float::NAN, Float::INFINITY].each do |limit|
      err = assert_raises(Polyracer::InvalidArgumentError) { Polyracer::Context.new(memory_limit: limit) }
      assert_includes err.message, RANGE
    end
    err = assert_raises(Polyracer::InvalidArgumentError) { Polyracer::Context.new(memory_limit: "64M") }
    assert_includes err.message, "not String"
  end

  def test_absurd_timeouts_are_invalid_arguments
    [1e20, -1, Float::NAN, Float::INFINITY].each do |t|
      err = assert_raises(Polyracer::InvalidArgumentError) { Polyracer::Context.new(timeout: t) }
      assert_includes err.message, "timeout must be a number of seconds from 0 to 31536000"
    end
    c = ctx
    assert_raises(Polyracer::InvalidArgumentError) { c.eval("1", timeout: 1e20) }
    assert_equal 2, c.eval("2")
  end

  def test_mini_racer_max_memory_accepts_unaligned_values
    c = MiniRacer::Context.new(max_memory: 200_000_000)
    assert_equal 3, c.eval("1 + 2")
    c.dispose
  end

  def test_typed_arrays_count_against_the_memory_limit
    c = ctx(memory_limit: 64 << 20, timeout: 10)
    got = c.eval("const a = []; try { for (let i = 0; i < 60; i++) a.push(new Uint8Array(64 << 20).fill(1)) } " \
                 "catch (e) { e.name + ': ' + e.message }")
    assert_equal "RangeError: Array buffer allocation failed", got
    err = assert_raises(Polyracer::ConversionError) { c.call("(b) => b.length", ("\0" * (80 << 20)).b) }
    assert_includes err.message, "do not fit in the context's memory limit"
    assert_equal 1 << 20, c.call("(b) => b.length", ("\1" * (1 << 20)).b)
  end

  def test_a_timeout_during_result_conversion_is_a_timeout
    c = ctx
    assert_raises(Polyracer::TimeoutError) { c.eval("({get x() { for (;;) {} }})", timeout: 0.1) }
    assert_equal 2, c.eval("1 + 1")
  end

  def test_invalid_dates_are_conversion_errors
    err = assert_raises(Polyracer::ConversionError) { ctx.eval("[new Date(NaN)]") }
    assert_includes err.message, "invalid Date (its time value is NaN) at $[0]"
  end

  def test_hostile_js_gives_values_or_typed_errors
    c = ctx(timeout: 10)
    assert_equal "scheduled", c.eval("setTimeout(() => {}, 1e300); 'scheduled'")
    assert_equal "RangeError", c.eval("function f() { return f() } try { f() } catch (e) { e.name }")
    assert_equal (2**29) - 24, c.eval("'x'.repeat(2 ** 29 - 24).length")
    assert_equal "still usable", c.eval("'still usable'")
  end
end

# frozen_string_literal: true

require_relative "test_helper"
require "json"

# Runs the language-neutral cases in ../../conformance/cases.
class TestConformance < Minitest::Test
  include PolyracerTestHelper

  CONFORMANCE = File.join(PolyracerTestHelper::ROOT, "conformance")
  CASES = Dir[File.join(CONFORMANCE, "cases", "*.json")].sort.flat_map { |f| JSON.parse(File.read(f)) }
  # The one pinned count every runner checks (conformance/README.md).
  PINNED_COUNT = JSON.parse(File.read(File.join(CONFORMANCE, "count.json"))).fetch("count")
  # Test method names made from case names: two cases that map to one name
  # would silently run once, so the count test checks these are distinct.
  METHODS = CASES.map { |c| "test_#{c["name"].gsub(/[^a-z0-9]+/i, "_")}" }

  ERRORS = {
    "ParseError" => Polyracer::ParseError,
    "JSError" => Polyracer::JSError,
    "Timeout" => Polyracer::TimeoutError,
    "Terminated" => Polyracer::TerminatedError,
    "OutOfMemory" => Polyracer::OutOfMemoryError,
    "Conversion" => Polyracer::ConversionError,
    "Disposed" => Polyracer::DisposedError,
    "InvalidArgument" => Polyracer::InvalidArgumentError
  }.freeze

  HANDLES = {
    "function" => Polyracer::JSFunction,
    "promise" => Polyracer::JSPromise,
    "symbol" => Polyracer::JSObject,
    "object" => Polyracer::JSObject,
    "array" => Polyracer::JSObject
  }.freeze

  # Expected-value encoding → the Ruby value the binding produces.
  def self.decode(v)
    case v
    when Array then v.map { |x| decode(x) }
    when Hash
      if v.size == 1 && v.keys.first.start_with?("$")
        tag, x = v.first
        case tag
        when "$undefined" then Polyracer::UNDEFINED
        when "$float" then { "NaN" => Float::NAN, "Infinity" => Float::INFINITY, "-Infinity" => -Float::INFINITY, "-0" => -0.0 }.fetch(x)
        when "$bigint" then Integer(x)
        when "$date" then Time.at(Rational(x, 1000)).utc
        when "$bytes" then x.pack("C*")
        when "$map" then x.to_h { |k, val| [decode(k), decode(val)] }
        when "$set" then Set.new(x.map { |e| decode(e) })
        when "$handle", "$error" then nil
        else raise ArgumentError, tag
        end
      else
        v.transform_values { |x| decode(x) }
      end
    else v
    end
  end

  # Full equality: same classes, and the same order for arrays, object keys,
  # Map entries and Set members (a Ruby Hash and Set keep insertion order).
  def same?(got, want, spec)
    if spec.is_a?(Hash) && spec.size == 1 && spec.keys.first.start_with?("$")
      tag, x = spec.first
      case tag
      when "$handle" then return got.is_a?(HANDLES.fetch(x)) && got.kind == x.to_sym
      when "$error" then return got.is_a?(Polyracer::JSError) && [got.js_name, got.message] == [x["name"], x["message"]]
      when "$float"
        return got.is_a?(Float) && (x == "NaN" ? got.nan? : got == want && (1 / got).positive? == (1 / want).positive?)
      when "$bytes" then return got.is_a?(String) && got.encoding == Encoding::BINARY && got == want
      when "$map"
        return got.is_a?(Hash) && got.size == x.size &&
               got.to_a.zip(x).all? { |(k, v), (ks, vs)| same?(k, self.class.decode(ks), ks) && same?(v, self.class.decode(vs), vs) }
      when "$set"
        return got.is_a?(Set) && got.size == x.size &&
               got.to_a.zip(x).all? { |g, s| same?(g, self.class.decode(s), s) }
      when "$date" then return got.is_a?(Time) && got == want
      when "$undefined" then return got.nil?
      when "$bigint" then return got.is_a?(Integer) && got == want
      end
    end
    case spec
    when Array then got.is_a?(Array) && got.size == spec.size && got.zip(want, spec).all? { |g, w, s| same?(g, w, s) }
    when Hash then got.is_a?(Hash) && got.keys == spec.keys && spec.keys.all? { |k| same?(got[k], want[k], spec[k]) }
    when Float then got.is_a?(Float) && got == want
    when Integer then got.is_a?(Integer) && got == want
    else got.class == want.class && got == want
    end
  end

  def test_all_cases_found
    assert_equal METHODS.size, METHODS.uniq.size, "two cases give the same test name"
    assert_equal PINNED_COUNT, CASES.size, "conformance/cases holds #{CASES.size} cases; count.json says #{PINNED_COUNT}"
  end

  def check_error(err, expect)
    assert expect.key?("error"), "expected the value #{expect["value"].inspect}, got #{err.inspect}"
    # The exact class: a subclass (say ParseError for JSError) is another kind.
    assert_instance_of ERRORS.fetch(expect["error"]), err
    assert_equal expect["name"], err.js_name if expect.key?("name")
    assert_equal expect["message"], err.message if expect.key?("message")
    assert_includes err.message, expect["message_contains"] if expect.key?("message_contains")
  end

  CASES.zip(METHODS).each do |c, method|
    define_method(method) do
      t = c["timeout_ms"]
      expect = c["expect"]
      begin
        context = ctx(timeout: t && t / 1000.0, memory_limit: c["memory_limit"])
      rescue Polyracer::Error => e
        # A context that cannot be created is the case's outcome.
        next check_error(e, expect)
      end
      context.eval(c["setup"]) if c["setup"]
      wait = c["await"]
      run = lambda do
        if c.key?("call")
          args = c["args"].map { |a| self.class.decode(a) }
          wait ? context.call_await(c["call"], *args) : context.call(c["call"], *args)
        else
          wait ? context.eval_await(c["source"]) : context.eval(c["source"])
        end
      end
      begin
        got = run.call
      rescue Polyracer::Error => e
        next check_error(e, expect)
      end
      refute expect.key?("error"), "expected #{expect["error"]}, got the value #{got.inspect}"
      want = self.class.decode(expect["value"])
      assert same?(got, want, expect["value"]), "#{got.inspect} vs #{expect["value"].inspect}"
    end
  end
end

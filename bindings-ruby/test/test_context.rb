# frozen_string_literal: true

require_relative "test_helper"
require "tmpdir"
require "json"

class TestContext < Minitest::Test
  include PolyracerTestHelper

  def test_version_constants
    assert_match(/\A\d+\.\d+\.\d+/, Polyracer::V8_VERSION)
    assert_kind_of Integer, Polyracer::CACHED_DATA_VERSION_TAG
    assert_equal "0.1.0", Polyracer::VERSION
  end

  def test_eval_keeps_state_and_filename
    c = ctx
    c.eval("var adder = (a, b) => a + b")
    assert_equal 42, c.eval("adder(20, 22)")
    err = assert_raises(Polyracer::JSError) { c.eval("(function boom() { throw new Error('x') })()", filename: "app.js") }
    assert_equal "app.js:1:in `boom'", err.backtrace.first
    assert_equal "app.js", err.filename
    assert_equal 1, err.line
  end

  def test_values_from_js
    c = ctx
    assert_nil c.eval("undefined")
    assert_nil c.eval("null")
    assert_equal true, c.eval("true")
    assert_equal 2**70, c.eval("2n ** 70n")
    assert_equal(-5, c.eval("-5n"))
    assert_equal 9_007_199_254_740_992.0, c.eval("2 ** 53")
    assert_equal "héllo 🌍", c.eval("'héllo 🌍'")
    assert_equal Encoding::UTF_8, c.eval("'x'").encoding
    bytes = c.eval("new Uint8Array([0, 255, 7])")
    assert_equal Encoding::BINARY, bytes.encoding
    assert_equal "\x00\xFF\x07".b, bytes
    t = c.eval("new Date(Date.UTC(2020, 0, 2, 3, 4, 5, 678))")
    assert_kind_of Time, t
    assert t.utc?
    assert_equal Time.utc(2020, 1, 2, 3, 4, 5.678r), t
    assert_equal({ 1 => "a", "k" => [1] }, c.eval("new Map([[1, 'a'], ['k', [1]]])"))
    assert_equal Set[1, "x"], c.eval("new Set([1, 'x'])")
    assert_equal({ "b" => 1, "a" => { "c" => [nil] } }, c.eval("({b: 1, a: {c: [null]}})"))
    assert_equal %w[b a], c.eval("({b: 1, a: 2})").keys
    err = c.eval("new RangeError('r')")
    assert_instance_of Polyracer::JSError, err
    assert_equal "RangeError", err.js_name
    assert_equal "r", err.message
  end

  # From 32 MiB up, bytes are copied into memory first advised for huge
  # pages and prefaulted (and, going in, maybe a buffer V8 freed before):
  # every byte must still land where it was. The pattern's period, 251,
  # does not divide 4096, so a misplaced page would not match.
  def test_large_bytes_cross_whole_both_ways
    c = ctx
    n = (33 << 20) + 4099
    expect = ((0...251).to_a.pack("C*") * ((n / 251) + 1)).byteslice(0, n)
    fill = "(n) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = i % 251; return b }"
    out = c.call(fill, n)
    assert_equal Encoding::BINARY, out.encoding
    assert_equal expect, out
    same = c.eval("(x, n) => { const e = (#{fill})(n); return x.length === n && x.every((v, i) => v === e[i]) }")
    3.times { assert_equal true, same.call(expect, n) }
  end

  # Ruby turns transparent huge pages off, so a large String's memory is
  # new small pages: after a pause (time for core to fault in the next
  # copy's pages on a thread of its own), they are copied into pages made
  # ahead and moved under the String. Those Strings must behave as any
  # other: their bytes exact, and growing, shrinking, freezing, hashing
  # and collecting them must keep every byte and crash nothing.
  def test_large_strings_out_after_a_pause_are_ordinary_strings
    c = ctx
    fill = "(n, k) => { const b = new Uint8Array(n); for (let i = 0; i < n; i++) b[i] = (i + k) % 251; return b }"
    pattern = (0...502).map { |i| i % 251 }.pack("C*")
    n = (40 << 20) + 4099
    4.times do |k|
      expect = (pattern.byteslice(k, 251) * ((n / 251) + 1)).byteslice(0, n)
      out = c.call(fill, n, k)
      assert_equal expect, out
      key = { out => k }.keys.first
      assert_equal [true, expect], [key.frozen?, key]
      out << "tail"
      assert_equal expect, out.byteslice(0, n)
      out.slice!(0, n - 10)
      assert_equal expect.byteslice(n - 10, 10) + "tail", out
      out = key = nil
      GC.start(full_mark: true, immediate_sweep: true)
      sleep 0.2
    end
  end

  # `share_buffers: true`: byte buffers come as IO::Buffers over the
  # sandbox's memory (views of it, not copies), locked so Ruby can neither
  # free nor move the memory, and alive while any view of it is.
  def test_shared_buffers_are_locked_views_that_outlive_the_context
    c = ctx
    c.eval("globalThis.big = new Uint8Array(64 << 20).fill(9); globalThis.small = new Uint8Array([1, 2, 3, 4, 5])")
    assert_equal "\x01\x02\x03\x04\x05".b, c.eval("small"), "copies unless asked"
    view = c.eval("small.subarray(1, 4)", share_buffers: true)
    assert_kind_of IO::Buffer, view
    assert_equal [3, true, true], [view.size, view.locked?, view.external?]
    assert_equal "\x02\x03\x04".b, view.get_string
    view.set_value(:U8, 0, 200)
    assert_equal 200, c.eval("small[1]"), "a Ruby write shows in JS"
    c.eval("small[3] = 77")
    assert_equal 77, view.get_value(:U8, 2), "a JS write shows in Ruby"
    nested = c.eval("[small.buffer, { d: new DataView(small.buffer, 2, 2) }, new ArrayBuffer(2, { maxByteLength: 8 })]",
                    share_buffers: true)
    assert_equal [IO::Buffer, Hash, String], nested.map(&:class), "resizable buffers are copied"
    assert_equal [5, 2], [nested[0].size, nested[1]["d"].size]
    %i[free transfer].each { |m| assert_raises(IO::Buffer::LockedError) { view.public_send(m) } }
    assert_raises(IO::Buffer::LockedError) { view.resize(1) }
    assert_raises(IO::Buffer::LockedError) { view.locked { nil } }

    # A slice keeps the memory alive after the buffer, the JS value and
    # the context are gone: 64 MiB goes back to the kernel when freed, so
    # reading freed memory here would fault.
    tail = c.eval("big", share_buffers: true).slice((64 << 20) - 4, 4)
    c.eval("big = null")
    c.low_memory_notification
    c.dispose
    view = nested = nil
    3.times { GC.start(full_mark: true, immediate_sweep: true) }
    assert_equal "\x09\x09\x09\x09".b, tail.get_string
    tail.set_value(:U8, 3, 1)
    assert_equal 1, tail.get_value(:U8, 3)
  end

  def test_values_to_js_round_trip
    c = ctx
    echo = ->(v) { c.call("(v) => v", v) }
    assert_nil echo.call(nil)
    [true, false, 0, -1, 2**53 - 1, 1.5, "héllo", [1, [2, [3]]], { "a" => { "b" => [1, "x"] } }].each do |v|
      assert_equal v, echo.call(v), v.inspect
    end
    assert_equal 2**64, echo.call(2**64)
    assert_equal "bigint", c.call("(v) => typeof v", 2**53)
    assert_equal "number", c.call("(v) => typeof v", 2**53 - 1)
    assert_equal "bigint", c.call("(v) => typeof v", -(2**100))
    assert_equal(-(2**100), echo.call(-(2**100)))
    assert_equal "string", c.call("(v) => typeof v", :sym)
    assert_equal({ "a" => 1, "b" => 2 }, echo.call({ a: 1, "b" => 2 }))
    assert_equal true, c.call("(v) => v instanceof Uint8Array && v.length === 3", "\x01\x02\x03".b)
    assert_equal true, c.call("(v) => typeof v === 'string'", "abc")
    t = Time.at(1_600_000_000, 123, :millisecond)
    assert_equal true, c.call("(d) => d instanceof Date && d.getTime() === 1600000000123", t)
    assert_equal t, echo.call(t)
    assert_equal true, c.call("(s) => s instanceof Set && s.has(2)", Set[1, 2])
    assert_equal true, c.call("(m) => m instanceof Map && m.get(1) === 'x'", { 1 => "x" })
    assert_equal "é", c.call("(s) => s", "\xE9".encode(Encoding::ISO_8859_1, Encoding::ISO_8859_1).force_encoding(Encoding::ISO_8859_1))
  end

  def test_call_targets
    c = ctx
    assert_equal "[1,2]", c.call("JSON.stringify", [1, 2])
    assert_equal 5, c.call("(a, b) => a + b", 2, 3)
    c.eval("var math = { sq: (x) => x * x }")
    assert_equal 9, c.call(:"math.sq", 3)
    f = c.eval("(x) => x + 1")
    assert_instance_of Polyracer::JSFunction, f
    assert_equal 2, c.call(f, 1)
    assert_equal 2, f.call(1)
    assert_equal [1, 2], [0, 1].map(&f)
    assert_match(/call needs a JSFunction/, assert_raises(TypeError) { c.call(42) }.message)
    assert_match(/call needs a function/, assert_raises(ArgumentError) { c.call }.message)
  end

  def test_set_global
    c = ctx
    assert_equal({ x: 1 }, c.set_global("config", { x: 1 }))
    assert_equal 1, c.eval("config.x")
    c.set_global(:"odd name", 2)
    assert_equal 2, c.eval("globalThis['odd name']")
  end

  def test_attach_proc_method_block_and_nesting
    c = ctx
    c.attach("add", ->(a, b) { a + b })
    assert_equal 5, c.eval("add(2, 3)")
    c.attach("math.up", "x".method(:upcase).unbind.bind("abc"))
    assert_equal "ABC", c.eval("math.up()")
    c.attach("twice") { |x| x * 2 }
    assert_equal 8, c.eval("twice(4)")
    c.attach("rb_fib", lambda { |n|
      n < 2 ? n : c.eval("js_fib(#{n - 1})") + c.eval("js_fib(#{n - 2})")
    })
    c.eval("function js_fib(n) { return n < 2 ? n : rb_fib(n - 1) + rb_fib(n - 2) }")
    assert_equal 55, c.eval("js_fib(10)")
    # A callback gets JS values converted, functions as handles it can call.
    c.attach("apply", ->(f, x) { f.call(x) })
    assert_equal 10, c.eval("apply((v) => v * 10, 1)")
    seen = nil
    c.attach("probe", ->(*args) { seen = Thread.current; args.size })
    assert_equal 3, c.eval("probe(1, 2, 3)")
    assert_same Thread.current, seen
    assert_match(/attach needs a callable/, assert_raises(TypeError) { c.attach("x", 42) }.message)
    assert_match(/attach needs a callable or a block/, assert_raises(ArgumentError) { c.attach("x") }.message)
  end

  def test_callback_exceptions_become_js_errors_and_the_cause
    c = ctx
    c.attach("fail", ->(msg) { raise KeyError, msg })
    assert_equal "caught: nope", c.eval("try { fail('nope') } catch (e) { 'caught: ' + e.message }")
    err = assert_raises(Polyracer::JSError) { c.eval("fail('uncaught')") }
    assert_equal "uncaught", err.message
    assert_instance_of KeyError, err.cause
    assert_equal "uncaught", err.cause.message
    c.attach("typed", ->(_) { raise ArgumentError, "bad arg" })
    assert_equal "TypeError", c.eval("try { typed(1) } catch (e) { e.name }")
    c.attach("unconvertible", -> { Object.new })
    err = assert_raises(Polyracer::JSError) { c.eval("unconvertible()") }
    assert_instance_of Polyracer::ConversionError, err.cause
  end

  def test_eval_await_and_promises
    c = ctx
    assert_equal 3, c.eval_await("new Promise((r) => setTimeout(() => r(3), 10))")
    assert_equal 7, c.eval_await("7")
    c.eval("async function later(x) { await null; return x * 2 }")
    assert_equal 8, c.call_await("later", 4)
    p = c.eval("Promise.resolve(5)")
    assert_instance_of Polyracer::JSPromise, p
    assert_equal :fulfilled, p.state
    assert_equal 5, p.value
    pending = c.eval("new Promise(() => {})")
    assert_equal :pending, pending.state
    err = assert_raises(Polyracer::JSError) { c.eval_await("Promise.reject(new TypeError('no'))") }
    assert_equal "TypeError", err.js_name
    assert_raises(Polyracer::TimeoutError) do
      c.eval_await("new Promise((r) => setTimeout(r, 5000))", timeout: 0.1)
    end
  end

  def test_handles
    c = ctx
    ns = c.eval_module("export const a = 1; export function f(x) { return x + 1 }", filename: "m.js") { raise "no imports" }
    assert_instance_of Polyracer::JSObject, ns
    assert_equal :object, ns.kind
    assert_equal %w[a f], ns.keys.sort
    assert ns.key?(:a)
    assert_equal 1, ns[:a]
    assert_equal 3, ns["f"].call(2)
    f = c.eval("(function F(x) { this.x = x })")
    assert_equal :function, f.kind
    made = f.new(4)
    assert_instance_of Polyracer::JSObject, made
    assert_equal 4, made["x"]
    made["y"] = [1]
    assert_equal({ "x" => 4, "y" => [1] }, made.to_ruby)
    assert made.delete(:y)
    assert_equal ["x"], made.keys
    assert_equal 1, f.length
    assert_same c, f.context
    obj = c.eval("globalThis.o = { n: 1, inc() { return ++this.n } }; o")
    assert_kind_of Hash, obj # plain objects are copied
    p = c.eval("Promise.resolve({ k: 1 })")
    assert_equal({ "k" => 1 }, p.await)
    assert p.same?(p)
    refute p.same?(c.eval("Promise.resolve(1)"))
    sym = c.eval("Symbol('tag')")
    assert_equal :symbol, sym.kind
    assert_equal "tag", sym.to_js_string
  end

  def test_handle_object_access
    c = ctx
    counter_class = c.eval("(class Counter { constructor(n) { this.n = n } inc(by) { return this.n += by } })")
    counter = counter_class.new(1)
    assert_instance_of Polyracer::JSObject, counter
    assert_equal 3, counter.call_method(:inc, 2), "runs in JS with this = the object"
    assert_equal 3, counter[:n]
    counter[:n] = 10
    assert_equal 11, counter.call_method("inc", 1)
    assert_equal({ "n" => 11 }, counter.to_ruby)
    assert_equal 11, c.call("(o) => o.n", counter), "a handle passed back is the same JS object"
    list = c.eval("Array").new(1, 2, 3)
    assert_equal :array, list.kind
    assert_equal 3, list.length
    assert_equal 2, list[1]
    assert_equal [1, 2, 3], list.to_ruby
    assert_raises(Polyracer::InvalidArgumentError) { counter.call_method(:missing) }
  end

  def test_eval_module_with_resolver
    c = ctx
    sources = {
      "lib/b.js" => "export const b = 'B'",
      "lib/c.js" => "export default 'C'"
    }
    seen = []
    ns = c.eval_module(<<~JS, filename: "lib/a.js") { |spec, ref| seen << [spec, ref]; sources.fetch(Polyracer.resolve_specifier(spec, ref)) }
      import { b } from './b.js';
      const c = (await import('./c.js')).default;
      export const out = b + c + import.meta.url;
    JS
    assert_equal "BClib/a.js", ns[:out]
    assert_includes seen, ["./b.js", "lib/a.js"]
    assert_equal "lib/x/y.js", Polyracer.resolve_specifier("../x/y.js", "lib/z/a.js")
    err = assert_raises(Polyracer::JSError) do
      c.eval_module("import './missing.js'", filename: "x.js") { |spec, _| raise KeyError, spec }
    end
    assert_instance_of KeyError, err.cause
  end

  def test_terminate_from_another_thread
    c = ctx
    # terminate stops only the JS running at that moment (it is not
    # remembered for the next call), so one call made before the eval starts
    # would be lost on a loaded machine: keep calling it until the eval has
    # returned. The eval's 30 s timeout turns a regression into a
    # TimeoutError failure instead of a hang.
    terminating(c) do
      assert_raises(Polyracer::TerminatedError) { c.eval("while (true) {}", timeout: 30) }
    end
    assert_equal 2, c.eval("1 + 1"), "usable after terminate"
    c.terminate # nothing running: no effect
    assert_equal 3, c.eval("1 + 2")
  end

  def test_timeouts
    c = ctx(timeout: 0.2)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_raises(Polyracer::TimeoutError) { c.eval("for (;;) {}") }
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 5
    assert_equal 1, c.eval("1")
    assert_raises(Polyracer::TimeoutError) { c.eval("for (;;) {}", timeout: 0.05) }
    err = assert_raises(Polyracer::InvalidArgumentError) { c.eval("1", timeout: -1) }
    assert_includes err.message, "timeout must be a number of seconds from 0 to 31536000, not -1"
    err = assert_raises(Polyracer::InvalidArgumentError) { Polyracer::Context.new(timeout: "soon") }
    assert_includes err.message, "timeout must be a number of seconds or nil"
  end

  def test_heap_and_memory
    c = ctx
    stats = c.heap_stats
    %i[total_heap_size used_heap_size heap_size_limit number_of_native_contexts].each do |k|
      assert_kind_of Integer, stats.fetch(k)
    end
    assert_operator stats[:used_heap_size], :>, 0
    c.eval("globalThis.junk = new Array(1e6).fill(0).map((_, i) => ({ i }))")
    before = c.heap_stats[:used_heap_size]
    c.eval("delete globalThis.junk")
    c.low_memory_notification
    assert_operator c.heap_stats[:used_heap_size], :<, before
    Dir.mktmpdir do |dir|
      path = File.join(dir, "h.heapsnapshot")
      c.write_heap_snapshot(path)
      assert JSON.parse(File.read(path)).key?("snapshot")
    end
  end

  def test_compile_and_code_cache
    c = ctx
    src = "function sq(x) { return x * x }; sq(7)"
    s = c.compile(src, filename: "sq.js", produce_cache: true)
    assert_instance_of Polyracer::Script, s
    assert_equal 49, s.run
    assert_equal 49, s.run
    cache = s.cached_data
    assert_equal Encoding::BINARY, cache.encoding
    refute s.cache_rejected?
    c2 = ctx
    s2 = c2.compile(src, filename: "sq.js", cached_data: cache)
    refute s2.cache_rejected?
    assert_equal 49, s2.run
    bad = c2.compile(src, filename: "sq.js", cached_data: "garbage".b)
    assert bad.cache_rejected?
    assert_equal 49, bad.run
    assert_raises(Polyracer::TimeoutError) { c.compile("for(;;){}", filename: "l.js").run(timeout: 0.05) }
    s.dispose
    assert_raises(Polyracer::DisposedError) { s.run }
    assert_raises(Polyracer::ParseError) { c.compile("function (", filename: "bad.js") }
  end

  def test_snapshots
    snap = Polyracer::Snapshot.new("var greeting = 'hi'; function hello(n) { return greeting + ' ' + n }")
    assert_same snap, snap.warmup!("hello('warm')")
    c = ctx(snapshot: snap)
    assert_equal "hi you", c.eval("hello('you')")
    bytes = snap.dump
    assert_equal Encoding::BINARY, bytes.encoding
    loaded = Polyracer::Snapshot.load(bytes)
    assert_equal "hi again", ctx(snapshot: loaded).call("hello", "again")
    assert_raises(Polyracer::InvalidArgumentError) { Polyracer::Snapshot.load("not a snapshot".b) }
    assert_raises(Polyracer::JSError) { Polyracer::Snapshot.new("throw new Error('no')") }
  end

  def test_dispose
    c = Polyracer::Context.new
    refute c.disposed?
    f = c.eval("() => 1")
    c.dispose
    c.dispose
    assert c.disposed?
    assert_raises(Polyracer::DisposedError) { c.eval("1") }
    assert_raises(Polyracer::DisposedError) { f.call }
    assert_match(/disposed/, c.inspect)
  end

  def test_configure_after_start_is_refused
    ctx.eval("1")
    err = assert_raises(Polyracer::InvalidArgumentError) { Polyracer.configure(flags: ["--harmony"]) }
    assert_match(/--harmony/, err.message)
    assert Polyracer.engine_started?
  end

  def test_js_frames_in_backtrace
    c = ctx
    err = assert_raises(Polyracer::JSError) do
      c.eval("function inner() { throw new Error('deep') }\nfunction outer() { inner() }\nouter()", filename: "lib.js")
    end
    assert_equal ["lib.js:1:in `inner'", "lib.js:2:in `outer'", "lib.js:3:in `<js>'"], err.backtrace.first(3)
    assert(err.backtrace.any? { |l| l.include?("test_context.rb") }, "Ruby frames follow")
    assert_match(/at inner/, err.js_stack)
  end

  # Plain data is decoded in one pass; an Error, an object seen twice or
  # a sparse array met partway makes the sink start over with the walk:
  # nothing built before may remain, and key strings are given anew.
  def test_a_result_the_fast_path_gives_up_on_partway_comes_out_whole
    c = ctx
    got = c.eval("const s = { n: 1 }; " \
                 "[{ a: 'x'.repeat(20), k: 1 }, 'long string number 1', new Uint8Array([1, 2]), s, s]")
    assert_equal [{ "a" => "x" * 20, "k" => 1 }, "long string number 1", "\x01\x02".b, { "n" => 1 }, { "n" => 1 }], got
    a, b, e = c.eval("[{ a: 1, b: 'two' }, { b: 'four', a: 3 }, new RangeError('r')]")
    assert_equal [{ "a" => 1, "b" => "two" }, { "b" => "four", "a" => 3 }], [a, b]
    assert_equal %w[b a], b.keys
    assert_kind_of Polyracer::JSError, e
    sparse = c.eval("[['aaaaaaaaaaaaaaaaaaaa', 'b'], (() => { const a = [1]; a[5000] = 2; return a })()]")
    assert_equal ["aaaaaaaaaaaaaaaaaaaa", "b"], sparse[0]
    assert_equal [5001, 1, nil, 2], [sparse[1].size, sparse[1][0], sparse[1][1], sparse[1][5000]]
    keyed = c.eval("({ k1: 1, k2: [1, 2], k3: new Map([[1, 'x']]), e: new Error('z'), k4: { k2: 'again' } })")
    assert_equal %w[k1 k2 k3 e k4], keyed.keys
    assert_equal [1, [1, 2], { 1 => "x" }, { "k2" => "again" }], keyed.values_at("k1", "k2", "k3", "k4")
  end

  def test_large_values_cross_whole_both_ways
    c = ctx
    records = Array.new(3000) { |i| { "id" => i, "name" => (i % 7).zero? ? "caf\u00e9 \u{1F30D} #{i}" : "item #{i}", "tags" => %w[a b], "score" => i * 1.5 } }
    value = { "records" => records, "numbers" => Array.new(5000) { |i| i * 1.25 }, "set" => Set["s"] }
    same = c.eval("(x) => x")
    assert_equal value, same.call(value)
    # Built in JS and copied out: equal to JSON's round trip there.
    c.eval("globalThis.made = Array.from({ length: 4000 }, (_, i) => ({ k: i, s: 'v' + i, n: [i / 2] }))")
    made = c.eval("made")
    assert_equal JSON.parse(c.eval("JSON.stringify(made)")), made
    # One frozen String per distinct key, shared by every record.
    assert made[0].keys.first.frozen?
    assert_same made[0].keys.first, made[1].keys.first
    # Bytes once each way, GC running meanwhile.
    data = ((0..255).map(&:chr).join.b * 4096)
    GC.stress = true
    begin
      assert_equal data, same.call(data)
      assert_equal [{ "a" => [1, "x"] }] * 50, c.eval("Array.from({ length: 50 }, () => ({ a: [1, 'x'] }))")
      # Containers filled in place, a Map's container keys (hashed once
      # complete), Sets made at their end: each survives GC meanwhile.
      nested = c.eval(<<~JS)
        new Map([[[1, 'k'], { v: [new Set(['s', [2]]), { deep: ['x'] }] }], ['m', new Map([[{ a: 1 }, 'z']])]])
      JS
      assert_equal({ [1, "k"] => { "v" => [Set["s", [2]], { "deep" => ["x"] }] }, "m" => { { "a" => 1 } => "z" } }, nested)
      assert_equal "z", nested["m"][{ "a" => 1 }]
      # An array's strings are made in batches held on the stack before
      # they go in the Array (to_ruby.rs): three batches and a part, with
      # non-ASCII ones among them, each String intact after a GC at every
      # allocation.
      strings = c.eval("Array.from({ length: 400 }, (_, i) => i % 9 ? 'item ' + i : 'caf\\u00e9 ' + i)")
      assert_equal Array.new(400) { |i| (i % 9).zero? ? "caf\u00e9 #{i}" : "item #{i}" }, strings
    ensure
      GC.stress = false
    end
  end

  def test_large_results_do_not_grow_the_heap
    c = ctx
    c.eval("globalThis.rows = Array.from({ length: 20000 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] }))")
    5.times { c.eval("rows") }
    before = GC.stat(:heap_allocated_pages)
    # Dropped results are garbage the GC reclaims while the next is built;
    # with GC paused during the build, each call took fresh pages (20 calls
    # grew the heap ~4x).
    20.times { c.eval("rows") }
    assert_operator GC.stat(:heap_allocated_pages), :<, before * 1.5
  end

  def test_iterators_and_weak_collections_are_handles_with_previews
    c = ctx
    it = c.eval("const m = new Map([['a', 1], ['b', 2]]); const it = m.entries(); it.next(); it")
    assert_instance_of Polyracer::JSObject, it
    # From the iterator's position, without consuming it.
    assert_equal [["b", 2], true], it.preview_entries
    assert_equal [["b", 2], true], it.preview_entries
    assert_equal [[1, 2], false], c.eval("new Set([1, 2]).values()").preview_entries
    weak = c.eval("globalThis.k = {}; new WeakSet([k])")
    assert_equal [[{}], false], weak.preview_entries
    assert_raises(Polyracer::InvalidArgumentError) { c.eval("new Proxy({}, {})").preview_entries }
  end

  def test_a_throwing_getter_raises_its_exception
    err = assert_raises(Polyracer::JSError) { ctx.eval("({ get x() { throw new RangeError('no') } })") }
    assert_equal "RangeError", err.js_name
    assert_equal "no", err.message
  end

  def test_tasks_and_microtasks_on_demand
    c = ctx
    assert_equal false, c.run_pending_tasks
    seen = []
    c.attach("note", ->(s) { seen << s })
    c.attach("drain", -> { c.perform_microtask_checkpoint })
    c.eval("Promise.resolve().then(() => note('micro')); note('before'); drain(); note('after')")
    assert_equal %w[before micro after], seen
    c.eval("globalThis.done = false; Atomics.waitAsync(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5)" \
           ".value.then(() => { done = true })")
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
    c.run_pending_tasks until c.eval("done") || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    assert c.eval("done")
  end

  def test_gc_heap_limit_any_size
    c = ctx(gc_heap_limit: 100_000)
    c.attach("gc", -> { c.low_memory_notification })
    assert_raises(Polyracer::OutOfMemoryError) { c.eval("gc(); 1") }
    assert_equal 2, c.eval("1 + 1")
    [0, -1, 2**41].each do |bad|
      assert_raises(Polyracer::InvalidArgumentError) { Polyracer::Context.new(gc_heap_limit: bad) }
    end
  end

  def test_lone_surrogates_kept_when_asked
    assert_equal "a\uFFFDb", ctx.eval("'a\\uD800b'")
    kept = ctx(keep_lone_surrogates: true)
    s = kept.eval("'a\\uD800b'")
    assert_equal Encoding::UTF_16LE, s.encoding
    assert_equal "a\x00\x00\xD8b\x00".b, s.b
    assert_equal [s], kept.eval("['a\\uD800b']")
    assert_equal Encoding::UTF_8, kept.eval("'ok'").encoding
  end

  def test_the_same_ruby_object_twice_is_one_js_object
    c = ctx
    h = { "n" => 1 }
    c.attach("pair", -> { [h, h] })
    assert_equal true, c.eval("const p = pair(); p[0] === p[1]")
    assert_equal true, c.call("(a) => a[0] === a[1]", [h, h])
    # Cycles are still refused, with the path.
    a = []
    a << a
    assert_raises(Polyracer::ConversionError) { c.call("(x) => x", a) }
  end
end

# frozen_string_literal: true

require_relative "test_helper"
require "polyracer/mini_racer"
require "stringio"
require "tmpdir"

# The MiniRacer compatibility layer, following MiniRacer's documented examples.
class TestMiniRacer < Minitest::Test
  def setup
    @ctx = MiniRacer::Context.new
  end

  def teardown
    @ctx.dispose
  end

  def test_eval_and_call
    @ctx.eval("var adder = (a, b) => a + b;")
    assert_equal 42, @ctx.eval("adder(20, 22)")
    assert_equal 42, @ctx.call("adder", 20, 22)
    assert_equal 3, @ctx.eval("x = 3", filename: "f.js")
  end

  def test_attach
    @ctx.attach("math.adder", proc { |a, b| a + b })
    assert_equal 42, @ctx.eval("math.adder(20, 22)")
    @ctx.attach("array_and_hash", proc { { a: 1, b: [1, { a: 1 }] } })
    assert_equal({ "a" => 1, "b" => [1, { "a" => 1 }] }, @ctx.eval("array_and_hash()"))
    @ctx.attach("bin", proc { MiniRacer::Binary.new("\x01\x02") })
    assert_equal true, @ctx.eval("bin() instanceof Uint8Array")
  end

  def test_functions
    f = @ctx.eval("(a) => a * 2")
    assert_instance_of MiniRacer::JavaScriptFunction, f
    assert_equal "JavaScript Function", f.to_s
    assert_equal 8, f.call(4)
  end

  def test_timeout_in_milliseconds_and_stop
    c = MiniRacer::Context.new(timeout: 100)
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    err = assert_raises(MiniRacer::ScriptTerminatedError) { c.eval("while (true) {}") }
    assert_instance_of Polyracer::TimeoutError, err.cause
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 2
    c.dispose
    # stop only stops the JS running at that moment (an early call is not
    # remembered), so keep calling it until the eval has returned; the
    # context's 30 s timeout bounds a regression instead of hanging.
    bounded = MiniRacer::Context.new(timeout: 30_000)
    stopped = false
    t = Thread.new do
      until stopped
        bounded.stop
        sleep 0.01
      end
    end
    err = assert_raises(MiniRacer::ScriptTerminatedError) { bounded.eval("while (true) {}") }
    # A timeout is a ScriptTerminatedError too; the cause tells them apart.
    assert_instance_of Polyracer::TerminatedError, err.cause
  ensure
    stopped = true
    t&.join
    bounded&.dispose
  end

  def test_errors
    err = assert_raises(MiniRacer::RuntimeError) { @ctx.eval("throw new TypeError('bad')", filename: "e.js") }
    assert_equal "TypeError: bad", err.message
    assert_kind_of MiniRacer::EvalError, err
    # MiniRacer's backtrace: the JS stack's frames, then the Ruby ones.
    assert_equal "JavaScript at e.js:1:7", err.backtrace.first
    assert_match(/mini_racer/, err.backtrace[1])
    err = assert_raises(MiniRacer::ParseError) { @ctx.eval("var i;\nI am not JS") }
    assert_equal "SyntaxError: Unexpected identifier 'am' at <eval>:2:2", err.message
    # A Ruby exception JS does not catch comes back as itself.
    @ctx.attach("boom", proc { raise ArgumentError, "ruby side" })
    err = assert_raises(ArgumentError) { @ctx.eval("boom()") }
    assert_equal "ruby side", err.message
    # Caught in JS and returned, it is a ScriptError value with the JS stack.
    got = @ctx.eval("try { boom() } catch (e) { e }")
    assert_instance_of MiniRacer::ScriptError, got
    assert_equal ["JavaScript TypeError: ruby side", "JavaScript at <eval>:1:7"], got.backtrace
    big = MiniRacer::Context.new(max_memory: 20_000_000)
    assert_raises(MiniRacer::V8OutOfMemoryError) { big.eval("let a = []; for (;;) a.push(new Array(1e5).fill(1))") }
    big.dispose
    c = MiniRacer::Context.new
    c.dispose
    assert_raises(MiniRacer::ContextDisposedError) { c.eval("1") }
    assert_raises(MiniRacer::PlatformAlreadyInitialized) { MiniRacer::Platform.set_flags!(:noconcurrent_recompilation) }
    assert_raises(MiniRacer::SnapshotError) { MiniRacer::Snapshot.new("throw 1") }
  end

  def test_eval_await
    assert_equal 5, @ctx.eval_await("new Promise((r) => setTimeout(() => r(5), 5))")
  end

  def test_snapshots
    snap = MiniRacer::Snapshot.new("function hello() { return 'world' }")
    snap.warmup!("hello()")
    assert_operator snap.size, :>, 0
    c = MiniRacer::Context.new(snapshot: MiniRacer::Snapshot.load(snap.dump))
    assert_equal "world", c.eval("hello()")
    c.dispose
  end

  def test_heap_and_gc
    stats = @ctx.heap_stats
    assert_kind_of Integer, stats[:used_heap_size]
    @ctx.low_memory_notification
    assert @ctx.idle_notification(100)
    io = StringIO.new
    @ctx.write_heap_snapshot(io)
    assert_match(/"snapshot"/, io.string[0, 100])
    c = MiniRacer::Context.new(ensure_gc_after_idle: 10)
    c.eval("globalThis.x = new Array(1e5).fill(0)")
    sleep 0.1
    assert_equal 1, c.eval("1")
    c.dispose
  end

  def test_load
    Dir.mktmpdir do |dir|
      path = File.join(dir, "lib.js")
      File.write(path, "var fromFile = 7")
      @ctx.load(path)
      assert_equal 7, @ctx.eval("fromFile")
    end
  end

  # MiniRacer copies values as V8's structured clone does.
  def test_structured_clone_values
    got = @ctx.eval(<<~JS)
      ({ f: () => 1, s: new Set([1, 2]), m: new Map([[1, "a"]]), big: 2 ** 62, sym: Symbol("tag"),
         p: new Proxy({ x: 1 }, {}), it: new Map([["k", 9]]).entries(), pr: Promise.resolve(1) })
    JS
    assert_equal({ "s" => [1, 2], "m" => { 1 => "a" }, "big" => 2**62, "sym" => "tag", "p" => { "x" => 1 },
                   "it" => ["k", 9], "pr" => {} }, got)
    assert_kind_of Integer, got["big"]
    assert_nil @ctx.eval("Symbol()")
    assert_equal [1, 2], @ctx.eval("new Set([1, 2]).values()")
    @ctx.attach("same", proc { h = { n: 1 }; [h, h, { 42 => Date.new(2000, 1, 1) }] })
    assert_equal [true, "Undefined Conversion"], @ctx.eval("const r = same(); [r[0] === r[1], r[2]['42']]")
    cyclic = []
    cyclic << cyclic
    @ctx.attach("cyclic", proc { cyclic })
    assert_raises(MiniRacer::RuntimeError) { @ctx.eval("cyclic()") }
    assert_equal Encoding::UTF_16LE, @ctx.eval("'a\\uD800'").encoding
    assert_equal "ok", @ctx.eval("'ok'".encode("UTF-16LE"))
    err = assert_raises(MiniRacer::RuntimeError) { @ctx.eval("({ get x() { throw new RangeError('no') } })") }
    assert_equal "RangeError: no", err.message
    assert_raises(RangeError) { @ctx.eval("new Date(NaN)") }
  end

  def test_paths_tasks_and_awaits
    @ctx.eval("var minion = 2")
    @ctx.attach("minion.kevin.speak", proc { "banana" })
    @ctx.attach("nul\0name", proc { "nul" })
    assert_equal "banana", @ctx.call("minion.kevin.speak")
    assert_equal "nul", @ctx.eval("globalThis['nul\\0name']()")
    assert_raises(MiniRacer::RuntimeError) { @ctx.call("missing") }
    @ctx.eval("var lib = { async dbl(x) { return x * 2 } }")
    assert_equal 42, @ctx.call_await("lib.dbl", 21)
    @ctx.attach("nested", proc { @ctx.eval_await("1") })
    err = assert_raises(MiniRacer::RuntimeError) { @ctx.eval("nested()") }
    assert_includes err.message, "nested call_await/eval_await"
    seen = []
    @ctx.attach("note", ->(s) { seen << s })
    @ctx.attach("drain", -> { @ctx.perform_microtask_checkpoint })
    @ctx.eval("Promise.resolve().then(() => note('micro')); note('before'); drain(); note('after')")
    assert_equal %w[before micro after], seen
    @ctx.eval("globalThis.done = false; Atomics.waitAsync(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5)" \
              ".value.then(() => { done = true })")
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
    @ctx.pump_message_loop until @ctx.eval("done") || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
    assert_equal true, @ctx.eval("done")
    @ctx.attach("dispose_self", proc { @ctx.dispose })
    assert_raises(MiniRacer::RuntimeError) { @ctx.eval("dispose_self()") }
    assert_equal 2, @ctx.eval("1 + 1")
  end

  def test_limits_and_flags
    assert_raises(ArgumentError) { MiniRacer::Context.new(max_memory: -1) }
    assert_raises(ArgumentError) { MiniRacer::Context.new(max_memory: 2**32) }
    # max_memory is checked after each GC, at any size (here 100 kB).
    small = MiniRacer::Context.new(max_memory: 100_000)
    small.attach("gc", proc { small.low_memory_notification })
    assert_raises(MiniRacer::V8OutOfMemoryError) { small.eval("gc(); 1") }
    small.dispose
    assert_raises(ArgumentError) { MiniRacer::Platform.set_flags!("--use-strict\0--x") }
    assert_raises(ArgumentError) { MiniRacer::Platform.set_flags!("--#{"x" * 300}") }
    assert_raises(MiniRacer::PlatformAlreadyInitialized) { MiniRacer::Platform.set_flags!(:use_strict) }
  end
end

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
    assert_equal "e.js:1:in `<js>'", err.backtrace.first
    assert_raises(MiniRacer::ParseError) { @ctx.eval("var = ;") }
    @ctx.attach("boom", proc { raise ArgumentError, "ruby side" })
    err = assert_raises(MiniRacer::RuntimeError) { @ctx.eval("boom()") }
    assert_instance_of ArgumentError, err.cause
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
end

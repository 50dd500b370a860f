# frozen_string_literal: true

require_relative "test_helper"

# The async design from Ruby: awaits block the calling thread (GVL
# released) without holding the context, async host functions settle from
# any thread, timers fire while Ruby is idle and run their Ruby callbacks on
# a Ruby thread.
class TestAsync < Minitest::Test
  include PolyracerTestHelper

  def test_an_async_host_function_awaits_io_then_calls_into_its_context_twice
    c = ctx
    c.eval("globalThis.hits = 0")
    c.attach_async("fetchLater") do |done, x|
      Thread.new do
        IO.pipe { |r, w| w.write("io"); w.close; r.read } # host I/O; the sandbox promise is pending
        a = c.eval("++hits")
        b = c.eval("++hits")
        done.resolve(x * 10 + a + b)
      end
    end
    assert_equal 40 + 1 + 2 + 2, c.eval_await("(async () => (await fetchLater(4)) + hits)()")
  end

  def test_async_host_function_rejections_and_raises
    c = ctx
    c.attach_async("failLater") { |done| Thread.new { done.reject(ArgumentError.new("nope")) } }
    c.attach_async("raiseNow") { |_done| raise TypeError, "at once" }
    err = assert_raises(Polyracer::JSError) { c.eval_await("failLater()") }
    assert_match(/nope/, err.message)
    assert_equal "caught: at once", c.eval_await("raiseNow().catch((e) => 'caught: ' + e.message)")
  end

  def test_a_hundred_concurrent_awaits_on_one_context
    c = ctx
    threads = 100.times.map { |i| Thread.new { c.eval_await("new Promise((r) => setTimeout(() => r(#{i}), 20))") } }
    assert_equal (0...100).to_a, threads.map(&:value)
  end

  def test_other_threads_call_while_an_await_is_pending
    c = ctx
    waiter = Thread.new { c.eval_await("new Promise((r) => { globalThis.release = r })", timeout: 10) }
    Thread.pass until c.eval("typeof release") == "function"
    assert_equal 42, c.eval("40 + 2")
    c.eval("release('done')")
    assert_equal "done", waiter.value
  end

  def test_a_timer_fires_while_ruby_sleeps_and_runs_on_a_ruby_thread
    c = ctx
    seen = Queue.new
    c.attach("report") { |tag| seen << [tag, Thread.current.name] }
    c.eval("setTimeout(() => report('tick'), 20)")
    sleep 0.2 # no call, no await on the context
    assert_equal ["tick", "polyracer-tasks"], seen.pop(timeout: 5)
  end

  def test_an_interrupted_await_leaves_the_context_usable
    c = ctx
    waiter = Thread.new { c.eval_await("new Promise(() => { globalThis.never = 1 })", timeout: 30) }
    waiter.report_on_exception = false
    Thread.pass until c.eval("typeof never") == "number"
    waiter.raise(Interrupt)
    assert_raises(Interrupt) { waiter.join }
    assert_raises(Polyracer::TimeoutError) { c.eval_await("new Promise((r) => setTimeout(r, 10000))", timeout: 0.05) }
    assert_equal 7, c.eval_await("Promise.resolve(7)")
  end

  def test_disposing_rejects_pending_awaits
    c = ctx
    waiter = Thread.new { c.eval_await("new Promise((r) => setTimeout(r, 10000))") }
    waiter.report_on_exception = false
    sleep 0.05
    c.dispose
    assert_raises(Polyracer::DisposedError) { waiter.value }
  end
end

# frozen_string_literal: true

require_relative "test_helper"

# The execution model from Ruby: JS runs on the calling thread (GVL
# released), so a timeout covers waiting for another thread's call, a Ruby
# thread's 1 MiB machine stack gives RangeErrors instead of crashes, and the JS
# frames come back as backtrace lines.
class TestThreads < Minitest::Test
  include PolyracerTestHelper

  DEPTH = "(() => { let d = 0; function f() { d++; f() } try { f() } catch (e) { return [d, e.name] } })()"

  def test_callbacks_run_on_the_thread_that_made_the_call
    c = ctx
    seen = []
    c.attach("where", proc { seen << Thread.current; nil })
    c.eval("where()")
    other = Thread.new { c.eval("where()") }
    other.join
    assert_equal [Thread.current, other], seen
  end

  def test_ruby_threads_get_range_errors_not_crashes
    c = ctx
    main_depth, = c.eval(DEPTH)
    depth, name = Thread.new { c.eval(DEPTH) }.value
    assert_equal "RangeError", name
    assert_operator depth, :>, 100
    assert_operator depth, :<, main_depth
    # JS → Ruby → JS nesting on a Ruby thread ends in an error too.
    c.attach("down", proc { |n| c.call("step", n + 1) })
    c.eval("globalThis.step = (n) => down(n)")
    err = Thread.new do
      c.call("step", 0)
    rescue Polyracer::JSError, SystemStackError => e
      e
    end.value
    assert_kind_of Exception, err
    assert_equal 4, Thread.new { c.eval("2 + 2") }.value
  end

  def test_a_timeout_covers_waiting_for_another_threads_call
    c = ctx
    q = Queue.new
    c.attach("started", proc { q << true; nil })
    runner = Thread.new do
      c.eval("started(); for (;;) {}", timeout: 3)
    rescue Polyracer::TimeoutError => e
      e
    end
    q.pop
    assert_raises(Polyracer::TimeoutError) { c.eval("1", timeout: 0.1) }
    assert_kind_of Polyracer::TimeoutError, runner.value
    assert_equal 1, c.eval("1")
  end

  def test_js_frames_come_from_the_exceptions_frame_data
    err = assert_raises(Polyracer::JSError) do
      ctx.eval("function a() { b() }\nfunction b() { null.x }\na()", filename: "f.js")
    end
    assert_equal ["f.js:2:in `b'", "f.js:1:in `a'", "f.js:3:in `<js>'"], err.backtrace.first(3)
  end
end

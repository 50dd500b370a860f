# frozen_string_literal: true

require_relative "test_helper"
require "timeout"

# Bad input never crashes or hangs: it raises a clear, typed error.
class TestBadInput < Minitest::Test
  include PolyracerTestHelper

  def test_syntax_errors
    c = ctx
    err = assert_raises(Polyracer::ParseError) { c.eval("let x = ;", filename: "bad.js") }
    assert_equal "SyntaxError", err.js_name
    assert_equal "Unexpected token ';'", err.message
    assert_equal ["bad.js", 1], [err.filename, err.line]
    assert_equal "bad.js:1:in `<js>'", err.backtrace.first
    refute_kind_of Polyracer::JSError, err
    assert_kind_of Polyracer::Error, err
  end

  def test_non_error_throws
    c = ctx
    err = assert_raises(Polyracer::JSError) { c.eval("throw 'plain string'") }
    assert_equal "plain string", err.message
    assert_equal "plain string", err.value
    assert_equal "", err.js_name
    err = assert_raises(Polyracer::JSError) { c.eval("throw {code: 42}") }
    assert_equal({ "code" => 42 }, err.value)
    err = assert_raises(Polyracer::JSError) { c.eval("throw null") }
    assert_nil err.value
  end

  def test_infinite_loops_with_timeout
    c = ctx(timeout: 0.1)
    assert_raises(Polyracer::TimeoutError) { c.eval("while (true) {}") }
    assert_raises(Polyracer::TimeoutError) { c.call("() => { for (;;) {} }") }
    assert_raises(Polyracer::TimeoutError) { c.eval("(async () => { for (;;) { await null } })()") }
    assert_equal 4, c.eval("2 + 2")
  end

  def test_memory_bomb
    c = ctx(memory_limit: 32 * 1024 * 1024)
    assert_raises(Polyracer::OutOfMemoryError) do
      c.eval("const a = []; for (;;) a.push(new Array(100000).fill('x'))")
    end
    assert_equal 3, c.eval("1 + 2"), "the context survives"
  end

  def test_cycles_and_deep_nesting_from_ruby
    c = ctx
    a = [1]
    a << a
    err = assert_raises(Polyracer::ConversionError) { c.call("(x) => x", a) }
    assert_match(/cyclic reference at \$\[0\]\[1\]/, err.message)
    h = { "k" => {} }
    h["k"]["back"] = h
    err = assert_raises(Polyracer::ConversionError) { c.call("(x) => x", h) }
    assert_match(/cyclic reference at \$\[0\]\.k\.back/, err.message)
    deep = []
    3000.times { deep = [deep] }
    err = assert_raises(Polyracer::ConversionError) { c.call("(x) => 1", deep) }
    assert_match(/nesting deeper than 2000/, err.message)
    shared = [1]
    assert_equal [[1], [1]], c.call("(x) => x", [shared, shared]), "shared is not cyclic"
  end

  def test_cycles_and_deep_nesting_from_js
    c = ctx
    err = assert_raises(Polyracer::ConversionError) { c.eval("const o = {a: {}}; o.a.b = o; o") }
    assert_match(/cyclic/, err.message)
    err = assert_raises(Polyracer::ConversionError) { c.eval("let d = []; for (let i = 0; i < 5000; i++) d = [d]; d") }
    assert_match(/deeper than/, err.message)
    assert_equal 2, c.eval("1 + 1")
  end

  def test_unconvertible_values
    c = ctx
    err = assert_raises(Polyracer::ConversionError) { c.call("(x) => x", Object.new) }
    assert_match(/cannot convert a Ruby Object/, err.message)
    err = assert_raises(Polyracer::ConversionError) { c.call("(x) => x", { "a" => [1, Object.new] }) }
    assert_match(/at \$\[0\]\.a\[1\]/, err.message)
    assert_match(/invalid Date/, assert_raises(Polyracer::ConversionError) { c.eval("new Date(NaN)") }.message)
    assert_match(/no implicit conversion/, assert_raises(TypeError) { c.eval(42) }.message)
  end

  def test_use_after_dispose
    c = Polyracer::Context.new
    f = c.eval("() => 1")
    p = c.eval("Promise.resolve(1)")
    s = c.compile("1", filename: "one.js")
    c.dispose
    [-> { c.eval("1") }, -> { c.call("Math.max", 1) }, -> { f.call }, -> { p.value }, -> { s.run },
     -> { c.heap_stats }, -> { c.set_global("x", 1) }, -> { c.attach("x", -> {}) }].each do |op|
      assert_match(/disposed/, assert_raises(Polyracer::DisposedError, &op).message)
    end
    c.terminate # harmless
  end

  def test_dispose_from_inside_a_callback
    c = Polyracer::Context.new
    c.attach("bye", -> { c.dispose; 1 })
    err = assert_raises(Polyracer::DisposedError) { c.eval("bye(); while (true) {}") }
    assert_match(/disposed/, err.message)
    assert c.disposed?
  end

  def test_threads_share_a_context
    c = ctx
    c.eval("var n = 0")
    c.attach("tick", -> { Thread.pass; 1 })
    threads = 4.times.map { Thread.new { 200.times { c.eval("n += tick()") } } }
    threads.each(&:join)
    assert_equal 800, c.eval("n")
  end

  def test_gvl_is_released_while_js_runs
    c = ctx
    ticks = 0
    t = Thread.new { 20.times { ticks += 1; sleep 0.01 } }
    c.eval("const end = Date.now() + 400; while (Date.now() < end) {}")
    t.join
    assert_operator ticks, :>=, 10, "the other thread ran during the eval"
  end

  def test_thread_raise_and_timeout_interrupt_cleanly
    c = ctx
    assert_raises(Timeout::Error) { Timeout.timeout(0.2) { c.eval("while (true) {}") } }
    assert_equal 1, c.eval("1"), "usable after Timeout"
    c.attach("slow_ruby", -> { sleep 5 })
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_raises(Timeout::Error) { Timeout.timeout(0.2) { c.eval("try { slow_ruby() } catch (e) { 'swallowed' }") } }
    assert_operator Process.clock_gettime(Process::CLOCK_MONOTONIC) - started, :<, 3
    main = Thread.current
    Thread.new { sleep 0.1; main.raise(IOError, "stop it") }
    assert_raises(IOError) { c.eval("for (;;) {}") }
    assert_equal 2, c.eval("2")
  end

  def test_ctrl_c_interrupts_a_main_thread_eval
    # Ruby keeps SIGINT ignored when it starts ignored (a background job
    # without job control), and then Ctrl-C never arrives: the child installs
    # Ruby's own handler, as an interactive start has it. The eval's 30 s
    # timeout makes a regression fail (TimeoutError, exit 1) instead of hang.
    code = 'trap("INT", "DEFAULT"); require "polyracer"; c = Polyracer::Context.new; ' \
           '$stdout.puts "ready"; $stdout.flush; ' \
           'begin; c.eval("while (true) {}", timeout: 30); rescue Interrupt; puts "interrupted"; puts c.eval("1 + 1"); end'
    Open3.popen3(RbConfig.ruby, "-I#{PolyracerTestHelper::LIB}", "-e", code, pgroup: true) do |stdin, out, err, wait|
      stdin.close
      ready = Thread.new { out.gets }
      assert_equal "ready\n", ready.join(CHILD_DEADLINE)&.value, "the child did not start"
      sleep 0.2
      Process.kill("INT", wait.pid)
      assert wait_within(wait).success?, err.read
      assert_equal "interrupted\n2\n", out.read
    ensure
      kill_group(wait.pid) if wait&.alive?
    end
  end

  def test_thread_raise_during_a_nested_call
    c = ctx
    c.attach("inner", -> { c.eval("for (;;) {}") })
    main = Thread.current
    Thread.new { sleep 0.2; main.raise(IOError, "nested stop") }
    err = assert_raises(IOError) { c.eval("try { inner() } catch (e) { 'swallowed' }") }
    assert_equal "nested stop", err.message
    assert_equal 3, c.eval("3")
  end

  def test_interrupt_escapes_callbacks
    c = ctx
    c.attach("interrupt", -> { raise Interrupt })
    assert_raises(Interrupt) { c.eval("try { interrupt() } catch (e) { 'swallowed' }") }
    assert_equal 5, c.eval("5")
  end

  def test_throw_from_a_callback_to_an_outer_catch
    c = ctx
    c.attach("leave", -> { throw :done, 5 })
    ran_after = false
    # The loop would never end: the JS is terminated after the callback.
    result = catch(:done) do
      c.eval("try { leave() } catch (e) {} for (;;) {}")
      ran_after = true
    end
    assert_nil result, "the thrown value is not carried (documented)"
    refute ran_after
    assert_equal 7, c.eval("7")
  end

  def test_thread_kill_during_eval
    c = ctx
    t = Thread.new { c.eval("for (;;) {}") }
    sleep 0.1
    t.kill
    assert t.join(5), "the killed thread finished"
    assert_equal 6, c.eval("6")
  end

  def test_garbage_collected_contexts_and_handles
    c = ctx
    5_000.times { c.eval("() => 1") } # handles released in batches after GC
    8.times { Polyracer::Context.new.eval("globalThis.x = [1, 2, 3]") } # never disposed
    GC.start
    GC.start
    assert_equal 3, c.eval("[1, 2, 3].length")
    assert_equal 1, c.eval("() => 1").call
  end

  def test_invalid_handles_across_contexts
    a = ctx
    b = ctx
    f = a.eval("() => 1")
    assert_raises(Polyracer::InvalidArgumentError) { b.call(f) }
  end

  def test_fork_with_a_pre_fork_context
    skip "fork is not available" unless Process.respond_to?(:fork)
    out, err, status = run_ruby(<<~RUBY)
      require "polyracer"
      ctx = Polyracer::Context.new
      ctx.eval("1")
      pid = fork do
        begin
          ctx.eval("1 + 1")
          exit! 3
        rescue Polyracer::DisposedError => e
          puts e.message
          $stdout.flush
          exit! 0
        end
      end
      Process.wait(pid)
      exit! $?.exitstatus
    RUBY
    assert status.success?, "child exit #{status.exitstatus}: #{out}#{err}"
    assert_match(/created before fork\(\)/, out)
  end

  def test_new_contexts_after_fork_with_single_threaded_engine
    skip "fork is not available" unless Process.respond_to?(:fork)
    out, err, status = run_ruby(<<~RUBY)
      require "polyracer"
      # A preforking server: configure in the parent, which also uses V8
      # while it boots, then create contexts in the workers.
      Polyracer.configure(single_threaded: true)
      boot = Polyracer::Context.new
      boot.eval("1 + 1")
      pids = 2.times.map do |i|
        fork do
          # Its copy of the parent's context, and a context of its own.
          boot.eval("globalThis.mine = \#{i}")
          child = Polyracer::Context.new
          puts child.eval("'child \#{i}: ' + (20 + 22)") + boot.eval("', copy ' + mine")
          $stdout.flush
          exit! 0
        end
      end
      codes = pids.map { |pid| Process.wait(pid); $?.exitstatus }
      puts "parent: \#{boot.eval('40 + 2 + (typeof mine)')}"
      $stdout.flush
      exit!(codes.all?(&:zero?) ? 0 : 1)
    RUBY
    assert status.success?, "child exit #{status.exitstatus}: #{out}#{err}"
    assert_equal ["child 0: 42, copy 0", "child 1: 42, copy 1", "parent: 42undefined"], out.lines.map(&:chomp).sort
  end
end

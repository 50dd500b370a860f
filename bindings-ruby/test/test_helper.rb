# frozen_string_literal: true

$LOAD_PATH.unshift File.expand_path("../lib", __dir__)
require "minitest/autorun"
require "polyracer"
require "rbconfig"
require "open3"
require "timeout"

module PolyracerTestHelper
  ROOT = File.expand_path("../..", __dir__)
  LIB = File.expand_path("../lib", __dir__)
  # How long a child process of a test may run before it is killed and the
  # test fails (a hung child must not hang the suite).
  CHILD_DEADLINE = 60

  def setup
    @contexts = []
  end

  def teardown
    @contexts.each { |c| c.dispose unless c.disposed? }
  end

  def ctx(**opts)
    c = Polyracer::Context.new(**opts)
    @contexts << c
    c
  end

  # Calls c.terminate every 10 ms from another thread while the block runs.
  # terminate stops only the JS running at that moment (it is not remembered
  # for the next call), so a single early call could be lost; repeating it
  # cannot miss.
  def terminating(c)
    done = false
    t = Thread.new do
      until done
        c.terminate
        sleep 0.01
      end
    end
    yield
  ensure
    done = true
    t&.join
  end

  # Runs Ruby code in a fresh process with the library on the load path.
  def run_ruby(code)
    capture_within(RbConfig.ruby, "-I#{LIB}", "-e", code)
  end

  # Open3.capture3 with a deadline: past it the child's whole process group
  # (forked grandchildren too) is killed and the test fails.
  def capture_within(*cmd, limit: CHILD_DEADLINE)
    Open3.popen3(*cmd, pgroup: true) do |stdin, out, err, wait|
      stdin.close
      # (After a kill, popen3 closes the pipes under the readers: nothing to read.)
      readers = [out, err].map { |io| Thread.new { io.read rescue "" } }
      unless wait.join(limit)
        kill_group(wait.pid)
        flunk "#{cmd.join(" ")[0, 100]} still running after #{limit} s; killed it"
      end
      [readers[0].value, readers[1].value, wait.value]
    end
  end

  # Waits for a child started with `pgroup: true`, killing its process group
  # and failing the test if it outlives `limit` seconds.
  def wait_within(wait, limit: CHILD_DEADLINE)
    return wait.value if wait.join(limit)

    kill_group(wait.pid)
    flunk "child #{wait.pid} still running after #{limit} s; killed it"
  end

  def kill_group(pid)
    Process.kill("KILL", -pid)
  rescue Errno::ESRCH
    nil
  end
end

# Every test has a time limit (POLYRACER_TEST_TIMEOUT seconds, default 120):
# past it the test fails with TestTimeLimitExceeded and the run goes on, so
# a hang fails the suite instead of stalling it. Timeout raises in the test's
# thread; that interrupts an eval, because the binding releases the GVL and
# stops the JS when the thread is interrupted. (Code that held the GVL
# forever could not be interrupted; ci/test-ruby.sh bounds the whole run too.)
class TestTimeLimitExceeded < StandardError; end

module PolyracerTimeLimit
  LIMIT = Float(ENV.fetch("POLYRACER_TEST_TIMEOUT", "120"))

  # Minitest runs setup + the test, then each teardown hook, through this.
  def capture_exceptions
    super do
      Timeout.timeout(LIMIT, TestTimeLimitExceeded, "#{self.class}##{name} ran longer than #{LIMIT} s") { yield }
    end
  end
end
Minitest::Test.prepend(PolyracerTimeLimit)

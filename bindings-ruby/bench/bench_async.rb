# frozen_string_literal: true

# Awaiting JS promises from Ruby: `eval_await` round trips, each timed alone
# with host busy-work between them (0, 50, 1000 µs), p50 / p99 µs; then
# 1,000 awaits at once from 100 Ruby threads on one context, and the threads
# polyracer itself added meanwhile (none per await). mini_racer cannot be
# installed here (no gem registry) and ExecJS has no async API, so these
# figures stand beside the Python binding's (bindings-python/bench/bench_async.py).
#   ruby -Ilib bench/bench_async.rb      (from bindings-ruby/, after `rake compile`; QUICK=1)
require "polyracer"

N = ENV["QUICK"] == "1" ? 300 : 2000
GAPS_US = [0, 50, 1000].freeze
CASES = {
  "1 + 1" => "1 + 1",
  "a resolved promise" => "Promise.resolve(1)",
  "a 1 ms timer's promise" => "new Promise((r) => setTimeout(() => r(1), 1))"
}.freeze

def clock
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

def busy(micros)
  stop = clock + (micros / 1e6)
  nil while clock < stop
end

def percentiles(gap)
  20.times { yield }
  times = Array.new(N) do
    busy(gap)
    t = clock
    yield
    (clock - t) * 1e6
  end.sort
  [times[N / 2], times[[N - 1, N * 99 / 100].min]]
end

def os_threads
  Dir.children("/proc/self/task").size
end

ctx = Polyracer::Context.new
puts "eval_await round trip from Ruby, p50 / p99 µs (each await timed alone, host busy-work between):"
puts "| case | #{GAPS_US.map { |g| "gap #{g} µs" }.join(" | ")} |"
puts "|---" * (GAPS_US.size + 1) + "|"
CASES.each do |name, code|
  cells = GAPS_US.map { |g| percentiles(g) { ctx.eval_await(code) } }
  puts "| #{name} | #{cells.map { |a, b| format("%.1f / %.1f", a, b) }.join(" | ")} |"
end

code = "new Promise((r) => setTimeout(() => r(1), 1))"
ready = Queue.new
go = Queue.new
workers = Array.new(100) do
  Thread.new do
    ready << true
    go.pop
    Array.new(10) { ctx.eval_await(code) }
  end
end
100.times { ready.pop }
before = os_threads
t = clock
100.times { go << true }
peak = before
peak = [peak, os_threads].max until workers.none?(&:alive?)
results = workers.flat_map(&:value)
ms = (clock - t) * 1000
raise "unexpected results" unless results.all?(1) && results.size == 1000

puts
puts "1,000 awaits (100 Ruby threads × 10, each a 1 ms sandbox timer) on one context:"
puts "| total ms | threads added by polyracer while they ran |"
puts "|---|---|"
puts format("| %.1f | %d |", ms, peak - before)
ctx.dispose

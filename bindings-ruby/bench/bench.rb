# frozen_string_literal: true

# polyracer vs ExecJS (Debian's ruby-execjs with the Node runtime) in one run.
#   ruby -Ilib bench/bench.rb            (from bindings-ruby/, after `rake compile`)
# Set QUICK=1 for fewer iterations. Each timing is the best of several
# batches, so other load on a 2-core machine shows less in the µs rows.
require "polyracer"

begin
  require "execjs"
  EXECJS = ExecJS::Runtimes::Node.available? ? ExecJS::Runtimes::Node : nil
rescue LoadError
  EXECJS = nil
end

QUICK = ENV["QUICK"] == "1"
scale = QUICK ? 0.1 : 1.0

def clock
  Process.clock_gettime(Process::CLOCK_MONOTONIC)
end

# Seconds per operation: best of `rounds` timed batches of `n` after a warm-up.
def per_op(n, rounds: 3)
  n.times { yield } if n <= 1000
  [*1..rounds].map do
    t = clock
    n.times { yield }
    (clock - t) / n
  end.min
end

def fmt(seconds)
  return "n/a" if seconds.nil?
  return format("%.2f µs", seconds * 1e6) if seconds < 1e-3
  return format("%.2f ms", seconds * 1e3) if seconds < 1

  format("%.2f s", seconds)
end

# Each call timed alone with host busy-work between calls (as a real
# program calls), p50 and p99 in µs; tight loops hide per-call costs such
# as waking a parked thread. Beside it, the same call's tight-loop time.
GAPS_US = [0, 5, 50, 200, 1000].freeze

def busy(micros)
  stop = clock + (micros / 1e6)
  x = 0
  x += 1 while clock < stop
  x
end

def percentiles(gap, count)
  200.times { yield }
  times = Array.new(count) do
    busy(gap)
    t = clock
    yield
    (clock - t) * 1e6
  end.sort
  [times[count / 2], times[[count - 1, count * 99 / 100].min]]
end

def latency_table(cases, scale)
  counts = { 0 => 20_000, 5 => 20_000, 50 => 10_000, 200 => 3000, 1000 => 1000 }
  puts "Interleaved latency (each call timed alone, host busy-work between calls):"
  puts "| per-call latency, p50 / p99 µs | tight loop | #{GAPS_US.map { |g| "gap #{g} µs" }.join(" | ")} |"
  puts "|---|---|#{GAPS_US.map { "---" }.join("|")}|"
  cases.each do |name, fn|
    tight = per_op([(100_000 * scale).to_i, 1000].max, rounds: 5) { fn.call }
    cells = GAPS_US.map do |g|
      format("%.2f / %.2f", *percentiles(g, [(counts[g] * scale).to_i, 200].max) { fn.call })
    end
    puts "| #{name} | #{format("%.2f", tight * 1e6)} | #{cells.join(" | ")} |"
  end
  puts
end

rows = []
add = ->(name, ours, theirs, note = "") { rows << [name, ours, theirs, note] }
n = ->(x) { [(x * scale).to_i, 1].max }

ctx = Polyracer::Context.new
ctx.eval("function add(a, b) { return a + b }")
lat_fn = ctx.eval("(a, b) => a + b")
ctx.attach("rb_id", ->(x) { x })
lat_cb = ctx.eval("() => rb_id(1)")
latency_table(
  [["eval `1+1`", -> { ctx.eval("1+1") }],
   ["call `(a,b)=>a+b` (JSFunction)", -> { lat_fn.call(1, 2) }],
   ["callback round trip (JS → Ruby → JS)", -> { lat_cb.call }]],
  scale
)
exit if ENV["LATENCY_ONLY"] == "1"
node = EXECJS&.compile("function add(a, b) { return a + b }; function id(x) { return x }")

eval_ours = per_op(n.(100_000), rounds: 7) { ctx.eval("1+1") }
eval_theirs = EXECJS && per_op(n.(30), rounds: 1) { EXECJS.eval("1+1") }
add.("eval `1+1`", eval_ours, eval_theirs)

call_ours = per_op(n.(100_000), rounds: 7) { ctx.call("add", 1, 2) }
call_theirs = node && per_op(n.(30), rounds: 1) { node.call("add", 1, 2) }
add.("call `add(1, 2)` by name", call_ours, call_theirs)

fn = ctx.eval("(a, b) => a + b")
handle_ours = per_op(n.(100_000), rounds: 7) { fn.call(1, 2) }
add.("call through a JSFunction", handle_ours, nil, "ExecJS has no function handles")

create_ours = per_op(n.(100), rounds: 1) do
  c = Polyracer::Context.new
  c.eval("1")
  c.dispose
end
create_theirs = EXECJS && per_op(n.(20), rounds: 1) { EXECJS.compile("var x = 1").eval("x") }
add.("context create + first eval + dispose", create_ours, create_theirs)

big = (0...6_000).to_h { |i| ["key#{i}", { "n" => i, "s" => "x" * 120, "a" => [1, 2.5, true, nil] }] }
require "json"
mb = JSON.generate(big).bytesize / 1e6
round_ours = per_op(n.(30), rounds: 2) { ctx.call("(x) => x", big) }
round_theirs = node && per_op(n.(5), rounds: 1) { node.call("id", big) }
add.(format("%.1f MB Hash round trip", mb), round_ours, round_theirs)

ctx.attach("cb", ->(x) { x })
callback = ctx.eval("() => cb(1)")
cb_ours = per_op(n.(50_000), rounds: 7) { callback.call }
add.("callback round trip (JS → Ruby → JS)", cb_ours, nil, "ExecJS cannot call Ruby")

# Throughput with two Ruby threads, each on its own context: the GVL is
# released while JS runs, so the two contexts' threads overlap.
threads_ops = n.(100_000)
one = per_op(threads_ops, rounds: 1) { ctx.eval("1+1") }
contexts = Array.new(2) { Polyracer::Context.new }
t = clock
contexts.map { |c| Thread.new { threads_ops.times { c.eval("1+1") } } }.each(&:join)
two = (clock - t) / (2 * threads_ops)
contexts.each(&:dispose)
theirs_two = nil
if EXECJS
  k = n.(20)
  t = clock
  Array.new(2) { Thread.new { k.times { EXECJS.eval("1+1") } } }.each(&:join)
  theirs_two = (clock - t) / (2 * k)
end
add.("2 threads, eval `1+1` (time per op)", two, theirs_two, format("1 thread: %s/op", fmt(one)))
ctx.dispose

puts "polyracer #{Polyracer::VERSION} (V8 #{Polyracer::V8_VERSION}), Ruby #{RUBY_VERSION}, " \
     "ExecJS #{defined?(ExecJS::VERSION) ? ExecJS::VERSION : "missing"} (#{EXECJS ? `node --version`.strip : "no Node"})"
puts
puts "| benchmark | polyracer | ExecJS (Node) | speed-up | note |"
puts "| --- | ---: | ---: | ---: | --- |"
rows.each do |name, ours, theirs, note|
  ratio = theirs && ours ? format("%.0f×", theirs / ours) : ""
  puts "| #{name} | #{fmt(ours)} | #{fmt(theirs)} | #{ratio} | #{note} |"
end

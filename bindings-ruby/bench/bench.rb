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

rows = []
add = ->(name, ours, theirs, note = "") { rows << [name, ours, theirs, note] }
scale = QUICK ? 0.1 : 1.0
n = ->(x) { [(x * scale).to_i, 1].max }

ctx = Polyracer::Context.new
ctx.eval("function add(a, b) { return a + b }")
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

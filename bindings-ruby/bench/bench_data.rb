# frozen_string_literal: true

# Moving data between Ruby and JS, side by side in one run: polyracer and
# ExecJS (Debian's ruby-execjs with the Node runtime; it copies through
# JSON, as its users do). Shapes: nested records, a wide array of floats, a
# wide array of strings, at ~10 KB, 300 KB, 1 MB and 10 MB of JSON; binary
# Strings of 1 MiB and 64 MiB (polyracer only: ExecJS has no bytes), and
# the same shared out (`share_buffers: true`, an IO::Buffer). Each
# way: JS → Ruby ("out") and Ruby → JS ("in"). Median ms. The bar is the
# Python binding's figure for the same shape (bench_data.py), within 1.5×;
# for bytes, a memcpy into memory already touched, beside a copy into new
# memory (String#dup), which pays a page fault per 4 KiB.
#   ruby -Ilib bench/bench_data.rb     (from bindings-ruby/; QUICK=1: to 1 MB)
# ci/bench-ruby-bar.py holds each row to the 1.5× bar with data_worker.rb,
# which times polyracer's calls in bursts, in turns with the Python binding's.
require "json"
require "polyracer"
require_relative "data_shapes"

begin
  require "execjs"
  EXECJS = ExecJS::Runtimes::Node.available? ? ExecJS::Runtimes::Node : nil
rescue LoadError
  EXECJS = nil
end

QUICK = ENV["QUICK"] == "1"
SIZES = QUICK ? [10e3, 300e3, 1e6] : [10e3, 300e3, 1e6, 10e6]
BYTES = QUICK ? [1 << 20] : [1 << 20, 64 << 20]
BUDGET = QUICK ? 0.3 : 1.5
WARM = QUICK ? 0.1 : 0.2
# Up to this many timed calls, within the budget: a few hundred settle a
# median that 50 left moving by a third between runs.
MAX_RUNS = 300
# Bytes rows pause SETTLE seconds after each call of SLOW_MS or more: the
# host between calls, idle. A large copy out leaves a thread faulting in
# the next one's pages (Ruby has no huge pages), which would otherwise run
# into whichever call is timed next (a memcpy bar made slower flatters the
# copy). The same copy is also timed back to back, which leaves it no time.
SETTLE = 0.04
SLOW_MS = 5.0

# Median milliseconds of each of `calls`, timed in turns (one call of each,
# then again; at least 5 runs each, at most MAX_RUNS, within the budget), after
# WARM seconds of each call (as bench_data.js does): a program that moves
# data call after call runs with its heap and the JIT settled. For 1 MiB
# Strings out, the first ~50 calls each take fresh pages while Ruby's heap
# grows to its steady size (0.55 ms a call, then 0.08). In turns, the
# machine's drift falls on each call alike.
def in_turns(*calls, settle: 0)
  calls.each do |call|
    warm = clock + WARM
    call.call while clock < warm
  end
  runs = calls.map { [] }
  stop = clock + (BUDGET * calls.size)
  while runs[0].size < 5 || (clock < stop && runs[0].size < MAX_RUNS)
    # A new random order each round (as bench_data.js): in a fixed one, the
    # work a call leaves for the next (a GC, freed memory) falls on the
    # same call round after round.
    calls.each_index.to_a.shuffle.each do |i|
      t = clock
      calls[i].call
      runs[i] << ((clock - t) * 1000)
      sleep(settle) if runs[i].last >= SLOW_MS
    end
  end
  runs.map { |r| r.sort[r.size / 2] }
end

def median_ms(&block)
  in_turns(block).first
end

# A copy out of `bytes` (`out`), timed in turns with a plain memcpy of as
# many bytes into memory already touched (the bar; IO::Buffer is marked
# experimental in Ruby 3.1, and its copy is a memcpy) and a copy into new
# memory (String#dup), with a pause after each slow call (SETTLE).
def bytes_out_ms(bytes, out)
  experimental = Warning[:experimental]
  Warning[:experimental] = false
  src = IO::Buffer.for(bytes)
  dst = IO::Buffer.new(bytes.bytesize)
  in_turns(out, -> { dst.copy(src, 0) }, -> { bytes.dup << "" }, settle: SETTLE)
ensure
  Warning[:experimental] = experimental
end

# Median ms of polyracer's copy out and in of `value`.
def polyracer_ms(value, src)
  ctx = Polyracer::Context.new
  ctx.eval(src)
  sink = ctx.eval("(v) => 0")
  out = median_ms { ctx.eval("globalThis.v") }
  inn = median_ms { sink.call(value) }
  ctx.dispose
  [out, inn]
end

# Bytes out without a copy: an IO::Buffer over the sandbox's memory.
def shared_out_ms(bytes)
  ctx = Polyracer::Context.new
  ctx.eval("globalThis.v = new Uint8Array(#{bytes}).fill(7)")
  median_ms { ctx.eval("globalThis.v", share_buffers: true) }
ensure
  ctx&.dispose
end

def execjs_cell(value, src)
  return "n/a" unless EXECJS

  js = EXECJS.compile("#{src}; function get() { return globalThis.v } function sink(v) { return 0 }")
  out = median_ms { js.call("get") }
  inn = median_ms { js.call("sink", value) }
  format("%.2f / %.2f", out, inn)
end

puts "Moving data, median ms, out (JS → Ruby) / in (Ruby → JS):"
puts "| value | polyracer | ExecJS (Node, JSON) |"
puts "|---|---|---|"
SIZES.each do |bytes|
  SHAPES.each_key do |shape|
    value = sized(shape, bytes)
    json = JSON.generate(value)
    src = "globalThis.v = #{json}"
    out, inn = polyracer_ms(value, src)
    cell = format("%.2f / %.2f", out, inn)
    puts "| #{shape}, #{format('%.2f', json.bytesize / 1e6)} MB JSON | #{cell} | #{execjs_cell(value, src)} |"
  end
end
BYTES.each do |n|
  value = ("\x07".b * n)
  ctx = Polyracer::Context.new
  ctx.eval("globalThis.v = new Uint8Array(#{n}).fill(7)")
  sink = ctx.eval("(v) => 0")
  out, memcpy, copy = bytes_out_ms(value, -> { ctx.eval("globalThis.v") })
  looped = median_ms { ctx.eval("globalThis.v") }
  inn = median_ms { sink.call(value) }
  ctx.dispose
  puts "| binary String, #{n >> 20} MiB | #{format('%.2f / %.2f', out, inn)} | n/a |"
  puts "| binary String out, #{n >> 20} MiB, calls back to back | #{format('%.2f', looped)} | n/a |"
  puts "| shared out (share_buffers: an IO::Buffer, no copy), #{n >> 20} MiB | #{format('%.3f', shared_out_ms(n))} | n/a |"
  puts "| memcpy of #{n >> 20} MiB into touched memory (the bar: IO::Buffer#copy) | #{format('%.2f', memcpy)} | |"
  puts "| copy of #{n >> 20} MiB into new memory (String#dup) | #{format('%.2f', copy)} | |"
end

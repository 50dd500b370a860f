# frozen_string_literal: true

# polyracer's moving-data calls, timed on command: ci/bench-ruby-bar.py runs
# this beside bindings-python/bench/data_worker.py and has the two take
# turns, a short burst of calls each, so the machine's drift (a third
# within a minute, sometimes within one process's run) falls on both alike.
# One JSON command a line on stdin, one JSON reply a line on stdout:
#   {"op":"open","shape":s,"size":n}  the row's context; each call warmed
#                                     for WARM s; reply: est, ms a call
#   {"op":"time","what":w,"calls":k}  k timed calls of w (out, in, or
#                                     memcpy for bytes); reply: ms, each
#   {"op":"close"}
#   ruby -Ilib bench/data_worker.rb   (from bindings-ruby/)
require "json"
require "polyracer"
require_relative "data_shapes"

WARM = 0.2

# The calls of one row: JS → Ruby ("out"), Ruby → JS ("in"), and for
# bytes a memcpy of as many into memory already touched (the bar).
def open_row(shape, size)
  ctx = Polyracer::Context.new
  if shape == "bytes"
    value = "\x07".b * size
    ctx.eval("globalThis.v = new Uint8Array(#{size}).fill(7)")
    src = IO::Buffer.for(value)
    dst = IO::Buffer.new(size)
    extra = { "memcpy" => -> { dst.copy(src, 0) } }
  else
    value = sized(shape, size)
    ctx.eval("globalThis.v = #{JSON.generate(value)}")
    extra = {}
  end
  sink = ctx.eval("(v) => 0")
  [ctx, { "out" => -> { ctx.eval("globalThis.v") }, "in" => -> { sink.call(value) } }.merge(extra)]
end

# Mean ms a call of `call` while it is warmed.
def warmed(call)
  start = clock
  n = 0
  while n.zero? || clock < start + WARM
    call.call
    n += 1
  end
  (clock - start) * 1000 / n
end

$stdout.sync = true
Warning[:experimental] = false # IO::Buffer (the memcpy bar) is marked experimental in Ruby 3.1
ctx = calls = nil
$stdin.each_line do |line|
  cmd = JSON.parse(line)
  case cmd["op"]
  when "open"
    ctx, calls = open_row(cmd["shape"], cmd["size"])
    puts JSON.generate({ est: calls.transform_values { |c| warmed(c) } })
  when "time"
    call = calls.fetch(cmd["what"])
    ms = Array.new(cmd["calls"]) do
      t = clock
      call.call
      (clock - t) * 1000
    end
    puts JSON.generate({ ms: ms })
  when "close"
    ctx.dispose
    ctx = calls = nil
    puts JSON.generate({ closed: true })
  end
end

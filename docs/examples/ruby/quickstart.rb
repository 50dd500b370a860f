# frozen_string_literal: true

# polyracer from Ruby: eval, call, Ruby callbacks, promises, errors.
require "polyracer"

ctx = Polyracer::Context.new(timeout: 1.0)

# Evaluate JavaScript; results come back as Ruby values.
ctx.eval("var adder = (a, b) => a + b")
puts ctx.call("adder", 20, 22) # => 42

# Ruby values go in: symbol keys, Integers beyond 2**53 (BigInt), Time, Set.
puts ctx.call("(o) => `${o.name} ${typeof o.big} ${o.when.getUTCFullYear()}`",
              { name: "ruby", big: 2**64, when: Time.utc(2024, 1, 1) })

# Attach a Ruby callable; JS calls it on this Ruby thread.
ctx.attach("greet", ->(name) { "hello, #{name}" })
puts ctx.eval("greet('polyracer')")

# Await a promise.
puts ctx.eval_await("new Promise((resolve) => setTimeout(() => resolve('done'), 10))")

# JS errors are Ruby exceptions, with the JS frames in the backtrace.
begin
  ctx.eval("function check(x) { if (x < 0) throw new RangeError('negative') }\ncheck(-1)", filename: "check.js")
rescue Polyracer::JSError => e
  puts "#{e.js_name}: #{e.message} at #{e.backtrace.first}"
end

# Runaway scripts stop at the timeout; the context stays usable.
begin
  ctx.eval("while (true) {}", timeout: 0.05)
rescue Polyracer::TimeoutError
  puts "timed out"
end
ctx.dispose
